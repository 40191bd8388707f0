"""``facemark evaluate``: standard 68-point metrics for one or several landmark models.

The figures are the 300-W conventions (:mod:`facemark.metrics`): NME normalised by the outer
eye corners, failure rate and CED area under 0.08 and 0.10, and NME per facial region, plus the
inference cost per face.  Two ways to get the face box isolate two questions:

* ``boxes="gt"`` crops from the true keypoints (:func:`transforms.face_box_from_keypoints`),
  exactly as training does, so the figures measure the landmark model alone;
* ``boxes="detect"`` uses the face detector, as ``annotate`` does, so they measure the whole
  pipeline.  An image where no detection contains the centroid of the true keypoints is a
  *miss*: it counts as a failure in FR and AUC (its NME is infinite) and is reported, but it
  cannot enter the mean NME, which is over the faces that were found.

Everything returns plain dicts and lists so benchmarks and notebooks can call
:func:`evaluate_models` / :func:`evaluate_model` without the CLI; the CLI only prints them.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facemark import metrics
from facemark.detectors.base import Detector, DetectorConfig
from facemark.errors import DataError, UsageError
from facemark.images import Photo
from facemark.metrics import YAW_BINS, bin_index, spearman, yaw_proxy
from facemark.shape import NUM_POINTS

if TYPE_CHECKING:
    from facemark.dataset import FaceSet
    from facemark.landmarker import Landmarker
    from facemark.pipeline import FaceMarker

BOX_MODES = ("gt", "detect")
#: Frames (and so faces) per network call.
BATCH_SIZE = 32
SPLITS = ("val", "test")
#: Batch sizes of the speed measurement: one face at a time (interactive use) and a batch.
TIMING_BATCHES = (1, 32)
#: Training defaults for the validation split, used when a model carries no training config.
VAL_DEFAULTS = {"val_fraction": 0.1, "seed": 0, "val_by": "identity"}
#: Gallery colours: the true points, then each model's points (bright, to show on any face).
TRUE_COLOR = (0, 255, 0)
MODEL_COLORS = [(255, 50, 50), (0, 200, 255), (255, 0, 255), (255, 210, 0), (255, 130, 0)]
#: Subsets (as WFLW reports pose, expression, blur): ``[low, high)`` bin edges of the yaw proxy
#: ``|nose tip x - outer-eye-corner midpoint x| / eye distance`` and of the eye distance (px).
SIZE_BINS = (0.0, 30.0, 40.0, 50.0, math.inf)


# --------------------------------------------------------------------------- evaluation data


def load_labeled(images_dir: str | Path, labels_csv: str | Path, progress: bool = False) -> FaceSet:
    """A labelled folder for evaluation, strictly checked.

    Training may skip a bad row; an evaluation silently run on fewer images than the user gave
    would report figures for a different set, so wrong column counts and missing images stop
    it with one line that says how many and which one first.
    """
    from facemark import dataset

    images_dir, labels_csv = Path(images_dir), Path(labels_csv)
    if not images_dir.is_dir():
        raise DataError(f"image folder not found: {images_dir}")
    names, _, skipped = dataset.read_keypoints_csv(labels_csv)
    bad = [s for s in skipped if "values instead of" in s.reason]
    if bad:
        raise DataError(
            f"{labels_csv}: {len(bad)} row(s) do not have 1 + {2 * NUM_POINTS} columns "
            f"(name,x0,y0,...,x67,y67); first: '{bad[0].name}' has {bad[0].reason}"
        )
    missing = [n for n in names if not (images_dir / n).is_file()]
    if missing:
        raise DataError(
            f"{len(missing)} of {len(names)} image(s) listed in {labels_csv.name} are missing "
            f"from {images_dir} (first: {missing[0]})"
        )
    return dataset.load_labeled_folder(images_dir, labels_csv, progress=progress)


def load_split(
    split: str,
    split_settings: dict[str, Any] | None = None,
    root: str | Path | None = None,
    limit: int | None = None,
    progress: bool = False,
) -> FaceSet:
    """The ``val`` or ``test`` frames of the installed dataset (``val`` per ``split_settings``)."""
    from facemark import dataset

    if split not in SPLITS:
        raise UsageError(f"--split must be one of {', '.join(SPLITS)}, not '{split}'")
    settings = {**VAL_DEFAULTS, **(split_settings or {})}
    return dataset.load_split(split, root=root, progress=progress, limit=limit, **settings)


def split_settings_from_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """The validation-split settings a model was trained with (empty when unknown).

    A run's held-out persons depend on ``val_fraction``, ``seed`` and ``val_by``; evaluating
    its ``val`` figures on any other split would mix in frames it trained on.
    """
    config = config or {}
    out: dict[str, Any] = {}
    for key in VAL_DEFAULTS:
        if config.get(key) is not None:
            out[key] = config[key]
    return out


# --------------------------------------------------------------------------- boxes


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


# --------------------------------------------------------------------------- prediction


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


def time_inference(
    marker: FaceMarker,
    images: Sequence[np.ndarray | Photo],
    boxes: np.ndarray,
    batch_sizes: Sequence[int] = TIMING_BATCHES,
    min_seconds: float = 0.5,
    min_repeats: int = 5,
    max_repeats: int = 50,
    device: str = "cpu",
) -> dict[int, float]:
    """Median milliseconds per face at each batch size, on real crops of real frames.

    One call is the full landmark step a user pays for per face: crop, network, decoding and
    mapping back to image pixels (not image decoding, not detection).  Each batch size gets
    warm-up calls first (lazy initialisation, cuDNN autotuning, caches), then repeats until
    ``min_seconds`` have passed (between ``min_repeats`` and ``max_repeats``); the median
    resists the other processes of a shared machine.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    usable = [i for i in range(len(images)) if np.isfinite(boxes[i]).all()]
    if not usable:
        return {}
    sync = _synchronizer(device)
    out: dict[int, float] = {}
    for bs in batch_sizes:
        picks = [usable[k % len(usable)] for k in range(bs)]

        def call(picks: list[int] = picks) -> None:
            _predict(marker, images, boxes, picks)
            sync()

        for _ in range(2):
            call()
        times: list[float] = []
        began = time.perf_counter()
        while len(times) < max_repeats and (
            len(times) < min_repeats or time.perf_counter() - began < min_seconds
        ):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        out[bs] = 1000.0 * statistics.median(times) / bs
    return out


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


def _threads(device: str) -> int | None:
    """Torch's CPU threads, which set CPU speed figures (None on a GPU, where they do not)."""
    if str(device).startswith("cuda"):
        return None
    import torch

    return torch.get_num_threads()


def _synchronizer(device: str) -> Callable[[], None]:
    """Wait for queued GPU work, so a timing measures the work and not its launch."""
    if not str(device).startswith("cuda"):
        return lambda: None
    import torch

    return torch.cuda.synchronize


# --------------------------------------------------------------------------- scoring


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


# --------------------------------------------------------------------------- one model


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
        """``[{"image", "nme_io" (None for a miss), "missed"}]`` in the set's order."""
        return [
            {"image": n, "nme_io": _finite(e), "missed": not math.isfinite(e)}
            for n, e in zip(self.names, self.nme, strict=True)
        ]

    def as_dict(self, per_image: bool = False) -> dict[str, Any]:
        out = _json_safe(self.summary)
        if per_image:
            out["per_image"] = self.per_image()
        return out


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


def evaluate_model(
    model: Any = "default", faces: FaceSet | None = None, **kwargs: Any
) -> dict[str, Any]:
    """One model as a plain dict; see :func:`evaluate_models` for the arguments."""
    result = evaluate_models([model], faces=faces, **kwargs)
    return result["models"][0]


def evaluate_models(
    models: Sequence[Any] = ("default",),
    faces: FaceSet | None = None,
    *,
    split: str = "test",
    images: str | Path | None = None,
    labels: str | Path | None = None,
    root: str | Path | None = None,
    val_fraction: float | None = None,
    seed: int | None = None,
    val_by: str | None = None,
    limit: int | None = None,
    boxes: str = "gt",
    detector: Any = "default",
    threshold: float = DetectorConfig.threshold,
    flip: bool = False,
    device: str | None = "cpu",
    batch_size: int = BATCH_SIZE,
    timing: bool = True,
    threads: int | None = None,
    report: str | Path | None = None,
    worst: int = 16,
    per_image: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate each model on the same frames; ``{"models": [summary dict, ...], ...}``.

    ``models``: specs (``"default"``, a run name, a checkpoint path, an https URL) or loaded
    models (anything with ``predict(image, boxes, flip)``).  The frames are ``faces`` (a
    :class:`FaceSet`) when given, else ``images`` + ``labels``, else ``split`` of the
    installed dataset (``root`` overrides its folder; ``limit`` takes a random subset).
    ``root`` in another format (a folder of ``.pts`` files, an annotations JSONL, a COCO JSON,
    a CSV: :mod:`facemark.labelsets`) scores every labelled face it holds.  For
    ``split="val"``, unset ``val_fraction``/``seed``/``val_by`` come from each model's
    training config, so a run is scored on the persons it held out.  ``boxes="detect"`` runs
    ``detector`` (a spec or a loaded detector) with each model, as annotate would: the
    model's own checks decide which detections are faces.
    ``report`` writes ced.png, per_image.csv, subsets.csv, worst.png and summary.json into
    that folder.

    Each summary has: model, images, found, missed, nme_io, fr_08, fr_10, auc_08, auc_10,
    regions, subsets (:func:`subset_scores`), confidence_vs_error (:func:`confidence_vs_error`),
    ms_per_face (batch 1), ms_per_face_b32, split, boxes, flip, device (plus val_split for
    ``split="val"`` and per_image when asked).  Non-finite values are None.
    """

    if boxes not in BOX_MODES:
        raise UsageError(f"--boxes must be one of {', '.join(BOX_MODES)}, not '{boxes}'")
    if not models:
        raise UsageError("no model to evaluate")
    if (images is None) != (labels is None):
        raise UsageError("--images and --labels go together: a folder of images and its CSV")
    if split not in SPLITS and faces is None and images is None:
        raise UsageError(f"--split must be one of {', '.join(SPLITS)}, not '{split}'")
    from facemark.detectors import load_detector
    from facemark.devices import resolve_device
    from facemark.pipeline import FaceMarker

    device = resolve_device(device)
    data = None
    if root is not None and faces is None and images is None:
        from facemark.labelsets import is_udacity

        if not is_udacity(root):  # .pts folder, JSONL, COCO or CSV: every labelled face
            data, root = root, None
    explicit = {"val_fraction": val_fraction, "seed": seed, "val_by": val_by}
    source = _FrameSource(faces, images, labels, split, root, limit, explicit, progress, data)
    prog = _Progress(enabled=progress)
    evaluations: list[Evaluation] = []
    with _torch_threads(threads), prog:
        source.preload()  # a data error shows before any model is loaded or downloaded
        loaded = [_load_model(m, device) for m in models]
        # a loaded detector keeps its own options unless another threshold is asked for
        keep_own = isinstance(detector, Detector) and threshold == DetectorConfig.threshold
        det_config = None if keep_own else DetectorConfig(threshold=threshold)
        det = load_detector(detector, device, det_config) if boxes == "detect" else None
        for model, label, config, meta in loaded:
            frames, split_name, val_split = source.frames_for(config)
            crop_boxes: str | np.ndarray = boxes
            if det is not None:
                # per model: which detections count as faces is the model's own decision
                # (its landmark confidence and faceness checks), as in annotate
                with prog.task("detecting faces", len(frames)) as adv:
                    crop_boxes = face_boxes(
                        frames, "detect", FaceMarker(det, model, device), batch_size, adv
                    )
            ev = run_evaluation(
                model,
                frames,
                name=label,
                boxes=crop_boxes,
                flip=flip,
                batch_size=batch_size,
                timing=timing,
                device=device,
                split=split_name,
                progress=prog,
            )
            ev.summary.update(meta)
            if val_split:
                ev.summary["val_split"] = val_split
            evaluations.append(ev)
    result: dict[str, Any] = {"models": [ev.as_dict(per_image) for ev in evaluations]}
    if len({tuple(ev.names) for ev in evaluations}) > 1:
        result["warning"] = "the models were scored on different frames (their val splits differ)"
    if report is not None:
        from facemark.files import write_json

        files = write_report(evaluations, report, worst)
        files["summary"] = Path(report) / "summary.json"
        result["report"] = {k: str(v) for k, v in files.items()}
        write_json(files["summary"], result)
    return result


def evaluate_sources(
    models: Sequence[Any],
    sources: Sequence[str],
    *,
    split: str | None = None,
    val_fraction: float | None = None,
    seed: int | None = None,
    val_by: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """:func:`evaluate_models` on each labelled source, one result per source:
    ``{"sources": {name: result, ...}}`` (names as training names them).

    A dataset root gives its ``split`` (default test); another format gives every face, or
    with ``split`` "val"/"train" that part of it as ``train --data`` splits it (by file, or
    by photo with ``val_by="photo"``; fraction and seed as given, else 0.1 and 0), so a run
    trained on several sources is scored on each source's held-out part.
    """
    from facemark import labelsets

    names = labelsets.source_names(list(sources))
    out: dict[str, Any] = {}
    report = options.pop("report", None)
    for name, source in zip(names, sources, strict=True):
        if report is not None:  # one report folder per source
            options["report"] = Path(report) / name if len(sources) > 1 else report
        if labelsets.is_udacity(source):
            out[name] = evaluate_models(
                models, split=split or "test", root=source, val_fraction=val_fraction,
                seed=seed, val_by=val_by, **options,
            )  # fmt: skip
            continue
        faces = labelsets.load_faces(source, progress=bool(options.get("progress")))
        if split in ("train", "val"):
            parts = labelsets.split_faces(
                faces,
                VAL_DEFAULTS["val_fraction"] if val_fraction is None else val_fraction,
                VAL_DEFAULTS["seed"] if seed is None else seed,
                val_by or "frame",
            )
            faces = parts[1] if split == "val" else parts[0]
        elif split is not None:
            raise UsageError(f"--split {split}: a {name} label set has train and val parts only")
        out[name] = evaluate_models(models, faces, split=split or "all", **options)
    return {"sources": out}


class _FrameSource:
    """The frames each model is scored on, each set loaded once.

    Only ``split="val"`` can differ between models (their training configs may hold out
    different persons); everything else is one set for all.
    """

    def __init__(
        self, faces, images, labels, split, root, limit, explicit, progress, data=None
    ) -> None:
        self.faces, self.images, self.labels, self.data = faces, images, labels, data
        self.split, self.root, self.limit, self.progress = split, root, limit, progress
        self.explicit = {k: v for k, v in explicit.items() if v is not None}
        self._sets: dict[tuple, Any] = {}

    def preload(self) -> None:
        """Load the frames now when they do not depend on a model's training config."""
        if self.faces is None and (
            self.images is not None or self.data is not None or self.split != "val"
        ):
            self.frames_for({})

    def frames_for(self, config: dict[str, Any]) -> tuple[Any, str, dict[str, Any] | None]:
        """(FaceSet, split label, val-split settings or None) for a model's training config."""
        if self.faces is not None:
            return self.faces, "custom", None
        if self.images is not None:
            if "folder" not in self._sets:
                self._sets["folder"] = load_labeled(
                    self.images, self.labels, progress=self.progress
                )
            return self._sets["folder"], f"folder:{self.images}", None
        if self.data is not None:
            if "data" not in self._sets:
                from facemark.labelsets import load_faces

                self._sets["data"] = load_faces(self.data, limit=self.limit, progress=self.progress)
            return self._sets["data"], f"data:{self.data}", None
        settings = None
        if self.split == "val":
            settings = {**VAL_DEFAULTS, **split_settings_from_config(config), **self.explicit}
        key = (self.split, tuple(sorted((settings or {}).items())))
        if key not in self._sets:
            self._sets[key] = load_split(
                self.split, settings, root=self.root, limit=self.limit, progress=self.progress
            )
        return self._sets[key], self.split, settings


def _load_model(spec: Any, device: str) -> tuple[Landmarker, str, dict[str, Any], dict[str, Any]]:
    """(model, display name, training config, facts for the summary) for a spec or a model."""
    from facemark import checkpoint, hub
    from facemark.landmarker import Landmarker

    if isinstance(spec, Landmarker):
        name = str(spec.info.get("run_name") or spec.arch)
        return spec, name, dict(spec.info.get("config") or {}), {"arch": spec.arch}

    path = hub.resolve_model(spec, "landmarks")
    payload = checkpoint.load_checkpoint(path, "landmarks")
    config = dict(payload.get("config") or {})
    meta = {"checkpoint": str(path), "arch": payload.get("arch"), "epoch": payload.get("epoch")}
    return Landmarker.from_checkpoint(payload, device=device), str(spec), config, meta


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op threads, restoring the previous setting afterwards."""
    if not threads:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------- report


def write_report(
    evaluations: Sequence[Evaluation], out_dir: str | Path, worst: int = 16
) -> dict[str, Path]:
    """ced.png, per_image.csv, subsets.csv and worst.png in ``out_dir``; returns their paths."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--report must be a folder, but {out} is a file")
    out.mkdir(parents=True, exist_ok=True)
    return {
        "ced": write_ced_plot(evaluations, out / "ced.png"),
        "per_image": write_per_image_csv(evaluations, out / "per_image.csv"),
        "subsets": write_subsets_csv(evaluations, out / "subsets.csv"),
        "worst": write_worst_gallery(evaluations, out / "worst.png", worst),
    }


def write_ced_plot(evaluations: Sequence[Evaluation], path: Path, threshold: float = 0.10) -> Path:
    """The cumulative error distribution of every model on one chart (NME in %)."""
    from facemark import plot

    series = {}
    for ev in evaluations:
        xs, ys = metrics.ced(ev.nme, threshold, steps=200)
        series[_unique(ev.summary["model"], series)] = (xs * 100.0, ys * 100.0)
    first = evaluations[0].summary
    title = f"Cumulative error distribution ({first.get('split')}, {first.get('boxes')} boxes)"
    plot.line_chart(series, path, title=title, xlabel="NME_io (%)", ylabel="images (%)")
    return path


def write_per_image_csv(evaluations: Sequence[Evaluation], path: Path) -> Path:
    """``model,image,nme_io,missed``: one row per model and image (empty NME for a miss)."""
    from facemark.files import atomic_write

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["model", "image", "nme_io", "missed"])
    for ev in evaluations:
        for row in ev.per_image():
            nme = "" if row["nme_io"] is None else f"{row['nme_io']:.6f}"
            writer.writerow([ev.summary["model"], row["image"], nme, int(row["missed"])])
    with atomic_write(path, "w") as fh:
        fh.write(buf.getvalue())
    return path


def write_subsets_csv(evaluations: Sequence[Evaluation], path: Path) -> Path:
    """``model,grouping,bin,faces,nme_io,fr_10,auc_10``: one row per model and subset bin."""
    from facemark.files import atomic_write

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    keys = ("nme_io", "fr_10", "auc_10")
    writer.writerow(["model", "grouping", "bin", "faces", *keys])
    for ev in evaluations:
        for grouping, rows in (ev.summary.get("subsets") or {}).items():
            for row in rows:
                values = [_finite(row[k]) if row[k] is not None else None for k in keys]
                cells = ["" if v is None else f"{v:.6f}" for v in values]
                writer.writerow([ev.summary["model"], grouping, row["bin"], row["faces"], *cells])
    with atomic_write(path, "w") as fh:
        fh.write(buf.getvalue())
    return path


def worst_indices(evaluations: Sequence[Evaluation], n: int) -> list[int]:
    """The ``n`` frames with the largest error of any model (misses first)."""
    errors = np.stack([ev.nme for ev in evaluations]).max(axis=0)
    order = np.argsort(-errors, kind="stable")
    return [int(i) for i in order[: max(0, n)]]


def write_worst_gallery(evaluations: Sequence[Evaluation], path: Path, n: int = 16) -> Path:
    """The worst frames with the true points (green) and each model's points (see the legend).

    Each tile is the face's neighbourhood enlarged, captioned with the frame's name and each
    model's NME; a miss has no predicted points and says so.  Only the models scored on the
    first model's frames take part (val splits of different runs may differ).
    """
    from facemark import draw, transforms
    from facemark.files import atomic_write

    first = evaluations[0]
    shown = [(k, ev) for k, ev in enumerate(evaluations) if ev.names == first.names]
    tiles, captions = [], []
    for i in worst_indices([ev for _, ev in shown], n):
        gt = first.gt[i]
        # A square view of the face, enlarged so the dots of several models stay apart.
        crop, M = transforms.crop_face(first.images[i], transforms.face_box_from_keypoints(gt), 192)
        true_pts = transforms.apply_affine(gt, M)
        tile = draw.draw_keypoints(crop, true_pts, color=TRUE_COLOR, radius=2.0)
        parts = []
        for k, ev in shown:
            if np.isfinite(ev.pred[i]).all():
                pts = transforms.apply_affine(ev.pred[i], M)
                tile = draw.draw_keypoints(tile, pts, color=_model_color(k), radius=1.6)
                parts.append(f"{100 * ev.nme[i]:.1f}%")
            else:
                parts.append("missed")
        tiles.append(tile)
        captions.append(f"{first.names[i]} {'/'.join(parts)}")
    grid = draw.make_grid(tiles, captions=captions)
    legend = [("truth", TRUE_COLOR)] + [(ev.summary["model"], _model_color(k)) for k, ev in shown]
    with atomic_write(path, "wb") as fh:
        _with_legend(grid, legend).save(fh, format="PNG")
    return path


def _model_color(k: int) -> tuple[int, int, int]:
    return MODEL_COLORS[k % len(MODEL_COLORS)]


def _with_legend(grid, items: Sequence[tuple[str, tuple[int, int, int]]]):
    """``grid`` under a strip that names the colour of each set of points."""
    from PIL import Image, ImageDraw

    from facemark import draw

    fnt = draw.font(14)
    strip = Image.new("RGB", (grid.width, 24), (24, 24, 24))
    pen = ImageDraw.Draw(strip)
    x = 8
    for label, colour in items:
        pen.ellipse([x, 7, x + 10, 17], fill=colour)
        pen.text((x + 15, 4), label, fill=(230, 230, 230), font=fnt)
        x += 15 + int(pen.textlength(label, font=fnt)) + 18
    out = Image.new("RGB", (grid.width, grid.height + strip.height))
    out.paste(strip, (0, 0))
    out.paste(grid, (0, strip.height))
    return out


# --------------------------------------------------------------------------- tables

#: Summary columns: (header, key, format, lower is better).
_COLUMNS = [
    ("NME_io %", "nme_io", lambda v: f"{100 * v:.2f}", True),
    ("FR@0.08 %", "fr_08", lambda v: f"{100 * v:.1f}", True),
    ("FR@0.10 %", "fr_10", lambda v: f"{100 * v:.1f}", True),
    ("AUC@0.08", "auc_08", lambda v: f"{v:.4f}", False),
    ("AUC@0.10", "auc_10", lambda v: f"{v:.4f}", False),
    ("ms/face b1", "ms_per_face", lambda v: f"{v:.2f}", True),
    ("ms/face b32", "ms_per_face_b32", lambda v: f"{v:.2f}", True),
]


def results_table(result: dict[str, Any]):
    """The side-by-side rich table: one row per model; the best value of a column in bold."""
    from rich.table import Table

    rows = result["models"]
    first = rows[0]
    table = Table(
        title=f"evaluation: {first.get('split')} split, {first.get('boxes')} boxes"
        + (", flip" if first.get("flip") else "")
        + f", {first.get('device')}",
        title_justify="left",
    )
    table.add_column("model", overflow="fold")
    table.add_column("images", justify="right")
    show_missed = any(r.get("boxes") == "detect" for r in rows)
    if show_missed:
        table.add_column("missed", justify="right")
    for header, *_ in _COLUMNS:
        table.add_column(header, justify="right")
    for r in rows:
        cells = [str(r["model"]), str(r["images"])]
        if show_missed:
            cells.append(str(r.get("missed", 0)))
        for _, key, fmt, lower in _COLUMNS:
            cells.append(_cell(r.get(key), [x.get(key) for x in rows], fmt, lower))
        table.add_row(*cells)
    return table


def regions_table(result: dict[str, Any]):
    """NME_io (%) per facial region, one row per model."""
    from rich.table import Table

    from facemark.shape import REGIONS

    table = Table(title="NME_io % by region", title_justify="left")
    table.add_column("model", overflow="fold")
    for region in REGIONS:
        table.add_column(region, justify="right")
    rows = result["models"]
    for r in rows:
        cells = [str(r["model"])]
        for region in REGIONS:
            column = [(x.get("regions") or {}).get(region) for x in rows]
            value = (r.get("regions") or {}).get(region)
            cells.append(_cell(value, column, lambda v: f"{100 * v:.2f}", True))
        table.add_row(*cells)
    return table


#: The subset groupings: (key, table title).
SUBSET_GROUPS = [
    ("yaw", "by yaw (nose offset / eye distance)"),
    ("size", "by face size (eye distance, px)"),
    ("confidence", "by the model's mean confidence quartile"),
]


def subsets_tables(result: dict[str, Any]) -> list:
    """One rich table per subset grouping: a row per bin, the models side by side (faces,
    NME_io %, FR@0.10 %, AUC@0.10 each); the best of a bin's row in bold."""
    from rich.table import Table

    rows = result["models"]
    many = len(rows) > 1
    columns = [
        ("NME_io %", "nme_io", lambda v: f"{100 * v:.2f}", True),
        ("FR@0.10 %", "fr_10", lambda v: f"{100 * v:.1f}", True),
        ("AUC@0.10", "auc_10", lambda v: f"{v:.4f}", False),
    ]
    tables = []
    for group, title in SUBSET_GROUPS:
        bins = [(r.get("subsets") or {}).get(group) or [] for r in rows]
        table = Table(title=f"subsets {title}", title_justify="left")
        table.add_column("bin")
        for r in rows:
            prefix = f"{r['model']}\n" if many else ""
            table.add_column(f"{prefix}faces", justify="right")
            for header, *_ in columns:
                table.add_column(f"{prefix}{header}", justify="right")
        for k in range(max(len(b) for b in bins)):
            cells = [next((str(b[k]["bin"]) for b in bins if len(b) > k), "")]
            for b in bins:
                row = b[k] if len(b) > k else {}
                cells.append(str(row.get("faces", "-")))
                for _, key, fmt, lower in columns:
                    column = [x[k].get(key) if len(x) > k else None for x in bins]
                    cells.append(_cell(row.get(key), column, fmt, lower))
            table.add_row(*cells)
        tables.append(table)
    tables.append(confidence_table(result))
    return tables


#: The rows of :func:`confidence_table`: (label, key of the rho, key of its count).
CONFIDENCE_ROWS = [
    ("per point: confidence vs error / eye distance", "points", "n_points"),
    ("per face: mean confidence vs NME_io", "faces", "n_faces"),
]


def confidence_table(result: dict[str, Any]):
    """Spearman rho of the model's confidence with its error (:func:`confidence_vs_error`),
    per point and per face, the models side by side (the most negative in bold)."""
    from rich.table import Table

    rows = result["models"]
    many = len(rows) > 1
    table = Table(
        title="confidence vs error (Spearman rho; more negative: a more telling confidence)",
        title_justify="left",
    )
    table.add_column("pairs")
    for r in rows:
        prefix = f"{r['model']}\n" if many else ""
        table.add_column(f"{prefix}rho", justify="right")
        table.add_column(f"{prefix}n", justify="right")
    stats = [r.get("confidence_vs_error") or {} for r in rows]
    for label, key, count in CONFIDENCE_ROWS:
        cells = [label]
        for st in stats:
            column = [x.get(key) for x in stats]
            cells.append(_cell(st.get(key), column, lambda v: f"{v:+.3f}", True))
            cells.append(str(st.get(count, "-")))
        table.add_row(*cells)
    return table


def result_notes(result: dict[str, Any]) -> list[str]:
    """The lines under the tables: how the val split was made, misses, report files."""
    notes = []
    rows = result["models"]
    shared = len({json.dumps(r.get("val_split"), sort_keys=True) for r in rows}) == 1
    for r in rows[:1] if shared else rows:
        val = r.get("val_split")
        if val:
            notes.append(
                ("" if shared else f"{r['model']}: ")
                + f"val split: {100 * val['val_fraction']:g}% of the training "
                + ("frames" if val["val_by"] == "frame" else "persons")
                + f", seed {val['seed']} ({r['images']} frames)"
            )
    for r in rows:
        if r.get("missed"):
            notes.append(
                f"{r['model']}: no matching detection on {r['missed']} of {r['images']} frames "
                "(counted as failures; NME_io is over the found faces)"
            )
    if result.get("warning"):
        notes.append(f"[yellow]warning:[/] {result['warning']}")
    for path in (result.get("report") or {}).values():
        notes.append(f"wrote {path}")
    return notes


def _cell(value: Any, column: list[Any], fmt: Callable[[float], str], lower: bool) -> str:
    if value is None:
        return "-"
    text = fmt(value)
    known = [v for v in column if v is not None]
    best = min(known) if lower else max(known)
    return f"[bold]{text}[/]" if len(known) > 1 and fmt(best) == text else text


# --------------------------------------------------------------------------- helpers


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


def _unique(name: str, taken: dict[str, Any]) -> str:
    """A legend label not used yet (the same model may be listed twice)."""
    label, k = name, 2
    while label in taken:
        label, k = f"{name} ({k})", k + 1
    return label


class _Progress:
    """A rich progress display on stderr (stdout stays clean for ``--json``), or nothing."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._progress = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    @contextlib.contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """A bar for one phase; yields ``advance(n)``.  The bar goes when the phase ends."""
        if self._progress is None:
            yield lambda n=1: None
            return
        task_id = self._progress.add_task(description, total=total)
        try:
            yield lambda n=1: self._progress.advance(task_id, n)
        finally:
            self._progress.remove_task(task_id)
