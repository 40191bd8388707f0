"""Is this detection a human face?  A small head on the landmark network's own features.

YuNet, like every face detector trained on WIDER FACE, also fires on the faces of monkeys,
dogs and cats, and the landmark model's mean confidence does not tell them apart (a cat
scored 0.72, true faces go down to 0.47).  But the landmark network has just looked at the
face crop with features trained on thousands of human faces: pooled over the crop, those
features (and how sharply each of the 68 points peaks) separate human faces from animal
ones well.  Five small MLPs on them give every face its ``faceness``, the probability
that it is a human face, for a few hundred thousand multiply-adds.

The head is tied to the weights it was fitted on, so it lives in the landmark checkpoint
(``"faceness"``) and is refitted for a new model by ``tools/train_faceness.py`` (frozen
network, seconds of fitting once the crops are mined; docs/faceness.md has the data, the
split, the threshold and the figures).  Networks without it (other architectures, int8,
a user's run before fitting) give ``None``: no face is then rejected for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from facemark.errors import CheckpointError

if TYPE_CHECKING:
    import torch

#: Which features a head was fitted on (``HeatmapNet.forward_features``): a head fitted on
#: other features must not be applied to these.
FEATURES = "heatmap-pool-v1"


@dataclass(frozen=True)
class FacenessHead:
    """An ensemble of small MLPs on the standardised features; a face's faceness is the
    mean of the members' probabilities::

        p = mean_k sigmoid(relu(((features - mean) / std) @ w1[k] + b1[k]) @ w2[k] + b2[k])

    Why an ensemble of MLPs and not one logistic regression: a linear head could not keep
    a blurred, hatted test frame and the darker-skinned faces of the group photos without
    letting many more animals through (docs/faceness.md has the comparison), and one
    MLP's threshold, set by the lowest validation face, moved from seed to seed; the mean
    of five is steady.  Still only ~150 k multiply-adds per face."""

    mean: np.ndarray  #: (D,) feature means of the fitting set
    std: np.ndarray  #: (D,) and their spreads
    w1: np.ndarray  #: (K, D, H) hidden layer of each of the K members
    b1: np.ndarray  #: (K, H)
    w2: np.ndarray  #: (K, H) output layer
    b2: np.ndarray  #: (K,)
    #: the threshold chosen on validation when the head was fitted: applied unless
    #: ``DetectorConfig.faceness`` (``--faceness``) sets another
    threshold: float
    features: str = FEATURES

    def score(self, features: np.ndarray) -> np.ndarray:
        """Human-face probability ``(F,)`` of features ``(F, D)``."""
        x = (np.asarray(features, np.float64) - self.mean) / self.std
        hidden = np.maximum(x @ self.w1 + self.b1[:, None], 0)  # (K, F, H)
        z = (hidden @ self.w2[..., None])[..., 0] + self.b2[:, None]  # (K, F)
        return (1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))).mean(0).astype(np.float32)

    def with_threshold(self, threshold: float) -> FacenessHead:
        return replace(self, threshold=float(threshold))

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's ``"faceness"`` entry (float32 tensors: ``weights_only`` loads
        them, and the bundled checkpoint stays small)."""
        import torch

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, np.float32))

        return {
            "features": self.features,
            **{k: tensor(getattr(self, k)) for k in ("mean", "std", "w1", "b1", "w2", "b2")},
            "threshold": float(self.threshold),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "checkpoint") -> FacenessHead:
        """Reads :meth:`to_dict`, and the single logistic regression of earlier
        checkpoints (``weight``, ``bias``) as the same function in this form: one member
        whose two hidden units carry ``+z`` and ``-z`` (``relu(z) - relu(-z) = z``)."""
        try:
            arrays = {k: np.asarray(v, np.float64) for k, v in data.items()
                      if k in ("mean", "std", "w1", "b1", "w2", "b2", "weight")}  # fmt: skip
            if "w1" not in arrays:
                w, b = arrays["weight"], float(data["bias"])
                arrays.update(w1=np.stack([w, -w], 1)[None], b1=np.array([[b, -b]]),
                              w2=np.array([[1.0, -1.0]]), b2=np.zeros(1))  # fmt: skip
            head = cls(
                mean=arrays["mean"],
                std=arrays["std"],
                w1=arrays["w1"],
                b1=arrays["b1"],
                w2=arrays["w2"],
                b2=arrays["b2"],
                threshold=float(data["threshold"]),
                features=str(data.get("features", "")),
            )
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{where}: its faceness head is damaged") from None
        k, d, h = head.w1.shape if head.w1.ndim == 3 else (0, 0, 0)
        if not (
            k
            and head.mean.shape == head.std.shape == (d,)
            and head.b1.shape == head.w2.shape == (k, h)
            and head.b2.shape == (k,)
            and (head.std > 0).all()
        ):
            raise CheckpointError(f"{where}: its faceness head is damaged")
        return head


def fit_head(
    positives: np.ndarray,
    negatives: np.ndarray,
    *,
    members: int = 5,
    hidden: int = 32,
    dropout: float = 0.2,
    weight_decay: float = 0.1,
    epochs: int = 30,
    seed: int = 0,
) -> FacenessHead:
    """Human (``positives``) against not (``negatives``) features, classes weighted
    equally; ``members`` MLPs from seeds ``seed, seed + 1, ...``.  The threshold is left at
    0.5 for the caller to choose on validation (:meth:`FacenessHead.with_threshold`)."""
    import torch

    x = np.concatenate([positives, negatives]).astype(np.float64)
    mean, std = x.mean(0), x.std(0) + 1e-6
    xt = torch.tensor((x - mean) / std, dtype=torch.float32)
    yt = torch.tensor(np.r_[np.ones(len(positives)), np.zeros(len(negatives))], dtype=torch.float32)
    pos_weight = torch.tensor(len(negatives) / max(len(positives), 1))
    layers: list[list[np.ndarray]] = []
    for member in range(members):
        # the member's seed decides its initial weights and dropout without touching the
        # caller's global torch RNG (fork_rng restores it)
        with torch.random.fork_rng():
            torch.manual_seed(seed + member)
            layers.append(_fit_member(xt, yt, pos_weight, hidden, dropout, weight_decay, epochs,
                                      torch.Generator().manual_seed(seed + member)))  # fmt: skip
    w1, b1, w2, b2 = (np.stack(parts) for parts in zip(*layers, strict=True))
    return FacenessHead(mean, std, w1.transpose(0, 2, 1), b1, w2[:, 0], b2[:, 0], threshold=0.5)


def _fit_member(
    xt: torch.Tensor,
    yt: torch.Tensor,
    pos_weight: torch.Tensor,
    hidden: int,
    dropout: float,
    weight_decay: float,
    epochs: int,
    gen: torch.Generator,
) -> list[np.ndarray]:
    """One MLP of :func:`fit_head`: ``[w1 (H, D), b1 (H,), w2 (1, H), b2 (1,)]``."""
    import torch
    import torch.nn.functional as F

    first, last = torch.nn.Linear(xt.shape[1], hidden), torch.nn.Linear(hidden, 1)
    net = torch.nn.Sequential(torch.nn.Dropout(dropout), first, torch.nn.ReLU(), last)
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=weight_decay)
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(order), 256):
            idx = order[i : i + 256]
            loss = F.binary_cross_entropy_with_logits(
                net(xt[idx]).squeeze(1), yt[idx], pos_weight=pos_weight
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
    return [p.detach().double().numpy() for p in (first.weight, first.bias, last.weight, last.bias)]
