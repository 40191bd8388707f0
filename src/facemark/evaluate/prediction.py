"""Running the landmark model on one box per frame, in batches, as ``annotate`` does.

Shared by scoring (:func:`predict_faces`) and the speed measurement
(:mod:`facemark.evaluate.timing`), so both time and score the same call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from facemark.shape import NUM_POINTS

if TYPE_CHECKING:
    from facemark.images import Photo
    from facemark.pipeline import FaceMarker


def predict_faces(
    marker: FaceMarker,
    images: Sequence[np.ndarray | Photo],
    boxes: np.ndarray,
    batch_size: int = 32,
    advance: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints ``(N, 68, 2)`` and each point's confidence ``(N, 68)`` for one box per image;
    NaN where the box is NaN (a miss).

    The crops of up to ``batch_size`` images go through the network together.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    pred = np.full((len(images), NUM_POINTS, 2), np.nan)
    conf = np.full((len(images), NUM_POINTS), np.nan)
    found = np.flatnonzero(np.isfinite(boxes).all(axis=1))
    step = max(1, int(batch_size))
    for start in range(0, len(found), step):
        idx = found[start : start + step]
        for i, (kps, c) in zip(idx, _predict(marker, images, boxes, idx), strict=True):
            pred[i], conf[i] = kps, c
        if advance:
            advance(len(idx))
    if advance and len(images) > len(found):
        advance(len(images) - len(found))
    return pred, conf


def _predict(
    marker: FaceMarker, images: Sequence[np.ndarray | Photo], boxes: np.ndarray, idx: Sequence[int]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(keypoints ``(68, 2)``, confidence ``(68,)``) for face ``boxes[i]`` of ``images[i]``,
    ``i`` in ``idx``, in one network call (the landmark half of the pipeline ``annotate``
    uses)."""
    idx = [int(i) for i in idx]
    marks = marker.landmarks([images[i] for i in idx], [boxes[[i]] for i in idx])
    return [
        (kps.reshape(NUM_POINTS, 2).astype(np.float64), conf.reshape(NUM_POINTS).astype(np.float64))
        for kps, conf in marks
    ]
