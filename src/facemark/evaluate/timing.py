"""The inference cost per face: milliseconds of the landmark step at batch 1 and batch 32.

The torch thread count that sets the CPU figures lives in :mod:`facemark.evaluate.threads`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from facemark.evaluate.prediction import _predict

if TYPE_CHECKING:
    from facemark.images import Photo
    from facemark.pipeline import FaceMarker

#: Batch sizes of the speed measurement: one face at a time (interactive use) and a batch.
TIMING_BATCHES = (1, 32)


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


def _synchronizer(device: str) -> Callable[[], None]:
    """Wait for queued GPU work, so a timing measures the work and not its launch."""
    if not str(device).startswith("cuda"):
        return lambda: None
    import torch

    return torch.cuda.synchronize
