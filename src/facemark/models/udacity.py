"""The ``udacity`` design: the Udacity P1 network, kept as the baseline the other designs
are measured against (see :mod:`facemark.models`); it shares none of their parts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facemark.errors import UsageError
from facemark.models.blocks import fp32
from facemark.shape import NUM_POINTS


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
