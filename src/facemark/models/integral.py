"""The ``integral`` design (soft-argmax on a stride-4 heatmap per point): one of the
alternatives to ``heatmap`` that :mod:`facemark.models` compares, kept buildable by name.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facemark.errors import UsageError
from facemark.models.blocks import Backbone, Normalize, Pyramid, check_size, fp32, window
from facemark.shape import NUM_POINTS


def _cell_centres(n: int, stride: int, device: torch.device) -> torch.Tensor:
    """Crop-pixel coordinate of the centre of each of ``n`` cells of ``stride`` pixels."""
    return torch.arange(n, device=device, dtype=torch.float32) * stride + (stride - 1) / 2


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
        check_size(img_size, 32, self.arch)
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
        idx = window(prob.flatten(2).argmax(-1), self.grid, self.radius)
        return pred, prob.flatten(2).gather(-1, idx).sum(-1).clamp(0, 1)
