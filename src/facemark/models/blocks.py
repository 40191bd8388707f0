"""The building blocks the landmark networks share, and what is done to any of them.

The compact ResNet backbone, the feature pyramid, input normalisation, the float32 output
layer and the decoding window of the heatmap designs live here once, so every family module
(:mod:`.heatmap`, :mod:`.integral`, :mod:`.regression`, :mod:`.udacity`) builds from the
same parts; :func:`fuse_batchnorm` and :func:`count_parameters` work on any of them.
(:mod:`facemark.detection` borrows ``conv_bn`` and ``Normalize`` for the detector too.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import fuse_conv_bn_eval

from facemark.errors import UsageError

#: Per-channel mean/std of face crops; only needs to be roughly right because BatchNorm
#: follows, but fixed so a checkpoint never depends on the data it was trained on.
_MEAN = (0.5, 0.5, 0.5)
_STD = (0.25, 0.25, 0.25)


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, act: bool = True) -> nn.Sequential:
    """Conv -> BatchNorm (-> ReLU); the bias is BatchNorm's."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """The ResNet basic block: two 3x3 convs and a shortcut (projected when shapes change)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, 3, stride), conv_bn(cout, cout, 3, act=False))
        self.short = (
            nn.Identity()
            if stride == 1 and cin == cout
            else conv_bn(cin, cout, 1, stride, act=False)
        )
        # Zero-init the last BN so each block starts as identity: trains faster from scratch.
        nn.init.zeros_(self.body[1][1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.short(x), inplace=True)


class Normalize(nn.Module):
    """Maps ``[0, 1]`` input to roughly zero mean / unit variance inside the network."""

    def __init__(self, mean: tuple[float, ...] = _MEAN, std: tuple[float, ...] = _STD) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Backbone(nn.Module):
    """Compact ResNet: a stride-2 stem, then stages at strides 4, 8, 16, 32.

    ``forward`` returns the feature maps of the last four stages so heads can pick the
    resolution they need.
    """

    def __init__(self, widths: tuple[int, ...], depths: tuple[int, ...]) -> None:
        super().__init__()
        if len(widths) != 5 or len(depths) != 4:
            raise ValueError("Backbone needs 5 widths (stem + 4 stages) and 4 depths")
        self.stem = conv_bn(3, widths[0], 3, 2)
        stages = []
        for i, depth in enumerate(depths):
            blocks = [BasicBlock(widths[i], widths[i + 1], 2)]
            blocks += [BasicBlock(widths[i + 1], widths[i + 1]) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.channels = tuple(widths[1:])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class Pyramid(nn.Module):
    """Top-down feature pyramid down to one output stride: context from the coarse maps
    (the whole face) merged into a finer map where points are located."""

    def __init__(self, in_channels: tuple[int, ...], out_channels: int, levels: int) -> None:
        super().__init__()
        # ``levels`` = how many of the coarsest maps to merge (2 -> stride 16, 3 -> 8, 4 -> 4).
        self.levels = levels
        used = in_channels[-levels:]
        self.lateral = nn.ModuleList(conv_bn(c, out_channels, 1, act=False) for c in used)
        self.smooth = conv_bn(out_channels, out_channels, 3)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        used = feats[-self.levels :]
        x = self.lateral[-1](used[-1])
        for lat, f in zip(reversed(self.lateral[:-1]), reversed(used[:-1]), strict=True):
            x = lat(f) + F.interpolate(x, size=f.shape[-2:], mode="nearest")
        return self.smooth(F.relu(x))


def fp32(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run the output layer in float32 even under autocast: bf16 keeps only 8 bits of
    mantissa, too coarse for sub-pixel offsets and softmax logits."""
    with torch.autocast(x.device.type, enabled=False):
        return layer(x.float())


def check_size(img_size: int, multiple: int, arch: str) -> None:
    """A UsageError unless ``img_size`` is a multiple of ``multiple``, at least two of them."""
    if img_size < multiple * 2 or img_size % multiple:
        raise UsageError(
            f"--img-size for arch {arch!r} must be a multiple of {multiple} "
            f"(>= {multiple * 2}), got {img_size}"
        )


def window(best: torch.Tensor, g: int, r: int) -> torch.Tensor:
    """Flat indices of the (2r+1)^2 cells around each best cell of a g x g grid, shifted
    inward at the borders so every window holds distinct cells."""
    d = torch.arange(2 * r + 1, device=best.device)
    y0 = (best // g - r).clamp(0, max(g - 1 - 2 * r, 0))
    x0 = (best % g - r).clamp(0, max(g - 1 - 2 * r, 0))
    rows = (y0[..., None] + d).clamp(max=g - 1)
    cols = (x0[..., None] + d).clamp(max=g - 1)
    return (rows[..., :, None] * g + cols[..., None, :]).flatten(-2)


@torch.no_grad()
def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm that directly follows a convolution into that convolution.

    Inference only (the model must be in eval mode): the network computes the same function
    with a third fewer layers, which is most of the per-layer overhead at batch 1 on a CPU.
    Works in place on ``nn.Sequential`` pairs, the only way the networks here use BatchNorm.
    """
    if model.training:
        raise ValueError("fuse_batchnorm is for eval-mode models only")
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for i in range(len(module) - 1):
            conv, bn = module[i], module[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                module[i], module[i + 1] = fuse_conv_bn_eval(conv, bn), nn.Identity()
    return model


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, for summaries."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
