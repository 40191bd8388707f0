"""Mixed precision on CUDA: which autocast dtype a device gets and whether the loss needs
scaling; the training steps and the validation pass both run under :func:`autocast`."""

from __future__ import annotations

from typing import Any

import torch


def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """bf16 autocast where the GPU supports it (no loss scaling needed), else fp16; never on CPU
    (CPU autocast is slower than float32 for these small convolutions)."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def grad_scaler(enabled: bool) -> Any:
    """Loss scaling, needed for fp16 autocast only (torch < 2.3 keeps it under torch.cuda)."""
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)


def autocast(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def amp_name(dtype: torch.dtype | None) -> str | None:
    """``"bfloat16"``, ``"float16"``, or None when mixed precision is off."""
    return str(dtype).replace("torch.", "") if dtype else None
