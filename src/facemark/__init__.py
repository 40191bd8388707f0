"""facemark: find faces in photos and place the 68 iBUG 300-W keypoints on each.

Public Python API::

    import facemark

    marker = facemark.FaceMarker()                         # bundled detector + landmarks
    faces = marker("photo.jpg")                            # list[Face]; [] when none
    faces[0].box, faces[0].keypoints, faces[0].to_dict()
    results = facemark.annotate(["photos/"], out=None)     # one ImageResult per image
    results[0].to_dict()                                   # its annotations.jsonl line

The names below are imported on first use (module ``__getattr__``) so that ``import facemark``
and ``facemark --version`` stay instant and do not import torch.
"""

from __future__ import annotations

import os

# Before torch is first imported: idle OpenMP workers sleep instead of spinning, so they do
# not starve image decoding threads or other processes (a single detect() call took 1.5 s
# instead of 15 ms on a busy 2-core machine).  A value the user set is left alone.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from facemark.lazy import attach  # noqa: E402  (after the OpenMP setting)

__version__ = "0.1.0"

#: public name -> the module that defines it (imported on first use: see facemark.lazy).
_LAZY: dict[str, str] = {
    "FaceMarker": "facemark.pipeline",
    "Face": "facemark.results",
    "ImageResult": "facemark.results",
    "annotate": "facemark.annotator",
    "AnnotateConfig": "facemark.annotator",
    "load_model": "facemark.hub",
    "load_detector": "facemark.hub",
    "list_models": "facemark.hub",
    "Landmarker": "facemark.landmarker",
    "Detector": "facemark.detectors.base",
    "DetectorConfig": "facemark.detectors.base",
    "Detections": "facemark.detectors.base",
    "load_image": "facemark.images",
}

__all__ = ["__version__", *_LAZY]


__getattr__, __dir__ = attach(globals(), _LAZY)
