"""Face detectors behind one interface (:class:`Detector`), one module per backend.

``--detector`` (and ``FaceMarker(detector=...)``) accepts:

* ``default`` or ``yunet``: YuNet (``yunet_n``), trained on WIDER FACE, bundled;
  ``yunet_s`` is its smaller sibling;
* ``facemark``: facemark's own detector network (trainable: ``train --task detector``);
* ``boxes:FILE``: boxes the user supplies (a JSON or CSV file, see :mod:`.boxes`);
* a training run's name, a checkpoint path or an ``https://`` URL, as for ``--model``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from facemark.detectors.base import Detections, Detector, DetectorConfig

__all__ = ["Detections", "Detector", "DetectorConfig", "load_detector"]


def load_detector(
    spec: Any = "default",
    device: str | None = "cpu",
    config: DetectorConfig | None = None,
) -> Detector:
    """The detector ``spec`` names, loaded on ``device`` with ``config``'s options.

    A loaded :class:`Detector` is returned as it is, or, given a different ``config``, as a
    copy that uses it.
    """
    if isinstance(spec, Detector):
        if config is None or config == spec.config:
            return spec
        config.check()
        other = copy.copy(spec)
        other.config = config
        return other
    from facemark.detectors.boxes import PREFIX, BoxesDetector

    if isinstance(spec, str) and spec.startswith(PREFIX):
        return BoxesDetector(spec[len(PREFIX) :], config)
    if isinstance(spec, (str, Path)) and Path(spec).suffix.lower() in (".json", ".csv"):
        return BoxesDetector(spec, config)
    from facemark import checkpoint, hub
    from facemark.devices import resolve_device

    device = resolve_device(device)
    data = checkpoint.read(
        spec if isinstance(spec, Mapping) else hub.resolve_model(spec, "detector"), "detector"
    )
    if data["arch"] == "yunet":
        from facemark.detectors.yunet import YuNetDetector

        return YuNetDetector.from_checkpoint(data, device=device, config=config)
    from facemark.detectors.facemark import FacemarkDetector

    return FacemarkDetector.from_checkpoint(data, device=device, config=config)
