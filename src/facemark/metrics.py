"""Standard 68-point landmark metrics, shared by validation during training and ``evaluate``.

NME_io normalises the mean point-to-point error by the distance between the outer eye corners
(points 36 and 45), the 300-W convention, so figures are comparable across face sizes and with
published results.  Everything here is pure numpy on (N, 68, 2) arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from facemark.shape import REGIONS

LEFT_OUTER_EYE, RIGHT_OUTER_EYE = 36, 45
NOSE_TIP = 30
#: ``[low, high)`` bin edges of :func:`yaw_proxy`: evaluate's pose subsets and the bins that
#: pose-balanced training sampling evens out.
YAW_BINS = (0.0, 0.1, 0.2, 0.3, float("inf"))
#: The scalar metrics of :func:`summarize` that training validation and ``export --format int8``
#: keep (everything but the image count and the per-region breakdown).
HEADLINE = ("nme_io", "fr_08", "fr_10", "auc_08", "auc_10")


def interocular(gt: np.ndarray) -> np.ndarray:
    """Outer-eye-corner distance per face, shape (N,)."""
    gt = np.asarray(gt, dtype=np.float64)
    return np.linalg.norm(gt[:, LEFT_OUTER_EYE] - gt[:, RIGHT_OUTER_EYE], axis=-1)


def yaw_proxy(gt: np.ndarray) -> np.ndarray:
    """``|nose tip x - outer-eye-corner midpoint x| / eye distance`` per face, shape (N,)."""
    gt = np.asarray(gt, dtype=np.float64)
    mid = (gt[:, LEFT_OUTER_EYE, 0] + gt[:, RIGHT_OUTER_EYE, 0]) / 2.0
    return np.abs(gt[:, NOSE_TIP, 0] - mid) / np.maximum(interocular(gt), 1e-6)


def bin_index(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """The ``[edges[k], edges[k + 1])`` bin of each value, shape (N,)."""
    inner = np.asarray(edges[1:-1], dtype=np.float64)
    return np.searchsorted(inner, np.asarray(values, dtype=np.float64), side="right")


def point_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-point error normalised by the interocular distance, shape (N, 68)."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(
            f"expected two (N, K, 2) arrays of one shape, got {pred.shape}, {gt.shape}"
        )
    norm = np.maximum(interocular(gt), 1e-6)
    return np.linalg.norm(pred - gt, axis=-1) / norm[:, None]


def nme_io(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """NME_io of each face, shape (N,)."""
    return point_errors(pred, gt).mean(axis=1)


def region_nme(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Mean NME_io over the faces, for each facial region."""
    errs = point_errors(pred, gt)
    return {name: float(errs[:, a:b].mean()) for name, (a, b) in REGIONS.items()}


def failure_rate(nme: np.ndarray, threshold: float = 0.10) -> float:
    """Fraction of faces whose NME exceeds ``threshold``."""
    nme = np.asarray(nme, dtype=np.float64)
    return float((nme > threshold).mean()) if nme.size else float("nan")


def ced(
    nme: np.ndarray, threshold: float = 0.10, steps: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: (error thresholds, fraction of faces at or below each)."""
    nme = np.sort(np.asarray(nme, dtype=np.float64))
    xs = np.linspace(0.0, threshold, steps + 1)
    ys = np.searchsorted(nme, xs, side="right") / max(len(nme), 1)
    return xs, ys


def auc(nme: np.ndarray, threshold: float = 0.10, steps: int = 1000) -> float:
    """Area under the CED curve up to ``threshold``, scaled to [0, 1] (1 = every face perfect)."""
    xs, ys = ced(nme, threshold, steps)
    area = float(np.sum((ys[1:] + ys[:-1]) * np.diff(xs)) / 2.0)
    return area / threshold


def summarize(pred: np.ndarray, gt: np.ndarray) -> dict[str, object]:
    """The full metric set that ``evaluate`` reports and training records per epoch."""
    nme = nme_io(pred, gt)
    return {
        "images": int(len(nme)),
        "nme_io": float(nme.mean()) if nme.size else float("nan"),
        "fr_08": failure_rate(nme, 0.08),
        "fr_10": failure_rate(nme, 0.10),
        "auc_08": auc(nme, 0.08),
        "auc_10": auc(nme, 0.10),
        "regions": region_nme(pred, gt),
    }


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values`` (flattened), ties sharing the mean of their ranks:
    ``[10, 20, 20, 5]`` -> ``[2, 3.5, 3.5, 1]``."""
    x = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(x, kind="stable")
    ordered = x[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # first of each tie run
    ends = np.r_[starts[1:], len(x)]
    ranks = np.empty(len(x))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two equally long arrays (average ranks for ties), over
    the pairs where both are finite; NaN with fewer than two pairs or a constant side."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    keep = np.isfinite(a) & np.isfinite(b)
    ra, rb = average_ranks(a[keep]), average_ranks(b[keep])
    if len(ra) < 2 or np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return math.nan
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float(np.sum(ra * rb) / math.sqrt(np.sum(ra * ra) * np.sum(rb * rb)))
