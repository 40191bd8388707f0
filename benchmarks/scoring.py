"""Scoring dlib's answers exactly as ``facemark evaluate`` scores facemark's models.

facemark's own rows come straight from :func:`facemark.evaluate.evaluate_models`.  dlib runs in
another process, so its keypoints come back as lists; this module puts them through the same
two functions ``evaluate`` uses, so every row of the benchmark follows one rule:

* a detection belongs to the labelled face when its box contains the centroid of the true
  keypoints; of several, the highest score wins (:func:`facemark.evaluate.match_detection`);
* a missed face is a failure in FR and sits at infinite error in the CED/AUC; NME_io, a mean,
  is over the faces found, with the miss count beside it (:func:`facemark.evaluate.score`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from facemark import evaluate
from facemark.shape import NUM_POINTS

#: Summary keys kept in the benchmark's results (the same as ``evaluate``'s JSON).
KEYS = ("images", "found", "missed", "nme_io", "fr_08", "fr_10", "auc_08", "auc_10", "regions")

match_detection = evaluate.match_detection


def score(pred: Sequence[Any | None], gt: np.ndarray) -> dict[str, Any]:
    """Summary of one model on one set; ``pred[i]`` is (68, 2) keypoints or None for a miss."""
    gt = np.asarray(gt, dtype=np.float64)
    if len(pred) != len(gt):
        raise ValueError(f"{len(pred)} predictions for {len(gt)} faces")
    arr = np.full((len(gt), NUM_POINTS, 2), np.nan)
    for i, p in enumerate(pred):
        if p is not None:
            arr[i] = np.asarray(p, dtype=np.float64).reshape(NUM_POINTS, 2)
    nme, summary = evaluate.score(arr, gt)
    out = {k: summary[k] for k in KEYS}
    out["per_image_nme"] = [float(v) if np.isfinite(v) else None for v in nme]
    return out


def from_evaluation(summary: dict[str, Any]) -> dict[str, Any]:
    """The same keys from one model's dict of :func:`facemark.evaluate.evaluate_models`
    (with ``per_image``: each face's NME and the model's mean confidence on it)."""
    out = {k: summary.get(k) for k in KEYS}
    if "per_image" in summary:
        out["per_image_nme"] = [row["nme_io"] for row in summary["per_image"]]
        out["per_image_confidence"] = [row["confidence"] for row in summary["per_image"]]
    return out
