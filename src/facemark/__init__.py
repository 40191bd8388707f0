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

import importlib
import os
from typing import Any

# Before torch is first imported: idle OpenMP workers sleep instead of spinning, so they do
# not starve image decoding threads or other processes (a single detect() call took 1.5 s
# instead of 15 ms on a busy 2-core machine).  A value the user set is left alone.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

#: public name -> (module, attribute); attribute None means "the module itself".
_LAZY: dict[str, tuple[str, str | None]] = {
    "FaceMarker": ("facemark.pipeline", "FaceMarker"),
    "Face": ("facemark.results", "Face"),
    "ImageResult": ("facemark.results", "ImageResult"),
    "annotate": ("facemark.annotator", "annotate"),
    "AnnotateConfig": ("facemark.annotator", "AnnotateConfig"),
    "load_model": ("facemark.hub", "load_model"),
    "load_detector": ("facemark.hub", "load_detector"),
    "list_models": ("facemark.hub", "list_models"),
    "Landmarker": ("facemark.landmarker", "Landmarker"),
    "Detector": ("facemark.detectors.base", "Detector"),
    "DetectorConfig": ("facemark.detectors.base", "DetectorConfig"),
    "Detections": ("facemark.detectors.base", "Detections"),
    "load_image": ("facemark.images", "load_image"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'facemark' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
