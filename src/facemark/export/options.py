"""What ``facemark export`` accepts: its formats and constants, and the checks of its options
(format, the packages a format needs, the output path) made before any model is loaded.

Nothing here imports torch, so the CLI can read these constants cheaply.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from facemark.config import EXPORT
from facemark.errors import FacemarkError, UsageError

FORMATS = ("onnx", "torchscript")
#: The other ``--format``: an int8 facemark checkpoint for the CPU (:mod:`facemark.quantize`).
INT8 = "int8"
DEFAULT_OPSET = EXPORT.opset
#: The graph's input name.
INPUT_NAME = "image"
#: The extra file of a TorchScript export that holds the metadata (JSON).
METADATA_FILE = "facemark.json"
#: Largest absolute difference from torch an export may show before it is reported as broken.
TOLERANCE = 1e-3
#: Batch sizes the landmark model is timed at (ms per face).
LANDMARK_TIMING_BATCHES = (1, 32)
#: The canvas (H, W) detectors are checked and timed on first: a 640 x 480 photo.
DETECTOR_CHECK_HW = (480, 640)
INSTALL_HINT = "pip install 'facemark[export]'"


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _check_requirements(fmt: str, check: bool, dynamo: bool) -> None:
    if fmt == INT8:
        raise UsageError(
            "export_model writes ONNX or TorchScript; int8 checkpoints come from "
            "export_int8 (facemark export MODEL --format int8)"
        )
    if fmt not in FORMATS:
        known = ", ".join((*FORMATS, INT8))
        raise UsageError(f"unknown --format '{fmt}'; choose one of: {known}")
    if fmt != "onnx":
        return
    needed = ["onnx"] + (["onnxruntime"] if check else [])
    missing = [m for m in needed if not _installed(m)]
    if missing:
        raise FacemarkError(
            f"ONNX export needs the {' and '.join(missing)} package"
            f"{'s' if len(missing) > 1 else ''}: {INSTALL_HINT}"
            + (" (or --no-check to skip the comparison)" if missing == ["onnxruntime"] else "")
        )
    if dynamo and not _installed("onnxscript"):
        raise FacemarkError("the dynamo ONNX exporter needs onnxscript: pip install onnxscript")


#: File name endings each ``--format`` writes; another ending is refused (a typo such as
#: ``--out photo.jpg`` must not replace a photo with a model).
SUFFIXES = {
    "onnx": (".onnx",),
    "torchscript": (".pt", ".pth", ".ts", ".torchscript"),
    INT8: (".pt",),
}


def _check_out(out: str | os.PathLike, fmt: str, force: bool = False) -> Path:
    """The output path, once it is safe: a file name ending as ``fmt`` writes, not an existing
    file unless ``force``; a missing folder is created (as ``preview`` does)."""
    path = Path(out).expanduser()
    endings = SUFFIXES[fmt]
    if path.is_dir():
        raise UsageError(
            f"--out {out} is a folder; give a file name, e.g. {path / ('model' + endings[0])}"
        )
    if path.suffix.lower() not in endings:
        raise UsageError(
            f"--out {out} does not end in {' or '.join(endings)}, as a --format {fmt} file does; "
            f"e.g. {path.with_suffix(endings[0])}"
        )
    if path.exists() and not force:
        raise UsageError(f"--out {out} exists; pass --force to replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create {path.parent} ({exc.strerror})") from None
    return path
