"""Torch's CPU thread count during an evaluation: the one place evaluate reads or sets it.

Unlike ``annotate`` and ``export``, which set the process-wide count once, an evaluation sets
``--threads`` only for the duration of the call and restores the previous count afterwards
(:func:`_torch_threads`), so a notebook or benchmark calling :func:`evaluate_models` keeps
its own setting.  Each summary records the count its speed figures were measured with
(:func:`_threads`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op threads, restoring the previous setting afterwards."""
    if not threads:
        yield
        return
    import torch

    from facemark.devices import set_threads

    before = torch.get_num_threads()
    set_threads(threads)
    try:
        yield
    finally:
        set_threads(before)


def _threads(device: str) -> int | None:
    """Torch's CPU threads, which set CPU speed figures (None on a GPU, where they do not)."""
    if str(device).startswith("cuda"):
        return None
    import torch

    return torch.get_num_threads()
