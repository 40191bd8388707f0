"""Landmark networks and their registry.

Every network here takes a float tensor ``(B, 3, S, S)`` in ``[0, 1]`` (a face crop made by
``transforms.crop_face``), normalises it itself, and offers the same three methods:

* ``model(x)`` -> raw outputs, whatever its loss needs;
* ``model.loss(outputs, keypoints)`` -> a scalar, with ``keypoints`` ``(B, 68, 2)`` in crop
  pixels (pixel-index convention: integer ``i`` is the centre of pixel ``i``);
* ``model.decode(outputs)`` -> ``(keypoints (B, 68, 2) crop pixels, confidence (B, 68))``.

Designs (see docs/model.md for how they compare on this data):

``heatmap``
    PIPNet-style: a coarse grid of cells (stride 8) scores which cell holds each point and
    regresses the point's sub-cell offset from every cell near it.  Decoding takes the best
    cell and averages its neighbours' votes weighted by their scores, so the answer is
    sub-pixel even though the labels are integers and the grid is coarse.
``integral``
    Soft-argmax: a stride-4 heatmap per point turned into a probability map whose expected
    position is the prediction; trained directly on the coordinates.
``regression``
    Direct coordinate regression from pooled features with a Wing loss, plus a per-point
    uncertainty head that gives the confidence.
``udacity``
    The classic Udacity P1 network (224 px grayscale, four conv blocks, three dense layers,
    MSE loss), kept as the baseline the others are measured against.

All but ``udacity`` share one compact ResNet-style backbone with BatchNorm and a small
feature pyramid; none needs pretrained weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import fuse_conv_bn_eval

from facemark.config import DEFAULTS
from facemark.errors import UsageError
from facemark.shape import MEAN_SHAPE, NUM_POINTS

#: Per-channel mean/std of face crops; only needs to be roughly right because BatchNorm
#: follows, but fixed so a checkpoint never depends on the data it was trained on.
_MEAN = (0.5, 0.5, 0.5)
_STD = (0.25, 0.25, 0.25)


# ----------------------------------------------------------------------------- building blocks


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


def _check_size(img_size: int, multiple: int, arch: str) -> None:
    if img_size < multiple * 2 or img_size % multiple:
        raise UsageError(
            f"--img-size for arch {arch!r} must be a multiple of {multiple} "
            f"(>= {multiple * 2}), got {img_size}"
        )


def _cell_centres(n: int, stride: int, device: torch.device) -> torch.Tensor:
    """Crop-pixel coordinate of the centre of each of ``n`` cells of ``stride`` pixels."""
    return torch.arange(n, device=device, dtype=torch.float32) * stride + (stride - 1) / 2


# ----------------------------------------------------------------------------- heatmap + offsets


class HeatmapNet(nn.Module):
    """Cell scores + per-cell offset votes at a coarse stride (PIPNet-style).

    Point ``p`` in cell units is ``u = (p + 0.5) / stride - 0.5`` so that cell centres sit at
    integers.  The score map is trained with cross-entropy against a narrow Gaussian around
    ``u``; the offsets ``u - cell`` are trained (L1) at every cell within ``radius`` of the
    true cell, so a best cell one off still votes for the right place.
    """

    arch = "heatmap"

    def __init__(
        self,
        img_size: int = 128,
        stride: int = 8,
        widths: tuple[int, ...] = (24, 48, 96, 160, 256),
        depths: tuple[int, ...] = (1, 2, 2, 1),
        neck: int = 128,
        radius: int = 1,
        sigma: float = 0.75,
        offset_weight: float = 4.0,
    ) -> None:
        super().__init__()
        if stride not in (4, 8, 16):
            raise UsageError(f"heatmap stride must be 4, 8 or 16, got {stride}")
        _check_size(img_size, 32, self.arch)
        self.img_size, self.stride, self.radius = img_size, stride, radius
        self.sigma, self.offset_weight = sigma, offset_weight
        self.grid = img_size // stride
        self.norm = Normalize()
        self.backbone = Backbone(tuple(widths), tuple(depths))
        self.neck = Pyramid(self.backbone.channels, neck, levels={4: 4, 8: 3, 16: 2}[stride])
        self.head = nn.Conv2d(neck, NUM_POINTS * 3, 1)
        nn.init.normal_(self.head.weight, std=0.001)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._outputs(self.backbone(self.norm(x)))

    def _outputs(self, feats: list[torch.Tensor]) -> torch.Tensor:
        out = fp32(self.head, self.neck(feats))
        return out.view(out.shape[0], 3, NUM_POINTS, self.grid, self.grid)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward``'s outputs and what the faceness head reads (:mod:`facemark.faceness`):
        the mean and max over the crop of the two coarsest feature maps, and how sharply
        each point's score map peaks; ``(B, 2 * (C3 + C4) + 68)``."""
        feats = self.backbone(self.norm(x))
        out = self._outputs(feats)
        pooled = [
            torch.cat([f.float().mean((2, 3)), f.float().amax((2, 3))], 1) for f in feats[-2:]
        ]
        peaks = F.softmax(out[:, 0].reshape(out.shape[0], NUM_POINTS, -1), -1).amax(-1)
        return out, torch.cat([*pooled, peaks], 1)

    def _to_cells(self, kps: torch.Tensor) -> torch.Tensor:
        return (kps.float() + 0.5) / self.stride - 0.5

    def loss(self, outputs: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
        outputs = outputs.float()
        b, g = outputs.shape[0], self.grid
        scores, offsets = outputs[:, 0], outputs[:, 1:]  # (B,68,G,G), (B,2,68,G,G)
        u = self._to_cells(keypoints)  # (B,68,2)
        centres = torch.arange(g, device=u.device, dtype=torch.float32)
        # Separable Gaussian target over cells, normalised to a distribution per point; a
        # point pushed off the crop by augmentation scores the nearest border cell.
        uc = u.clamp(0, g - 1)
        gx = torch.exp(-((centres - uc[..., 0:1]) ** 2) / (2 * self.sigma**2))  # (B,68,G)
        gy = torch.exp(-((centres - uc[..., 1:2]) ** 2) / (2 * self.sigma**2))
        target = gy[..., :, None] * gx[..., None, :]
        target = target / target.sum(dim=(-1, -2), keepdim=True)
        logp = F.log_softmax(scores.reshape(b, NUM_POINTS, -1), dim=-1)
        score_loss = -(target.reshape(b, NUM_POINTS, -1) * logp).sum(-1).mean()
        # Offsets: L1 at every cell within ``radius`` (Chebyshev) of the nearest cell, which
        # for an off-crop point is a border cell voting for the true (outside) position.
        cell = uc.round()
        near_x = (centres - cell[..., 0:1]).abs() <= self.radius  # (B,68,G)
        near_y = (centres - cell[..., 1:2]).abs() <= self.radius
        mask = (near_y[..., :, None] & near_x[..., None, :]).float()  # (B,68,G,G)
        tx = u[..., 0, None, None] - centres[None, None, None, :]
        ty = u[..., 1, None, None] - centres[None, None, :, None]
        err = (offsets[:, 0] - tx).abs() + (offsets[:, 1] - ty).abs()
        offset_loss = (err * mask).sum() / mask.sum()
        return score_loss + self.offset_weight * offset_loss

    @torch.no_grad()
    def decode(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = outputs.float()
        b, g, r = outputs.shape[0], self.grid, self.radius
        prob = F.softmax(outputs[:, 0].reshape(b, NUM_POINTS, -1), dim=-1).view(b, NUM_POINTS, g, g)
        best = prob.flatten(2).argmax(-1)
        idx = _window(best, g, r)  # (B,68,W*W)
        p = prob.flatten(2).gather(-1, idx)
        cx = (idx % g).float() + outputs[:, 1].flatten(2).gather(-1, idx)
        cy = (idx // g).float() + outputs[:, 2].flatten(2).gather(-1, idx)
        w = p / p.sum(-1, keepdim=True).clamp_min(1e-12)
        u = torch.stack([(w * cx).sum(-1), (w * cy).sum(-1)], dim=-1)
        conf = p.sum(-1).clamp(0, 1)
        return (u + 0.5) * self.stride - 0.5, conf


def _window(best: torch.Tensor, g: int, r: int) -> torch.Tensor:
    """Flat indices of the (2r+1)^2 cells around each best cell of a g x g grid, shifted
    inward at the borders so every window holds distinct cells."""
    d = torch.arange(2 * r + 1, device=best.device)
    y0 = (best // g - r).clamp(0, max(g - 1 - 2 * r, 0))
    x0 = (best % g - r).clamp(0, max(g - 1 - 2 * r, 0))
    rows = (y0[..., None] + d).clamp(max=g - 1)
    cols = (x0[..., None] + d).clamp(max=g - 1)
    return (rows[..., :, None] * g + cols[..., None, :]).flatten(-2)


# ----------------------------------------------------------------------------- soft-argmax


class IntegralNet(nn.Module):
    """Soft-argmax ("integral") regression on a stride-4 heatmap.

    The prediction is the expected position under the softmax of each heatmap, so it is
    continuous and trained end-to-end with an L1 loss on coordinates.  A light cross-entropy
    term towards a Gaussian around the label keeps the maps peaked (otherwise mass far from
    the point drags the expectation towards the centre), which also makes the mass near the
    peak a meaningful confidence.
    """

    arch = "integral"

    def __init__(
        self,
        img_size: int = 128,
        stride: int = 4,
        widths: tuple[int, ...] = (24, 48, 96, 160, 256),
        depths: tuple[int, ...] = (1, 2, 2, 1),
        neck: int = 64,
        sigma: float = 1.0,
        heatmap_weight: float = 0.1,
        radius: int = 2,
    ) -> None:
        super().__init__()
        if stride not in (4, 8):
            raise UsageError(f"integral stride must be 4 or 8, got {stride}")
        _check_size(img_size, 32, self.arch)
        self.img_size, self.stride, self.sigma = img_size, stride, sigma
        self.heatmap_weight, self.radius = heatmap_weight, radius
        self.grid = img_size // stride
        self.norm = Normalize()
        self.backbone = Backbone(tuple(widths), tuple(depths))
        self.neck = Pyramid(self.backbone.channels, neck, levels={4: 4, 8: 3}[stride])
        self.head = nn.Conv2d(neck, NUM_POINTS, 1)
        nn.init.normal_(self.head.weight, std=0.001)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fp32(self.head, self.neck(self.backbone(self.norm(x))))

    def _expect(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, g = logits.shape[0], self.grid
        prob = F.softmax(logits.float().reshape(b, NUM_POINTS, -1), dim=-1).view(
            b, NUM_POINTS, g, g
        )
        centres = _cell_centres(g, self.stride, logits.device)
        x = (prob.sum(-2) * centres).sum(-1)
        y = (prob.sum(-1) * centres).sum(-1)
        return torch.stack([x, y], dim=-1), prob

    def loss(self, outputs: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
        pred, prob = self._expect(outputs)
        kps = keypoints.float()
        coord_loss = (pred - kps).abs().sum(-1).mean() / self.stride
        centres = _cell_centres(self.grid, self.stride, outputs.device)
        s = self.sigma * self.stride
        gx = torch.exp(-((centres - kps[..., 0:1]) ** 2) / (2 * s**2))
        gy = torch.exp(-((centres - kps[..., 1:2]) ** 2) / (2 * s**2))
        target = gy[..., :, None] * gx[..., None, :]
        target = target / target.sum(dim=(-1, -2), keepdim=True).clamp_min(1e-12)
        ce = -(target * prob.clamp_min(1e-12).log()).sum(dim=(-1, -2)).mean()
        return coord_loss + self.heatmap_weight * ce

    @torch.no_grad()
    def decode(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pred, prob = self._expect(outputs)
        idx = _window(prob.flatten(2).argmax(-1), self.grid, self.radius)
        return pred, prob.flatten(2).gather(-1, idx).sum(-1).clamp(0, 1)


# ----------------------------------------------------------------------------- direct regression


def wing_loss(err: torch.Tensor, width: float = 10.0, eps: float = 2.0) -> torch.Tensor:
    """Wing loss (Feng et al. 2018) of absolute errors: log-shaped near zero so small errors
    still get a strong gradient, linear for large ones so outliers do not dominate."""
    c = width - width * math.log(1 + width / eps)
    return torch.where(err < width, width * torch.log1p(err / eps), err - c)


class RegressionNet(nn.Module):
    """Coordinates straight from the stride-32 features via two dense layers.

    The output is an offset from the mean shape placed in the crop, so training starts from a
    sensible face.  A second output per point is the log scale of a Laplace error model,
    trained on the (detached) errors; it gives the confidence without touching the
    coordinates' gradient.
    """

    arch = "regression"

    def __init__(
        self,
        img_size: int = 128,
        widths: tuple[int, ...] = (24, 48, 96, 160, 256),
        depths: tuple[int, ...] = (1, 2, 2, 1),
        hidden: int = 256,
        crop_scale: float | None = None,
        wing_width: float = 10.0,
        wing_eps: float = 2.0,
        conf_radius: float = 0.04,
    ) -> None:
        super().__init__()
        _check_size(img_size, 32, self.arch)
        self.img_size = img_size
        self.wing_width, self.wing_eps, self.conf_radius = wing_width, wing_eps, conf_radius
        self.norm = Normalize()
        self.backbone = Backbone(tuple(widths), tuple(depths))
        cells = (img_size // 32) ** 2
        self.reduce = conv_bn(widths[-1], 64, 1)
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * cells, hidden),
            nn.ReLU(inplace=True),
        )
        self.out = nn.Linear(hidden, NUM_POINTS * 4)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.register_buffer(
            "mean_shape", _mean_shape_in_crop(img_size, crop_scale), persistent=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = fp32(self.out, self.fc(self.reduce(self.backbone(self.norm(x))[-1])))
        return out.view(-1, 2, NUM_POINTS, 2)  # [:,0] = offsets (units of S/4), [:,1] = log-scale

    def _coords(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.mean_shape + outputs[:, 0].float() * (self.img_size / 4)

    def loss(self, outputs: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
        to128 = 128.0 / self.img_size  # Wing parameters are in pixels of a 128 px crop
        err = (self._coords(outputs) - keypoints.float()).abs() * to128
        coord_loss = wing_loss(err, self.wing_width, self.wing_eps).mean()
        log_b = outputs[:, 1].float().clamp(-6, 6)
        nll = (err.detach() * torch.exp(-log_b) + log_b).mean()
        return coord_loss + 0.1 * nll

    @torch.no_grad()
    def decode(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b_px = torch.exp(outputs[:, 1].float().clamp(-6, 6)) * (self.img_size / 128.0)
        r = self.conf_radius * self.img_size
        # P(|e_x| < r) * P(|e_y| < r) under the predicted Laplace errors.
        conf = (1 - torch.exp(-r / b_px)).prod(-1)
        return self._coords(outputs), conf


def _mean_shape_in_crop(img_size: int, crop_scale: float | None) -> torch.Tensor:
    """The mean shape placed where a crop puts an average face (a start, not a constraint)."""
    if crop_scale is None:
        try:
            from facemark.transforms import CROP_SCALE as crop_scale
        except ImportError:  # pragma: no cover - only while transforms.py is being written
            crop_scale = 1.5
    span = float(MEAN_SHAPE[:, 0].max() - MEAN_SHAPE[:, 0].min())
    pts = torch.from_numpy(MEAN_SHAPE.copy()) * (img_size / crop_scale / span)
    return pts + (img_size - 1) / 2


# ----------------------------------------------------------------------------- Udacity baseline


class UdacityNet(nn.Module):
    """The Udacity P1 project's network: grayscale 224 px input, four conv + max-pool blocks,
    three dense layers with dropout, MSE on keypoints normalised to about [-1, 1].

    No BatchNorm and no augmentation tricks by design: it is the baseline.  It has no notion
    of uncertainty, so its confidence is 1 everywhere.
    """

    arch = "udacity"

    def __init__(self, img_size: int = 224, dropout: float = 0.3) -> None:
        super().__init__()
        self.img_size = img_size
        chans = [1, 32, 64, 128, 256]
        kernels = [5, 3, 3, 3]
        layers: list[nn.Module] = []
        side = img_size
        for i, k in enumerate(kernels):
            layers += [nn.Conv2d(chans[i], chans[i + 1], k), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            layers.append(nn.Dropout(dropout * (i + 1) / 4))
            side = (side - k + 1) // 2
        if side < 1:
            raise UsageError(f"--img-size {img_size} is too small for arch 'udacity' (use 224)")
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(256 * side * side, 1000),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(1000, 1000),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        self.out = nn.Linear(1000, NUM_POINTS * 2)
        self.register_buffer(
            "gray", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1), persistent=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = ((x * self.gray).sum(1, keepdim=True) - 0.5) / 0.25
        return fp32(self.out, self.fc(self.features(g))).view(-1, NUM_POINTS, 2)

    def _scale(self) -> tuple[float, float]:
        return (self.img_size - 1) / 2, self.img_size / 4

    def loss(self, outputs: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
        centre, unit = self._scale()
        return F.mse_loss(outputs.float(), (keypoints.float() - centre) / unit)

    @torch.no_grad()
    def decode(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        centre, unit = self._scale()
        kps = outputs.float() * unit + centre
        return kps, torch.ones(kps.shape[:2], device=kps.device)


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class ArchSpec:
    """A registered architecture: how to build it and the training defaults that suit it."""

    name: str
    build: Callable[..., nn.Module]
    summary: str
    img_size: int = 128
    defaults: dict[str, Any] = field(default_factory=dict)  # e.g. lr, batch_size


ARCHS: dict[str, ArchSpec] = {
    spec.name: spec
    for spec in (
        ArchSpec(
            "heatmap", HeatmapNet, "stride-8 cell scores + sub-cell offset votes (PIPNet-style)"
        ),
        ArchSpec("integral", IntegralNet, "stride-4 heatmaps decoded by soft-argmax"),
        ArchSpec("regression", RegressionNet, "direct coordinate regression, Wing loss"),
        ArchSpec(
            "udacity",
            UdacityNet,
            "Udacity P1 baseline: 224 px gray, 4 conv + 3 dense, MSE",
            img_size=224,
            defaults={"lr": 1e-3},
        ),
    )
}

DEFAULT_ARCH = DEFAULTS["landmarks"].arch


def arch_spec(arch: str) -> ArchSpec:
    """The registry entry for ``arch``; a UsageError naming the known ones otherwise."""
    try:
        return ARCHS[arch]
    except KeyError:
        raise UsageError(f"unknown arch {arch!r}; choose one of: {', '.join(ARCHS)}") from None


def parse_arch(spec: str) -> tuple[str, dict[str, Any]]:
    """``"heatmap"`` or ``"heatmap:stride=16,neck=96,widths=32x64x128x192x256"`` ->
    ``(name, overrides)``: architecture variants for experiments without code changes.

    Values are numbers, ``true``/``false``, or ``x``-separated integer tuples.
    """
    name, _, rest = spec.partition(":")
    arch_spec(name)
    kwargs: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, eq, raw = item.partition("=")
        if not eq or not key.isidentifier():
            raise UsageError(f"bad arch option {item!r} in {spec!r}; expected key=value")
        kwargs[key] = _parse_value(raw, spec)
    return name, kwargs


def _parse_value(raw: str, spec: str) -> Any:
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    try:
        if "x" in raw:
            return tuple(int(v) for v in raw.split("x"))
        return int(raw) if raw.lstrip("-").isdigit() else float(raw)
    except ValueError:
        raise UsageError(f"bad value {raw!r} in arch {spec!r}") from None


def build_landmark_model(arch: str, **arch_kwargs: Any) -> nn.Module:
    """A fresh (randomly initialised) network of ``arch`` built with ``arch_kwargs``."""
    spec = arch_spec(arch)
    try:
        return spec.build(**arch_kwargs)
    except TypeError as exc:  # a checkpoint or caller passing arguments this version lacks
        raise UsageError(f"arch {arch!r} does not accept these arguments: {exc}") from None
    except (ValueError, RuntimeError) as exc:  # e.g. widths of the wrong length
        raise UsageError(f"arch {arch!r} cannot be built with {arch_kwargs}: {exc}") from None


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
