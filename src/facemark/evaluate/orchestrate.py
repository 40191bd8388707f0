"""The evaluation as the CLI and the Python API run it: load each model (and the detector),
pick its frames, score it, and return plain dicts (and the report files when asked).

:func:`evaluate_models` compares models on the same frames; :func:`evaluate_sources` repeats
that per labelled source.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facemark.config import EVALUATE
from facemark.detectors.base import Detector, DetectorConfig
from facemark.errors import UsageError
from facemark.evaluate.boxes import BOX_MODES, face_boxes
from facemark.evaluate.evaluation import Evaluation
from facemark.evaluate.frames import SPLITS, VAL_DEFAULTS, _FrameSource, check_inputs
from facemark.evaluate.one_model import run_evaluation
from facemark.evaluate.progress import _Progress
from facemark.evaluate.report import write_report
from facemark.evaluate.threads import _torch_threads

if TYPE_CHECKING:
    from facemark.data import FaceSet
    from facemark.landmarker import Landmarker

#: Frames (and so faces) per network call.
BATCH_SIZE = EVALUATE.batch_size


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
    boxes: str = EVALUATE.boxes,
    detector: Any = EVALUATE.detector,
    threshold: float = DetectorConfig.threshold,
    flip: bool = EVALUATE.flip,
    device: str | None = EVALUATE.device,
    batch_size: int = BATCH_SIZE,
    timing: bool = EVALUATE.timing,
    threads: int | None = None,
    report: str | Path | None = None,
    worst: int = EVALUATE.worst,
    per_image: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate each model on the same frames; ``{"models": [summary dict, ...], ...}``.

    ``models``: specs (``"default"``, a run name, a checkpoint path, an https URL) or loaded
    models (anything with ``predict(image, boxes, flip)``).  The frames are ``faces`` (a
    :class:`FaceSet`) when given, else ``images`` + ``labels``, else ``split`` of the
    installed dataset (``root`` overrides its folder; ``limit`` takes a random subset).
    ``root`` in another format (a folder of ``.pts`` files, an annotations JSONL, a COCO JSON,
    a CSV: :func:`facemark.data.open_labels`) scores every labelled face it holds.  For
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
    check_inputs(None, images, labels)
    if split not in SPLITS and faces is None and images is None:
        raise UsageError(f"--split must be one of {', '.join(SPLITS)}, not '{split}'")
    from facemark.devices import resolve_device
    from facemark.hub import load_detector
    from facemark.pipeline import FaceMarker

    device = resolve_device(device)
    data = None
    if root is not None and faces is None and images is None:
        from facemark.data import is_udacity

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
    result: dict[str, Any] = {"models": [ev.to_dict(per_image) for ev in evaluations]}
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
    from facemark.data import open_labels, source_names

    names = source_names(list(sources))
    out: dict[str, Any] = {}
    report = options.pop("report", None)
    for name, source in zip(names, sources, strict=True):
        if report is not None:  # one report folder per source
            options["report"] = Path(report) / name if len(sources) > 1 else report
        labels = open_labels(source, progress=bool(options.get("progress")))
        if labels.is_udacity:
            out[name] = evaluate_models(
                models, split=split or "test", root=source, val_fraction=val_fraction,
                seed=seed, val_by=val_by, **options,
            )  # fmt: skip
            continue
        faces = labels.faces()
        if split in ("train", "val"):
            fraction = VAL_DEFAULTS["val_fraction"] if val_fraction is None else val_fraction
            held_out = {
                "val_fraction": fraction,
                "seed": VAL_DEFAULTS["seed"] if seed is None else seed,
                "val_by": val_by or "frame",
            }
            faces = labels.split(split, held_out)
        elif split is not None:
            raise UsageError(f"--split {split}: a {name} label set has train and val parts only")
        out[name] = evaluate_models(models, faces, split=split or "all", **options)
    return {"sources": out}


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
