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

from facemark.video.annotate import VideoResult, annotate_video, output_paths
from facemark.video.config import VideoConfig
from facemark.video.decoding import Decoded, Frame, decode
from facemark.video.openface import CSV_COLUMNS, csv_rows
from facemark.video.overlay import overlay_path
from facemark.video.probe import (
    INSTALL_HINT,
    VIDEO_SUFFIXES,
    frames_to_read,
    has_video_suffix,
    is_video,
    require_av,
)
from facemark.video.records import frame_record, poses_of
from facemark.video.smoothing import OneEuro
from facemark.video.timing import Timing
from facemark.video.tracker import Track, Tracker

__all__ = [
    "CSV_COLUMNS",
    "INSTALL_HINT",
    "VIDEO_SUFFIXES",
    "Decoded",
    "Frame",
    "OneEuro",
    "Timing",
    "Track",
    "Tracker",
    "VideoConfig",
    "VideoResult",
    "annotate_video",
    "csv_rows",
    "decode",
    "frame_record",
    "frames_to_read",
    "has_video_suffix",
    "is_video",
    "output_paths",
    "overlay_path",
    "poses_of",
    "require_av",
]
