"""Where computation runs: device names, ``torchrun`` ranks, moving batches.

Shared by inference (``--device``/``--gpu`` of every command) and training (one process per
GPU under ``torchrun``), so a missing GPU is the same clear error everywhere.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass

import torch
from torch import nn

from facemark.errors import UsageError


def set_threads(threads: int | None) -> None:
    """Torch's CPU threads for this process (None leaves torch's choice): the one setter
    behind every ``--threads`` and ``threads=``.  Torch's count is per process, not per model."""
    if threads is None:
        return
    if threads < 1:
        raise UsageError(f"threads must be >= 1 (got {threads})")
    torch.set_num_threads(int(threads))


def resolve_device(device: str | None = "cpu") -> str:
    """A torch device string, checked, so a missing GPU is a clear error and not a traceback.

    ``None`` or ``"auto"`` picks CUDA when available, else the CPU.
    """
    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise UsageError(f"unknown device '{device}' (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device '{device}' requested but no CUDA GPU is available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(f"no GPU {dev.index}: this machine has {torch.cuda.device_count()}")
    return str(dev)


def move(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a batch tensor to ``device`` without blocking; images go channels-last on CUDA
    (faster convolutions with tensor cores)."""
    tensor = tensor.to(device, non_blocking=True)
    if device.type == "cuda" and tensor.ndim == 4:
        tensor = tensor.contiguous(memory_format=torch.channels_last)
    return tensor


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the network itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def default_workers(world_size: int = 1) -> int:
    """DataLoader workers: one per spare core of this process's share, at most 8.

    On a 2-core laptop that is 1 (augmentation overlaps the maths); on a GPU box it is
    enough to keep the GPU fed with these small images.
    """
    cpus = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    return max(0, min(8, cpus // max(world_size, 1) - 1))


@dataclass
class Dist:
    """This process's place in a ``torchrun`` job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  #: this module initialised the process group (and ends it)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_from_env() -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def init_dist(dist: Dist, device: torch.device) -> None:
    import torch.distributed as td

    if not dist.enabled or td.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    td.init_process_group(backend=backend, timeout=_dt.timedelta(minutes=30))
    dist.owns_group = True


def any_rank(flag: bool, dist: Dist, device: torch.device) -> bool:
    """Whether any rank raised ``flag`` (every rank gets the same answer)."""
    if not dist.enabled:
        return flag
    import torch.distributed as td

    t = torch.tensor([1 if flag else 0], device=device)
    td.all_reduce(t, op=td.ReduceOp.MAX)
    return bool(t.item())


def resolve_train_device(spec: str, dist: Dist) -> torch.device:
    """The device this process trains on; under torchrun each rank takes its local GPU."""
    name = resolve_device(spec)
    device = torch.device(name)
    if device.type == "cuda":
        if dist.enabled:
            if dist.local_rank >= torch.cuda.device_count():
                raise UsageError(
                    f"torchrun started {dist.world_size} processes on this node but only "
                    f"{torch.cuda.device_count()} GPU(s) are visible"
                )
            device = torch.device("cuda", dist.local_rank)
        elif device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
    return device
