"""One model on one set of frames: boxes, predictions, scores, subsets and timing, gathered
into an :class:`~facemark.evaluate.evaluation.Evaluation`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from facemark.evaluate.boxes import face_boxes
from facemark.evaluate.evaluation import Evaluation
from facemark.evaluate.prediction import predict_faces
from facemark.evaluate.progress import _Progress
from facemark.evaluate.scoring import confidence_vs_error, score
from facemark.evaluate.subsets import subset_scores
from facemark.evaluate.threads import _threads
from facemark.evaluate.timing import TIMING_BATCHES, time_inference
from facemark.images import Photo

if TYPE_CHECKING:
    from facemark.data import FaceSet
    from facemark.landmarker import Landmarker
    from facemark.pipeline import FaceMarker


def run_evaluation(
    model: Landmarker | FaceMarker,
    faces: FaceSet,
    *,
    name: str = "model",
    boxes: str | np.ndarray = "gt",
    flip: bool = False,
    batch_size: int = 32,
    timing: bool = True,
    device: str = "cpu",
    split: str | None = None,
    progress: _Progress | None = None,
) -> Evaluation:
    """Predict every face of ``faces``, score it and (optionally) time the model.

    ``boxes`` is a mode (``"gt"``/``"detect"``) or precomputed ``(N, 4)`` boxes with NaN rows
    for misses (so several models share one detector pass).
    """
    from facemark.pipeline import FaceMarker

    mode = boxes if isinstance(boxes, str) else "detect"
    progress = progress or _Progress(enabled=False)
    marker = model if isinstance(model, FaceMarker) else FaceMarker(None, model, device, flip)
    photos = [Photo.from_image(im) for im in faces.images]  # converted once for every pass
    if mode == "detect" and isinstance(boxes, str):
        with progress.task("detecting faces", len(faces)) as adv:
            crop_boxes = face_boxes(faces, mode, marker, batch_size, advance=adv, photos=photos)
    elif isinstance(boxes, str):
        crop_boxes = face_boxes(faces, mode)
    else:
        crop_boxes = np.asarray(boxes, dtype=np.float64).reshape(len(faces), 4)
    with progress.task(f"evaluating {name}", len(faces)) as adv:
        pred, point_conf = predict_faces(marker, photos, crop_boxes, batch_size, advance=adv)
    conf = point_conf.mean(axis=1)
    nme, scores = score(pred, faces.keypoints)
    ms: dict[int, float] = {}
    if timing:
        with progress.task(f"timing {name} (batch {', '.join(map(str, TIMING_BATCHES))})", None):
            ms = time_inference(marker, photos, crop_boxes, device=device)
    info = {"model": name, "split": split, "boxes": mode}
    info.update((k, scores[k]) for k in ("images", "found", "missed", "nme_io"))
    info.update((k, scores[k]) for k in ("fr_08", "fr_10", "auc_08", "auc_10"))
    info.update(ms_per_face=ms.get(1), ms_per_face_b32=ms.get(32), regions=scores["regions"])
    info.update(flip=marker.flip, device=str(device), threads=_threads(device))
    info["subsets"] = subset_scores(pred, faces.keypoints, conf)
    info["confidence_vs_error"] = confidence_vs_error(pred, faces.keypoints, point_conf)
    images = list(faces.images)
    return Evaluation(info, list(faces.names), pred, nme, images, faces.keypoints, conf)
