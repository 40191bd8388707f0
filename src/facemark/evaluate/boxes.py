"""The face box each frame is scored in: from the true keypoints, or the detection that holds
them.

``boxes="gt"`` measures the landmark model alone; ``boxes="detect"`` measures the pipeline,
and a frame whose face no detection holds is a miss (NaN box).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from facemark.errors import UsageError

if TYPE_CHECKING:
    from facemark.data import FaceSet
    from facemark.images import Photo
    from facemark.pipeline import FaceMarker

BOX_MODES = ("gt", "detect")


def match_detection(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray) -> int | None:
    """The detection of this face: the best-scoring box containing the keypoints' centroid."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    cx, cy = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2).mean(axis=0)
    inside = (boxes[:, 0] <= cx) & (cx <= boxes[:, 2]) & (boxes[:, 1] <= cy) & (cy <= boxes[:, 3])
    if not inside.any():
        return None
    candidates = np.flatnonzero(inside)
    return int(candidates[np.argmax(scores[candidates])])


def face_boxes(
    faces: FaceSet,
    mode: str = "gt",
    marker: FaceMarker | None = None,
    batch_size: int = 32,
    advance: Callable[[int], None] | None = None,
    photos: Sequence[Photo] | None = None,
) -> np.ndarray:
    """One crop box per frame, ``(N, 4)``; rows of NaN where the detector missed the face.

    ``"detect"`` runs the marker on ``batch_size`` frames at a time, exactly as ``annotate``
    would on those images (the landmark model's confirmation included), and keeps the box of
    the face that holds the true points' centroid.  ``photos``: the frames already wrapped
    (:meth:`Photo.from_image`), so a caller that also predicts converts them once.
    """
    if mode not in BOX_MODES:
        raise UsageError(f"--boxes must be one of {', '.join(BOX_MODES)}, not '{mode}'")
    if mode == "gt":
        return faces.boxes().astype(np.float64)
    if marker is None or marker.detector is None:
        raise UsageError("boxes='detect' needs a face detector")
    out = np.full((len(faces), 4), np.nan)
    step = max(1, int(batch_size))
    for start in range(0, len(faces), step):
        chunk = (photos if photos is not None else faces.images)[start : start + step]
        found = marker.batch(chunk)
        for i, marked in enumerate(found, start=start):
            boxes = np.array([f.box for f in marked]).reshape(-1, 4)
            k = match_detection(boxes, np.array([f.score for f in marked]), faces.keypoints[i])
            if k is not None:
                out[i] = boxes[k]
        if advance:
            advance(len(chunk))
    return out
