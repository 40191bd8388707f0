"""One model's result on one set (:class:`Evaluation`), and turning it into a plain,
JSON-safe dict: the value :func:`evaluate_models` returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Evaluation:
    """One model on one set: the summary plus what a report needs (predictions, errors)."""

    summary: dict[str, Any]
    names: list[str]
    pred: np.ndarray
    nme: np.ndarray
    images: list[np.ndarray] = field(repr=False, default_factory=list)
    gt: np.ndarray | None = field(repr=False, default=None)
    #: Mean landmark confidence per face (NaN for a miss).
    confidence: np.ndarray | None = field(repr=False, default=None)

    def per_image(self) -> list[dict[str, Any]]:
        """``[{"image", "nme_io", "missed", "confidence"}]`` in the set's order (None for a
        miss); the confidence is what a low-confidence threshold is chosen from."""
        conf = self.confidence if self.confidence is not None else np.full(len(self.nme), np.nan)
        return [
            {
                "image": n,
                "nme_io": _finite(e),
                "missed": not math.isfinite(e),
                "confidence": _finite(c),
            }
            for n, e, c in zip(self.names, self.nme, conf, strict=True)
        ]

    def to_dict(self, per_image: bool = False) -> dict[str, Any]:
        """The summary, JSON-safe (non-finite values become None), plus ``per_image`` when
        asked: one model's entry in :func:`evaluate_models`' result."""
        out = _json_safe(self.summary)
        if per_image:
            out["per_image"] = self.per_image()
        return out


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _json_safe(obj: Any) -> Any:
    """Floats that JSON can hold: NaN and infinities become None."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return _finite(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
