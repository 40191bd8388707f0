"""Reading an exported file back: its facemark metadata, and a function that runs it under
its own runtime (onnxruntime on CPU, or torch.jit)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facemark.errors import quiet_warnings
from facemark.export.options import INPUT_NAME, METADATA_FILE

if TYPE_CHECKING:
    import numpy as np


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The facemark metadata of an exported file (ONNX or TorchScript)."""
    path = Path(path)
    with open(path, "rb") as fh:
        zipped = fh.read(4) == b"PK\x03\x04"  # TorchScript archives are zip files
    if zipped:
        import torch

        extra = {METADATA_FILE: ""}
        with quiet_warnings():
            torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        return json.loads(extra[METADATA_FILE] or "{}")
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def runner(path: str | os.PathLike, fmt: str, threads: int | None = None) -> Callable[..., list]:
    """A function ``(x float32 (B, 3, H, W) numpy) -> [outputs as numpy]`` running the
    exported file under its own runtime (onnxruntime on CPU, or torch.jit)."""
    import numpy as np

    if fmt == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )

        def run_onnx(x: np.ndarray) -> list:
            return session.run(None, {INPUT_NAME: np.ascontiguousarray(x, np.float32)})

        return run_onnx
    import torch

    with quiet_warnings():
        module = torch.jit.load(str(path), map_location="cpu")

    def run_script(x: np.ndarray) -> list:
        with torch.inference_mode():
            return [o.numpy() for o in _as_tuple(module(torch.from_numpy(x)))]

    return run_script


def _as_tuple(outputs: Any) -> tuple:
    return tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)
