"""The figures of one model on one set: per-image NME with misses as failures, the 300-W
summary (:mod:`facemark.metrics`), and how well the model's confidence ranks its errors."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from facemark import metrics
from facemark.metrics import spearman
from facemark.shape import NUM_POINTS


def score(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-image NME (inf for a miss) and the summary metrics.

    Misses are failures at every threshold and lower the CED; the mean NME and the region
    NMEs are over the found faces (an infinite error has no mean).
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    found = np.isfinite(pred).all(axis=(1, 2))
    nme = np.full(len(gt), np.inf)
    if found.any():
        nme[found] = metrics.nme_io(pred[found], gt[found])
        summary = metrics.summarize(pred[found], gt[found])
    else:
        summary = {"nme_io": math.nan, "regions": {}}
    summary.update(
        images=int(len(gt)),
        found=int(found.sum()),
        missed=int((~found).sum()),
        fr_08=metrics.failure_rate(nme, 0.08),
        fr_10=metrics.failure_rate(nme, 0.10),
        auc_08=metrics.auc(nme, 0.08),
        auc_10=metrics.auc(nme, 0.10),
    )
    return nme, summary


def confidence_quartile(conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(quartile 0-3 of each face's mean confidence, -1 for a miss; the 5 edges, min to max).

    The edges are the quartiles of the found faces' confidences; a face on an edge goes to
    the lower quartile.
    """
    conf = np.asarray(conf, dtype=np.float64)
    known = np.isfinite(conf)
    if not known.any():
        return np.full(len(conf), -1), np.full(5, np.nan)
    edges = np.quantile(conf[known], [0.0, 0.25, 0.5, 0.75, 1.0])
    out = np.full(len(conf), -1)
    out[known] = np.searchsorted(edges[1:4], conf[known], side="left")
    return out, edges


def confidence_vs_error(pred: np.ndarray, gt: np.ndarray, conf: np.ndarray) -> dict[str, Any]:
    """How well the model's confidence ranks its own errors (Spearman rho; negative: less
    confident where it is further off), over the found faces: ``{"points": rho of each
    point's confidence with its error / the face's eye distance, pooled over all points of
    all faces, "faces": rho of each face's mean confidence with its NME_io, "n_points",
    "n_faces"}``.  ``conf`` is per point, ``(N, 68)``."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    conf = np.asarray(conf, dtype=np.float64).reshape(len(gt), NUM_POINTS)
    found = np.isfinite(pred).all(axis=(1, 2)) & np.isfinite(conf).all(axis=1)
    errors = metrics.point_errors(pred[found], gt[found])
    return {
        "points": spearman(conf[found], errors),
        "faces": spearman(conf[found].mean(axis=1), errors.mean(axis=1)),
        "n_points": int(errors.size),
        "n_faces": int(found.sum()),
    }
