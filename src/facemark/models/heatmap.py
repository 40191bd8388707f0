"""The ``heatmap`` design (PIPNet-style cell scores and sub-cell offset votes), on its own
because it is facemark's default: the bundled landmark models and the faceness head
(:meth:`HeatmapNet.forward_features`) are built on it.  :mod:`facemark.models` compares the
designs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facemark.errors import UsageError
from facemark.models.blocks import Backbone, Normalize, Pyramid, check_size, fp32, window
from facemark.shape import NUM_POINTS


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
        check_size(img_size, 32, self.arch)
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

    def distill_loss(self, outputs: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """How far ``outputs`` are from another heatmap network's on the same crops
        (``train --teacher``): cross-entropy against the teacher's score distribution per
        point, and the L1 offset error weighted by where the teacher puts its probability
        (decoding reads the offsets only there).  Zero gradient when they agree."""
        outputs, teacher = outputs.float(), teacher.float()
        b = outputs.shape[0]
        target = F.softmax(teacher[:, 0].reshape(b, NUM_POINTS, -1), dim=-1)
        logp = F.log_softmax(outputs[:, 0].reshape(b, NUM_POINTS, -1), dim=-1)
        score_loss = -(target * logp).sum(-1).mean()
        err = (outputs[:, 1:] - teacher[:, 1:]).abs().sum(1).reshape(b, NUM_POINTS, -1)
        offset_loss = (err * target).sum(-1).mean()
        return score_loss + self.offset_weight * offset_loss

    @staticmethod
    def average_outputs(outputs: list[torch.Tensor]) -> torch.Tensor:
        """Several heatmap networks' outputs as one (``train --teacher A --teacher B``): each
        point's score distribution is the mean of theirs, its offsets at each cell the mean of
        theirs weighted by how much probability each puts there."""
        if len(outputs) == 1:
            return outputs[0]
        stack = torch.stack([o.float() for o in outputs])  # (T, B, 3, 68, G, G)
        t, b = stack.shape[:2]
        prob = F.softmax(stack[:, :, 0].reshape(t, b, NUM_POINTS, -1), dim=-1)
        prob = prob.view_as(stack[:, :, 0])
        mean = prob.mean(0)
        weight = prob / (prob.sum(0, keepdim=True) + 1e-12)
        offsets = (stack[:, :, 1:] * weight[:, :, None]).sum(0)
        return torch.cat([torch.log(mean + 1e-12)[:, None], offsets], dim=1)

    @torch.no_grad()
    def decode(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = outputs.float()
        b, g, r = outputs.shape[0], self.grid, self.radius
        prob = F.softmax(outputs[:, 0].reshape(b, NUM_POINTS, -1), dim=-1).view(b, NUM_POINTS, g, g)
        best = prob.flatten(2).argmax(-1)
        idx = window(best, g, r)  # (B,68,W*W)
        p = prob.flatten(2).gather(-1, idx)
        cx = (idx % g).float() + outputs[:, 1].flatten(2).gather(-1, idx)
        cy = (idx // g).float() + outputs[:, 2].flatten(2).gather(-1, idx)
        w = p / p.sum(-1, keepdim=True).clamp_min(1e-12)
        u = torch.stack([(w * cx).sum(-1), (w * cy).sum(-1)], dim=-1)
        conf = p.sum(-1).clamp(0, 1)
        return (u + 0.5) * self.stride - 0.5, conf
