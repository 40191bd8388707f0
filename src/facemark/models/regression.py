"""The ``regression`` design (coordinates from pooled features, Wing loss, a per-point
uncertainty as confidence): one of the alternatives to ``heatmap`` that
:mod:`facemark.models` compares, kept buildable by name.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from facemark.models.blocks import Backbone, Normalize, check_size, conv_bn, fp32
from facemark.shape import MEAN_SHAPE, NUM_POINTS


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
        check_size(img_size, 32, self.arch)
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
