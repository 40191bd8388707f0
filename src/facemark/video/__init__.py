"""Videos: decoding (PyAV), face tracking and One-Euro smoothing, per-frame outputs.

``facemark annotate clip.mp4`` routes each video here (see :func:`annotate_video`); photos
keep their own path through ``annotator``.  One module per step:

* :mod:`~facemark.video.config`: the options (``VideoConfig``);
* :mod:`~facemark.video.probe`: what is a video, and the lazy PyAV import;
* :mod:`~facemark.video.decoding`: frames with timestamps, upright, stride and span;
* :mod:`~facemark.video.tracker`: detection, landmark-only following and track ids;
* :mod:`~facemark.video.smoothing`: the One-Euro filter;
* :mod:`~facemark.video.timing`: where a run's time goes;
* :mod:`~facemark.video.records`: each frame's record (points, pose);
* :mod:`~facemark.video.openface`: the CSV in OpenFace's layout;
* :mod:`~facemark.video.overlay`: the annotated MP4;
* :mod:`~facemark.video.annotate`: one video from file to outputs.

PyAV is optional: ``pip install 'facemark[video]'``.  Importing this package loads neither
PyAV nor torch (the CLI and ``annotator`` import it for ``VideoConfig`` and the suffixes).
"""

from __future__ import annotations

from facemark.lazy import attach
from facemark.video.config import VideoConfig
from facemark.video.probe import (
    INSTALL_HINT,
    VIDEO_SUFFIXES,
    frames_to_read,
    has_video_suffix,
    is_video,
    require_av,
)

#: The steps of a video run, imported when a video is annotated (see facemark.lazy): the CLI
#: and ``annotator`` only need the options and the suffixes above.
_LAZY: dict[str, str] = {
    "VideoResult": "facemark.video.annotate",
    "annotate_video": "facemark.video.annotate",
    "output_paths": "facemark.video.annotate",
    "Decoded": "facemark.video.decoding",
    "Frame": "facemark.video.decoding",
    "decode": "facemark.video.decoding",
    "CSV_COLUMNS": "facemark.video.openface",
    "csv_rows": "facemark.video.openface",
    "overlay_path": "facemark.video.overlay",
    "frame_record": "facemark.video.records",
    "poses_of": "facemark.video.records",
    "OneEuro": "facemark.video.smoothing",
    "Timing": "facemark.video.timing",
    "Track": "facemark.video.tracker",
    "Tracker": "facemark.video.tracker",
}

__all__ = [
    "INSTALL_HINT",
    "VIDEO_SUFFIXES",
    "VideoConfig",
    "frames_to_read",
    "has_video_suffix",
    "is_video",
    "require_av",
    *_LAZY,
]

__getattr__, __dir__ = attach(globals(), _LAZY)
