"""Is this detection a human face?  A linear head on the landmark network's own features.

YuNet, like every face detector trained on WIDER FACE, also fires on the faces of monkeys,
dogs and cats, and the landmark model's mean confidence does not tell them apart (a cat
scored 0.72, true faces go down to 0.47).  But the landmark network has just looked at the
face crop with features trained on thousands of human faces: pooled over the crop, those
features (and how sharply each of the 68 points peaks) separate human faces from animal
ones well.  A logistic regression on them gives every face its ``faceness``, the
probability that it is a human face, for the cost of one dot product.

The head is tied to the weights it was fitted on, so it lives in the landmark checkpoint
(``"faceness"``) and is refitted for a new model by ``tools/train_faceness.py`` (frozen
network, seconds of fitting once the crops are mined; docs/faceness.md has the data, the
split, the threshold and the figures).  Networks without it (other architectures, int8,
a user's run before fitting) give ``None``: no face is then rejected for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from facemark.errors import CheckpointError

#: Which features a head was fitted on (``HeatmapNet.forward_features``): a head fitted on
#: other features must not be applied to these.
FEATURES = "heatmap-pool-v1"


@dataclass(frozen=True)
class FacenessHead:
    """``p = sigmoid(((features - mean) / std) . weight + bias)`` per face."""

    mean: np.ndarray  #: (D,) feature means of the fitting set
    std: np.ndarray  #: (D,) and their spreads
    weight: np.ndarray  #: (D,)
    bias: float
    #: the threshold chosen on validation when the head was fitted: applied unless
    #: ``DetectorConfig.faceness`` (``--faceness``) sets another
    threshold: float
    features: str = FEATURES

    def score(self, features: np.ndarray) -> np.ndarray:
        """Human-face probability ``(F,)`` of features ``(F, D)``."""
        z = ((np.asarray(features, np.float64) - self.mean) / self.std) @ self.weight + self.bias
        return (1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's ``"faceness"`` entry (lists and floats: ``weights_only`` loads it)."""
        return {
            "features": self.features,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "weight": self.weight.tolist(),
            "bias": float(self.bias),
            "threshold": float(self.threshold),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "checkpoint") -> FacenessHead:
        try:
            head = cls(
                mean=np.asarray(data["mean"], np.float64),
                std=np.asarray(data["std"], np.float64),
                weight=np.asarray(data["weight"], np.float64),
                bias=float(data["bias"]),
                threshold=float(data["threshold"]),
                features=str(data.get("features", "")),
            )
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{where}: its faceness head is damaged") from None
        sizes = {head.mean.shape, head.std.shape, head.weight.shape}
        if len(sizes) != 1 or head.mean.ndim != 1 or not (head.std > 0).all():
            raise CheckpointError(f"{where}: its faceness head is damaged")
        return head


def fit_head(
    positives: np.ndarray,
    negatives: np.ndarray,
    *,
    weight_decay: float = 1e-3,
    epochs: int = 30,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Logistic regression of human (``positives``) against not (``negatives``) features,
    classes weighted equally: ``(mean, std, weight, bias)``."""
    import torch
    import torch.nn.functional as F

    x = np.concatenate([positives, negatives]).astype(np.float64)
    mean, std = x.mean(0), x.std(0) + 1e-6
    xt = torch.tensor((x - mean) / std, dtype=torch.float32)
    yt = torch.tensor(np.r_[np.ones(len(positives)), np.zeros(len(negatives))], dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    layer = torch.nn.Linear(x.shape[1], 1)
    with torch.no_grad():
        layer.weight.normal_(0, 0.01, generator=gen)
        layer.bias.zero_()
    opt = torch.optim.AdamW(layer.parameters(), 1e-3, weight_decay=weight_decay)
    pos_weight = torch.tensor(len(negatives) / max(len(positives), 1))
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(order), 256):
            idx = order[i : i + 256]
            loss = F.binary_cross_entropy_with_logits(
                layer(xt[idx]).squeeze(1), yt[idx], pos_weight=pos_weight
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
    weight = layer.weight.detach().double().numpy().reshape(-1)
    return mean, std, weight, float(layer.bias.detach())
