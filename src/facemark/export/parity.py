"""The check of an exported file against the torch network it came from: the largest absolute
difference of every output on random inputs, and the speed of both (:func:`_ms`, which the
int8 export times with too)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from facemark.errors import FacemarkError
from facemark.export.options import LANDMARK_TIMING_BATCHES
from facemark.export.readback import _as_tuple, runner
from facemark.export.result import ExportResult, Timing

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from facemark.export.network import Network


def _torch_runner(module: nn.Module) -> Callable[..., list]:
    import torch

    def run_torch(x: np.ndarray) -> list:
        with torch.inference_mode():
            return [o.float().numpy() for o in _as_tuple(module(torch.from_numpy(x)))]

    return run_torch


def check_parity(net: Network, result: ExportResult, timing: bool = True) -> ExportResult:
    """Largest absolute difference of every output between the file and torch, on random
    inputs of each of ``net.checks``; with ``timing``, ms per face/image under both."""
    import numpy as np
    import torch

    threads = torch.get_num_threads()
    exported = runner(result.path, result.format, threads)
    reference = _torch_runner(net.module)
    rng = np.random.default_rng(0)
    diffs = dict.fromkeys(net.output_names, 0.0)
    for shape in net.checks:
        x = rng.random(shape, dtype=np.float32)
        got, want = exported(x), reference(x)
        if len(got) != len(want):
            raise FacemarkError(
                f"the exported file gives {len(got)} outputs, torch {len(want)}: a broken export"
            )
        for name, a, b in zip(net.output_names, got, want, strict=True):
            if np.shape(a) != np.shape(b):
                raise FacemarkError(
                    f"output {name} has shape {np.shape(a)} in the export, {np.shape(b)} in "
                    f"torch, for input {shape}: a broken export"
                )
            diffs[name] = max(diffs[name], float(np.max(np.abs(np.asarray(a) - b), initial=0)))
    result.diffs = diffs
    result.threads = threads
    result.checked_shapes = tuple(net.checks)
    if timing:
        batches = LANDMARK_TIMING_BATCHES if net.task == "landmarks" else (1,)
        _, c, h, w = net.checks[0]
        for b in batches:
            x = rng.random((b, c, h, w), dtype=np.float32)
            result.timings.append(Timing(b, _ms(exported, x) / b, _ms(reference, x) / b))
    return result


def _ms(fn: Callable[[Any], Any], x: Any, min_seconds: float = 0.3, repeats: int = 3) -> float:
    """Median milliseconds of ``fn(x)`` after a warm-up call (at least ``repeats`` calls, and
    more until ``min_seconds`` have passed, at most 50)."""
    fn(x)
    times: list[float] = []
    began = time.perf_counter()
    while len(times) < 50 and (len(times) < repeats or time.perf_counter() - began < min_seconds):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)
