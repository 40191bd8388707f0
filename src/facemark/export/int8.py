"""``facemark export --format int8``: an int8 checkpoint of a float landmark model for the CPU
(:mod:`facemark.quantize` quantises): calibrated on training-split crops, scored and timed
against the float model on val, and loaded back and compared before it is put in place."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facemark import quantize
from facemark.errors import FacemarkError, UsageError
from facemark.export.network import resolve
from facemark.export.options import INT8, LANDMARK_TIMING_BATCHES, _check_out
from facemark.export.parity import _ms
from facemark.files import sha256_file

if TYPE_CHECKING:
    import torch


def split_crops(
    data: Mapping[str, Any],
    split: str,
    limit: int | None = None,
    root: str | os.PathLike | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, Any]:
    """``(crops float (N, 3, S, S), keypoints (N, 68, 2) crop px)`` of one split of a
    checkpoint's own train/val division (``evaluate.split_settings_from_config``), without
    augmentation (the inference-time crop); ``limit`` keeps a random ``limit`` of its
    frames, picked by ``seed``."""
    import numpy as np
    import torch

    from facemark import evaluate
    from facemark.data import LandmarkDataset, load_split

    size = int(data.get("img_size") or (data.get("arch_kwargs") or {}).get("img_size") or 0)
    settings = {
        **evaluate.VAL_DEFAULTS,
        **evaluate.split_settings_from_config(data.get("config")),
    }
    faces = load_split(split, root=root, limit=limit, limit_seed=seed, **settings)
    ds = LandmarkDataset(faces, size, augment=False)
    items = [ds[i] for i in range(len(ds))]
    if not items:
        return torch.zeros(0, 3, size, size), np.zeros((0, 68, 2))
    crops = torch.stack([c for c, _ in items])
    kps = np.stack([k.numpy() for _, k in items]).astype(np.float64)
    return crops, kps


@dataclass
class Int8Result:
    """What ``facemark export --format int8`` made and measured."""

    path: Path
    source: Path
    arch: str
    size: int
    source_size: int
    parts: tuple[str, ...]
    calib_crops: int
    seed: int
    threads: int
    load_s: float
    #: val faces scored, and per variant (float, int8) its metrics and ms per face per batch.
    val_faces: int = 0
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    timings: dict[str, dict[int, float]] = field(default_factory=dict)
    max_diff_px: float | None = None
    seconds: float = 0.0

    @property
    def delta_points(self) -> float | None:
        """int8 NME_io minus float NME_io, in percentage points (None if not scored)."""
        if "float" not in self.metrics or "int8" not in self.metrics:
            return None
        return 100 * (self.metrics["int8"]["nme_io"] - self.metrics["float"]["nme_io"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "source": str(self.source),
            "arch": self.arch,
            "size": self.size,
            "source_size": self.source_size,
            "quantized": quantize.SCHEME,
            "quantized_parts": list(self.parts),
            "calibration": {"split": "train", "crops": self.calib_crops, "seed": self.seed},
            "threads": self.threads,
            "load_s": self.load_s,
            "val_faces": self.val_faces,
            "metrics": self.metrics,
            "delta_nme_points": self.delta_points,
            "ms_per_face": {k: {f"b{b}": v for b, v in t.items()} for k, t in self.timings.items()},
            "max_diff_px": self.max_diff_px,
        }


def _score(pred: Any, gt: Any) -> dict[str, float]:
    from facemark import metrics

    summary = metrics.summarize(pred.astype("float64"), gt)
    return {k: float(summary[k]) for k in metrics.HEADLINE}  # type: ignore[arg-type]


def _batch_of(crops: Any, b: int) -> Any:
    import torch

    reps = -(-b // len(crops))
    return (torch.cat([crops] * reps) if reps > 1 else crops)[:b].contiguous()


def export_int8(
    spec: Any,
    out: str | os.PathLike,
    *,
    calib: int = quantize.CALIB_CROPS,
    seed: int = quantize.CALIB_SEED,
    root: str | os.PathLike | None = None,
    check: bool = True,
    force: bool = False,
) -> Int8Result:
    """An int8 checkpoint of the float landmark model ``spec`` names, written atomically.

    Calibrates on ``calib`` random crops (picked by ``seed``) of the *training* split of the
    model's own train/val division of the dataset at ``root`` (default: the installed one),
    without augmentation.  With ``check``, float and int8 are scored on that division's
    ``val`` split (ground-truth boxes, crop pixels, like training's validation) and timed
    (ms per face at batch 1 and 32, crops in, points out); the int8 figures become the
    checkpoint's ``metrics``, the float ones ``float_metrics``.  The file is written to a
    temporary name, loaded back (``load_s``, in this process) and compared with the
    calibrated module (the outputs must be identical) before it is renamed to ``out``.
    """
    import numpy as np
    import torch

    from facemark import checkpoint, evaluate, models
    from facemark.landmarker import Landmarker

    start = time.perf_counter()
    path = _check_out(out, INT8, force)
    if calib < 1:
        raise UsageError(f"--calib must be at least 1 (got {calib})")
    source, data = resolve(spec)
    if data["task"] != "landmarks":
        raise UsageError(f"int8 export is for landmark models; {spec} is a {data['task']} model")
    if data.get("quantized"):
        raise UsageError(f"{spec} is already an int8 model ({data['quantized']})")
    float_lm = Landmarker.from_checkpoint(data)
    raw = models.build_landmark_model(data["arch"], **dict(data.get("arch_kwargs") or {}))
    raw.load_state_dict(data["state_dict"])
    parts = quantize.quantized_parts(raw.eval())
    quantize._use_x86_engine()
    calib_crops, _ = split_crops(data, "train", calib, root, seed)
    qmodel = quantize.quantize_int8(raw, calib_crops)
    state = qmodel.state_dict()  # before Landmarker folds the float BatchNorms left (regression)
    info = {**float_lm.info, "quantized": quantize.SCHEME}
    int8_lm = Landmarker(qmodel, float_lm.img_size, "cpu", info)
    result = Int8Result(
        path=path,
        source=source,
        arch=str(data["arch"]),
        size=0,
        source_size=source.stat().st_size,
        parts=tuple(parts),
        calib_crops=len(calib_crops),
        seed=seed,
        threads=torch.get_num_threads(),
        load_s=0.0,
    )
    if check:
        val, gt = split_crops(data, "val", None, root)
        if len(val):
            preds = {}
            for name, lm in (("float", float_lm), ("int8", int8_lm)):
                preds[name] = lm.predict_crops(val)[0]
                result.metrics[name] = _score(preds[name], gt)
                result.timings[name] = {
                    b: _ms(lm.predict_crops, _batch_of(val, b)) / b for b in LANDMARK_TIMING_BATCHES
                }
            result.val_faces = len(val)
            result.max_diff_px = float(np.abs(preds["int8"] - preds["float"]).max())
    # no "faceness": the quantized graph gives no features for the head to read
    payload = {k: data[k] for k in checkpoint.EXPORT_KEYS if k in data and k != "faceness"}
    payload |= {
        "state_dict": state,
        "quantized": quantize.SCHEME,
        "quantized_parts": list(parts),
        "calibration": {
            "split": "train",
            "crops": len(calib_crops),
            "seed": seed,
            "batch": quantize.CALIB_BATCH,
            "split_settings": evaluate.split_settings_from_config(data.get("config")),
        },
        "float_metrics": data.get("metrics"),
        "metrics": result.metrics.get("int8"),
        "source": source.name,
        "source_sha256": sha256_file(source),
        "torch_version": str(torch.__version__),
    }
    _write_checked(payload, path, int8_lm, calib_crops[:32], result)
    result.size = path.stat().st_size
    result.seconds = time.perf_counter() - start
    return result


def _write_checked(
    payload: dict[str, Any], path: Path, calibrated: Any, x: Any, result: Int8Result
) -> None:
    """Save to a temporary name beside ``path``, load it back the way every command will
    (timed) and compare with the calibrated model; rename into place only if identical."""
    import numpy as np

    from facemark import checkpoint
    from facemark.landmarker import Landmarker

    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        checkpoint.save_checkpoint(tmp, payload)
        t0 = time.perf_counter()
        loaded = Landmarker.from_checkpoint(tmp)
        result.load_s = time.perf_counter() - t0
        got, want = loaded.predict_crops(x), calibrated.predict_crops(x)
        if not all(np.array_equal(g, w) for g, w in zip(got, want, strict=True)):
            diff = max(float(np.abs(g - w).max()) for g, w in zip(got, want, strict=True))
            raise FacemarkError(
                f"the saved int8 model does not reproduce the calibrated one (max diff {diff:.3g}"
                f" px); {path} not written"
            )
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
