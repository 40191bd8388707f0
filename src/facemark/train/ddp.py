"""What training adds for DistributedDataParallel when started by ``torchrun``: the batch
and the CPU cores split over the processes, the model wrapped, each rank's own random stream,
and the process group ended.

Finding the rank, starting the group and agreeing across ranks are in
:mod:`facemark.devices`, shared with inference.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from facemark import devices
from facemark.config import TrainConfig
from facemark.errors import UsageError


def rank_batch_size(cfg: TrainConfig, dist: devices.Dist) -> int:
    """Each process's share of ``--batch-size`` (which must split evenly)."""
    if cfg.batch_size % dist.world_size:
        raise UsageError(
            f"--batch-size {cfg.batch_size} does not split evenly over {dist.world_size} processes"
        )
    return cfg.batch_size // dist.world_size


def share_cpu_threads(device: torch.device, dist: devices.Dist) -> None:
    if dist.enabled and device.type == "cpu":  # processes share the cores
        torch.set_num_threads(max(1, torch.get_num_threads() // dist.world_size))


def seed_rank(seed: int, dist: devices.Dist, epoch: int = 0) -> None:
    """Give every rank but 0 a random stream of its own (rank 0 keeps the one it has)."""
    if dist.rank:
        torch.manual_seed(seed + 7919 * dist.rank + epoch)


def wrap_model(model: nn.Module, dist: devices.Dist, device: torch.device) -> nn.Module:
    """``model`` as each training step calls it: under DDP, wrapped so gradients are shared."""
    if not dist.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def end_group(dist: devices.Dist) -> None:
    """End the process group if this run started it."""
    if dist.owns_group:
        import torch.distributed as td

        with contextlib.suppress(Exception):
            td.destroy_process_group()
