"""Is this detection a human face?  A tiny classifier on the face crop, after the detector.

YuNet, like every face detector trained on WIDER FACE, also fires on the faces of monkeys,
dogs and cats; the landmark model's confidence does not tell them apart (a cat scored 0.72,
true faces go down to 0.47).  This network looks at the same face crop the landmark model
sees (the detector's box through :func:`facemark.transforms.crop_matrix`), at 64 px, and
scores "human face" in [0, 1]: the ``faceness`` of every face record.  A detection below
:attr:`~facemark.detectors.DetectorConfig.faceness` is counted as "not a face".

It is its own small model (about 0.1 M parameters, a fraction of a millisecond per face)
rather than a head on the landmark network, so it works the same with every landmark
model: the bundled float and int8 ones, a user's fine-tuned run, an exported one.
``tools/train_faceness.py`` trains it (docs/faceness.md: data, split, threshold, figures).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facemark import checkpoint, transforms
from facemark.errors import CheckpointError
from facemark.images import Photo
from facemark.landmarker import crop_faces

TASK = "faceness"
ARCH = "facecheck"
#: Input side of the classifier: the landmark crop (same box, same margin) at 64 px.
IMG_SIZE = 64
_MEAN, _STD = 0.5, 0.25


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class FaceCheckNet(nn.Module):
    """Five stride-2 conv blocks (64 -> 2 px), global pooling, one logit."""

    arch = ARCH

    def __init__(self, widths: Sequence[int] = (16, 32, 48, 64, 96)) -> None:
        super().__init__()
        chans = (3, *widths)
        self.body = nn.Sequential(*(_block(a, b) for a, b in zip(chans, chans[1:], strict=False)))
        self.head = nn.Linear(chans[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B,)`` for crops ``(B, 3, 64, 64)`` in [0, 1]."""
        x = self.body((x - _MEAN) / _STD)
        return self.head(x.mean(dim=(2, 3))).squeeze(1)


class FaceChecker:
    """A loaded face check: ``checker.score(photos, boxes)`` -> human-face probability per box."""

    def __init__(
        self, model: FaceCheckNet, device: str | torch.device = "cpu", info: Mapping | None = None
    ) -> None:
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.info: dict[str, Any] = dict(info or {})

    @classmethod
    def from_checkpoint(
        cls, source: str | os.PathLike | Mapping[str, Any], device: str | torch.device = "cpu"
    ) -> FaceChecker:
        data = checkpoint.read(source, task=TASK)
        where = str(source) if isinstance(source, (str, os.PathLike)) else "checkpoint"
        try:
            model = FaceCheckNet(**dict(data.get("arch_kwargs") or {}))
            model.load_state_dict(data["state_dict"])
        except (RuntimeError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"{where} does not fit the face check network: {first}") from None
        info = {k: data.get(k) for k in ("metrics", "threshold", "run_name", "dataset_fingerprint")}
        return cls(model, device, info)

    @torch.inference_mode()
    def score_crops(self, crops: np.ndarray) -> np.ndarray:
        """Human-face probability of ready-made crops ``(F, S, S, 3)`` uint8 (any S)."""
        if not len(crops):
            return np.zeros(0, np.float32)
        x = transforms.to_tensor(np.asarray(crops)).to(self.device)
        if x.shape[-1] != IMG_SIZE:
            x = F.interpolate(x, size=(IMG_SIZE, IMG_SIZE), mode="bilinear", antialias=True)
        return torch.sigmoid(self.model(x)).float().cpu().numpy()

    def score(self, photos: Sequence[Photo], boxes: Sequence[np.ndarray]) -> list[np.ndarray]:
        """``(F,)`` probabilities per photo for its boxes; all faces go through at once."""
        crops = [crop_faces(p, b, IMG_SIZE)[0] for p, b in zip(photos, boxes, strict=True)]
        flat = self.score_crops(np.concatenate(crops)) if crops else np.zeros(0, np.float32)
        out, start = [], 0
        for c in crops:
            out.append(flat[start : start + len(c)])
            start += len(c)
        return out

    def __repr__(self) -> str:
        return f"FaceChecker(device='{self.device}')"


def load_checker(device: str | torch.device = "cpu") -> FaceChecker:
    """The bundled face check."""
    from facemark import paths

    return FaceChecker.from_checkpoint(paths.bundled_weights_dir() / "faceness.pt", device)
