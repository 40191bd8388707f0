"""The optimiser and its learning-rate schedule: AdamW, linear warm-up, then cosine decay.

The schedule is a pure function of the step (:func:`lr_factor`), so it resumes exactly from
the scheduler's saved step count and can be checked without training anything.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from facemark.config import TrainConfig

#: Linear warm-up length in epochs (capped at a tenth of the run), then cosine decay.
WARMUP_EPOCHS = 2.0
#: The cosine ends at this fraction of the peak learning rate.
FINAL_LR_FRACTION = 0.01


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warm-up from 1% to 100%, then cosine down to ``FINAL_LR_FRACTION``."""
    if step < warmup_steps:
        return 0.01 + 0.99 * step / max(warmup_steps, 1)
    t = min(1.0, (step - warmup_steps) / max(total_steps - warmup_steps, 1))
    return FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * t))


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv/linear weights only; decaying BatchNorm scales and biases hurts."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def optimizer_and_schedule(
    net: nn.Module, cfg: TrainConfig, steps_per_epoch: int, device: torch.device
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over ``net`` and its per-step schedule for ``cfg.epochs`` epochs."""
    total = steps_per_epoch * cfg.epochs
    warmup = min(int(WARMUP_EPOCHS * steps_per_epoch), total // 10)
    optimizer = torch.optim.AdamW(
        _param_groups(net, cfg.weight_decay), lr=cfg.lr, fused=device.type == "cuda"
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total, warmup)
    )
    return optimizer, scheduler
