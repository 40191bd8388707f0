"""Face detectors behind one interface (:class:`Detector`), one module per backend.

Which names load which backend, and which backend runs a checkpoint of which arch, is
declared in :mod:`facemark.registry`: a new backend is a module here plus one line there.
Loading a detector by spec (``--detector``: a name, ``boxes:FILE``, a run, a path or a URL)
is :func:`facemark.hub.load_detector` (``facemark.load_detector``), above this layer because
it resolves specs as ``--model`` does.
"""

from __future__ import annotations

from facemark.detectors.base import Detections, Detector, DetectorConfig

__all__ = ["Detections", "Detector", "DetectorConfig"]
