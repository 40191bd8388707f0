"""``Landmarker``: a loaded landmark model that places 68 points in each face box of an image.

It owns the whole inference path so callers only deal in image pixels: crop each box exactly
the way training did (``transforms.crop_face``), run the network on all faces of the image as
one batch, optionally average with the mirrored crop (flip test-time augmentation), and map
the points back through the inverse crop matrix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from facemark import models, transforms
from facemark.checkpoint import FORMAT, load_checkpoint
from facemark.errors import CheckpointError, UsageError
from facemark.shape import NUM_POINTS

#: Faces per forward pass; bounds memory on photos with very many faces.
MAX_BATCH = 64


class Landmarker:
    """A landmark network ready for inference (eval mode, on ``device``).

    ``predict(image, boxes)`` -> ``(keypoints (F, 68, 2) image px, confidence (F, 68))``.
    """

    task = "landmarks"

    def __init__(
        self,
        model: nn.Module,
        img_size: int,
        device: str | torch.device = "cpu",
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self.device = torch.device(device)
        # BatchNorm folded into the convolutions: same outputs, fewer layers to run.
        self.model = models.fuse_batchnorm(model.eval()).to(self.device)
        self.img_size = int(img_size)
        #: What the checkpoint says about itself: arch, metrics, epoch, run name, ...
        self.info: dict[str, Any] = dict(info or {})

    @property
    def arch(self) -> str:
        return str(self.info.get("arch", getattr(self.model, "arch", "?")))

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | os.PathLike | Mapping[str, Any], device: str = "cpu"
    ) -> Landmarker:
        """Rebuild the network a checkpoint describes (a path, or an already loaded dict).

        Everything needed (arch, its arguments, input size) is in the checkpoint; a file that
        is not a landmark checkpoint, or names an architecture this version lacks, is a
        one-line :class:`CheckpointError`.
        """
        if isinstance(checkpoint, Mapping):
            data = dict(checkpoint)
            where = str(data.get("run_name") or "checkpoint")
            if data.get("format") not in (FORMAT, None) or "state_dict" not in data:
                raise CheckpointError(f"{where} is not a facemark checkpoint")
            if data.get("task") != cls.task:
                raise CheckpointError(
                    f"{where} holds a {data.get('task')} model, not a landmarks model"
                )
        else:
            data = load_checkpoint(checkpoint, task=cls.task, map_location="cpu")
            where = str(checkpoint)
        arch = data.get("arch")
        if arch not in models.ARCHS:
            raise CheckpointError(
                f"{where} uses architecture {arch!r}, which this facemark version does not have "
                f"(known: {', '.join(models.ARCHS)}); upgrade facemark"
            )
        try:
            model = models.build_landmark_model(arch, **dict(data.get("arch_kwargs") or {}))
            model.load_state_dict(data["state_dict"])
        except (UsageError, RuntimeError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(
                f"{where} does not match architecture {arch!r}: {first}"
            ) from None
        img_size = int(data.get("img_size") or getattr(model, "img_size", 0) or 0)
        if img_size <= 0:
            raise CheckpointError(f"{where} does not record its input size")
        info = {
            k: data.get(k)
            for k in (
                "arch",
                "arch_kwargs",
                "img_size",
                "metrics",
                "epoch",
                "run_name",
                "facemark_version",
                "dataset_fingerprint",
            )
        }
        return cls(model, img_size, device, info)

    def crops(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The network's view of each box: ``(crops uint8 (F, S, S, 3), matrices (F, 2, 3))``."""
        out = [transforms.crop_face(image, box, self.img_size) for box in boxes]
        if not out:
            return np.zeros((0, self.img_size, self.img_size, 3), np.uint8), np.zeros((0, 2, 3))
        return np.stack([c for c, _ in out]), np.stack([m for _, m in out])

    @torch.inference_mode()
    def predict_crops(
        self, crops: np.ndarray | torch.Tensor, flip: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints in crop pixels and confidences for ready-made crops ``(F, S, S, 3)`` uint8
        (or a float tensor ``(F, 3, S, S)`` in [0, 1])."""
        x = crops if isinstance(crops, torch.Tensor) else transforms.to_tensor(np.asarray(crops))
        if x.ndim == 3:
            x = x[None]
        kps, conf = [], []
        for start in range(0, x.shape[0], MAX_BATCH):
            k, c = self._run(x[start : start + MAX_BATCH].to(self.device), flip)
            kps.append(k)
            conf.append(c)
        if not kps:
            return np.zeros((0, NUM_POINTS, 2), np.float32), np.zeros((0, NUM_POINTS), np.float32)
        return torch.cat(kps).numpy(), torch.cat(conf).numpy()

    def _run(self, x: torch.Tensor, flip: bool) -> tuple[torch.Tensor, torch.Tensor]:
        kps, conf = self.model.decode(self.model(x))
        if flip:
            # Mirror the crops, predict, mirror the points back (x -> S - 1 - x in the
            # pixel-index convention) and renumber them, then average with the plain pass.
            fk, fc = self.model.decode(self.model(torch.flip(x, dims=[3])))
            perm = torch.from_numpy(transforms.FLIP_PERM.astype(np.int64)).to(fk.device)
            fk = fk[:, perm]
            fk[..., 0] = (self.img_size - 1) - fk[..., 0]
            kps, conf = (kps + fk) / 2, (conf + fc[:, perm]) / 2
        return kps.float().cpu(), conf.float().cpu()

    def predict(
        self, image: np.ndarray, boxes: np.ndarray, flip: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """68 keypoints per face box, in image pixels, with a confidence in [0, 1] per point.

        ``image`` is RGB uint8 ``(H, W, 3)``; ``boxes`` ``(F, 4)`` as ``x0, y0, x1, y1`` (from
        the face detector or :func:`transforms.face_box_from_keypoints`).  ``flip`` averages
        with the mirrored face: slightly more accurate, twice the time.
        """
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        crops, matrices = self.crops(image, boxes)
        kps, conf = self.predict_crops(crops, flip)
        for i, M in enumerate(matrices):
            kps[i] = transforms.apply_affine(kps[i].astype(np.float64), transforms.invert_affine(M))
        return kps.astype(np.float32), conf.astype(np.float32)

    __call__ = predict

    def __repr__(self) -> str:
        return f"Landmarker(arch={self.arch!r}, img_size={self.img_size}, device='{self.device}')"
