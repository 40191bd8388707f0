"""The figures per subset of faces: yaw, face size and the model's confidence quartile.

Each bin is scored exactly as the whole set (:func:`facemark.evaluate.scoring.score`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from facemark import metrics
from facemark.evaluate.scoring import confidence_quartile, score
from facemark.metrics import YAW_BINS, bin_index, yaw_proxy

#: Subsets (as WFLW reports pose, expression, blur): ``[low, high)`` bin edges of the yaw proxy
#: ``|nose tip x - outer-eye-corner midpoint x| / eye distance`` and of the eye distance (px).
SIZE_BINS = (0.0, 30.0, 40.0, 50.0, math.inf)


def _bin_labels(edges: Sequence[float], unit: str = "") -> list[str]:
    labels = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if lo <= 0 and unit:
            labels.append(f"<{hi:g}")
        elif math.isinf(hi):
            labels.append(f">={lo:g}")
        else:
            labels.append(f"{lo:g}-{hi:g}")
    return labels


def subset_scores(pred: np.ndarray, gt: np.ndarray, conf: np.ndarray) -> dict[str, list]:
    """NME_io, FR@0.10 and AUC@0.10 (by :func:`score`) per yaw bin, face-size bin and mean
    confidence quartile: ``{"yaw": [{"bin", "faces", "nme_io", "fr_10", "auc_10"}, ...],
    "size": [...], "confidence": [... with "range"]}``.

    Yaw and size come from the true points, so a miss stays in its bin as a failure; a miss
    has no confidence and so no quartile.  An empty bin has 0 faces and None figures.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)

    def rows(index: np.ndarray, labels: list[str]) -> list[dict[str, Any]]:
        out = []
        for k, label in enumerate(labels):
            mask = index == k
            row: dict[str, Any] = {"bin": label, "faces": int(mask.sum())}
            _, s = score(pred[mask], gt[mask]) if mask.any() else (None, {})
            row.update((key, s.get(key)) for key in ("nme_io", "fr_10", "auc_10"))
            out.append(row)
        return out

    quartile, edges = confidence_quartile(conf)
    by_conf = rows(quartile, ["Q1 (low)", "Q2", "Q3", "Q4 (high)"])
    for k, row in enumerate(by_conf):
        row["range"] = [float(edges[k]), float(edges[k + 1])]
    return {
        "yaw": rows(bin_index(yaw_proxy(gt), YAW_BINS), _bin_labels(YAW_BINS)),
        "size": rows(bin_index(metrics.interocular(gt), SIZE_BINS), _bin_labels(SIZE_BINS, "px")),
        "confidence": by_conf,
    }
