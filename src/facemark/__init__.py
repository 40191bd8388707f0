"""facemark: find faces in photos and place the 68 iBUG 300-W keypoints on each.

Public Python API (everything returns plain numpy arrays, dicts and lists)::

    import facemark

    records = facemark.annotate(["photos/"], out=None)     # list of JSONL-style dicts
    detector = facemark.load_detector()                    # FaceDetector, bundled default
    landmarker = facemark.load_model()                     # Landmarker, bundled default
    boxes, scores = detector.detect(image)
    keypoints, confidence = landmarker.predict(image, boxes)

The names below are imported on first use (module ``__getattr__``) so that ``import facemark``
and ``facemark --version`` stay instant and do not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> (module, attribute); attribute None means "the module itself".
_LAZY: dict[str, tuple[str, str | None]] = {
    # facemark.annotate is both a submodule and the function users call.  Python's import
    # system binds the submodule to this name whenever anything imports it, so the module is
    # made callable (see annotate.py) and this name always refers to it.
    "annotate": ("facemark.annotate", None),
    "load_model": ("facemark.hub", "load_model"),
    "load_detector": ("facemark.hub", "load_detector"),
    "list_models": ("facemark.hub", "list_models"),
    "Landmarker": ("facemark.landmarker", "Landmarker"),
    "FaceDetector": ("facemark.detection", "FaceDetector"),
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
