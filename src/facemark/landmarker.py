"""``Landmarker``: a loaded landmark model that places 68 points in each face box of an image.

It owns the whole inference path so callers only deal in image pixels: crop each box exactly
the way training did (``transforms.crop_face``), run the network on all faces of the image as
one batch, optionally average with the mirrored crop (flip test-time augmentation), and map
the points back through the inverse crop matrix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from facemark import checkpoint, models, transforms
from facemark.boxes import map_boxes
from facemark.errors import CheckpointError, UsageError, first_line
from facemark.faceness import FEATURES, FacenessHead
from facemark.images import REDUCE_FACTORS, Photo
from facemark.shape import NUM_POINTS

#: What a loaded model tells about itself (``Landmarker.info``), from its checkpoint.
INFO_KEYS = (
    "arch",
    "arch_kwargs",
    "img_size",
    "metrics",
    "epoch",
    "run_name",
    "config",  # the training config: evaluate --split val scores its own held-out part
    "facemark_version",
    "dataset_fingerprint",
    "quantized",
)

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
        faceness: FacenessHead | None = None,
    ) -> None:
        self.device = torch.device(device)
        # BatchNorm folded into the convolutions: same outputs, fewer layers to run.
        self.model = models.fuse_batchnorm(model.eval()).to(self.device)
        # NHWC suits oneDNN's CPU convolutions: up to 1.3x faster here, same points (see
        # benchmarks/bench_landmarks.py); CUDA keeps its own choice.
        self.memory_format = (
            torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        )
        self.model = self.model.to(memory_format=self.memory_format)
        self.img_size = int(img_size)
        #: What the checkpoint says about itself: arch, metrics, epoch, run name, ...
        self.info: dict[str, Any] = dict(info or {})
        #: "human face or not" on this network's features (None: this model has none)
        self.faceness = (
            faceness
            if faceness is not None
            and faceness.features == FEATURES
            and hasattr(self.model, "forward_features")
            else None
        )

    @property
    def arch(self) -> str:
        return str(self.info.get("arch", getattr(self.model, "arch", "?")))

    @classmethod
    def from_checkpoint(
        cls, source: str | os.PathLike | Mapping[str, Any], device: str = "cpu"
    ) -> Landmarker:
        """Rebuild the network a checkpoint describes (a path, or an already loaded dict).

        Everything needed (arch, its arguments, input size) is in the checkpoint; a file that
        is not a landmark checkpoint, or names an architecture this version lacks, is a
        one-line :class:`CheckpointError`.  An int8 checkpoint (``"quantized"``, made by
        ``facemark export --format int8``) is rebuilt as its int8 network
        (:func:`facemark.quantize.from_checkpoint`), for the CPU only.
        """
        data = checkpoint.read(source, task=cls.task)
        where = str(source) if isinstance(source, (str, os.PathLike)) else "checkpoint"
        arch = data.get("arch")
        if arch not in models.ARCHS:
            raise CheckpointError(
                f"{where} uses architecture {arch!r}, which this facemark version does not have "
                f"(known: {', '.join(models.ARCHS)}); upgrade facemark"
            )
        try:
            model = models.build_landmark_model(arch, **dict(data.get("arch_kwargs") or {}))
            if data.get("quantized") is None:
                model.load_state_dict(data["state_dict"])
        except (UsageError, RuntimeError, TypeError) as exc:
            raise CheckpointError(
                f"{where} does not match architecture {arch!r}: {first_line(exc)}"
            ) from None
        img_size = int(data.get("img_size") or getattr(model, "img_size", 0) or 0)
        if img_size <= 0:
            raise CheckpointError(f"{where} does not record its input size")
        if data.get("quantized") is not None:
            from facemark import quantize

            model = quantize.from_checkpoint(model, data, where, str(device))
        info = {k: data.get(k) for k in INFO_KEYS}
        head = data.get("faceness")
        faceness = FacenessHead.from_dict(head, where) if isinstance(head, Mapping) else None
        return cls(model, img_size, device, info, faceness)

    def crops(self, photo: Photo, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The network's view of each box (:func:`crop_faces` at the model's input size)."""
        return crop_faces(photo, boxes, self.img_size)

    @torch.inference_mode()
    def predict_crops(
        self, crops: np.ndarray | torch.Tensor, flip: bool = False, faceness: bool = False
    ) -> tuple[np.ndarray, ...]:
        """Keypoints in crop pixels and confidences for ready-made crops ``(F, S, S, 3)`` uint8
        (or a float tensor ``(F, 3, S, S)`` in [0, 1]); with ``faceness`` (and a model that
        has a faceness head) also each face's human-face probability ``(F,)``."""
        if isinstance(crops, torch.Tensor):
            x = crops if crops.ndim == 4 else crops[None]
        else:  # uint8 HWC crops: keep their memory order for the channels-last network
            arr = np.asarray(crops)
            x = transforms.to_tensor(arr[None] if arr.ndim == 3 else arr, self.memory_format)
        want = faceness and self.faceness is not None
        kps, conf, feats = [], [], []
        for start in range(0, x.shape[0], MAX_BATCH):
            k, c, f = self._run(x[start : start + MAX_BATCH].to(self.device), flip, want)
            kps.append(k)
            conf.append(c)
            feats.append(f)
        if not kps:
            return (*_none(), np.zeros(0, np.float32)) if want else _none()
        out = torch.cat(kps).numpy(), torch.cat(conf).numpy()
        if not want:
            return out
        assert self.faceness is not None
        return (*out, self.faceness.score(torch.cat(feats).numpy()))

    def _run(
        self, x: torch.Tensor, flip: bool, features: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        x = x.contiguous(memory_format=self.memory_format)
        if features:
            outputs, feats = self.model.forward_features(x)
            feats = feats.float().cpu()
        else:
            outputs, feats = self.model(x), None
        kps, conf = self.model.decode(outputs)
        if flip:
            # Mirror the crops, predict, mirror the points back (x -> S - 1 - x in the
            # pixel-index convention) and renumber them, then average with the plain pass.
            fk, fc = self.model.decode(self.model(torch.flip(x, dims=[3])))
            perm = torch.from_numpy(transforms.FLIP_PERM.astype(np.int64)).to(fk.device)
            fk = fk[:, perm]
            fk[..., 0] = (self.img_size - 1) - fk[..., 0]
            kps, conf = (kps + fk) / 2, (conf + fc[:, perm]) / 2
        return kps.float().cpu(), conf.float().cpu(), feats

    def predict_photos(
        self, photos: Sequence[Photo], boxes: Sequence[np.ndarray], flip: bool = False
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(keypoints (F, 68, 2), confidence (F, 68))`` per photo for its boxes, in full-size
        photo pixels; the faces of all photos go through the network together.

        This is the one landmark path: :class:`facemark.FaceMarker`, ``annotate``,
        ``evaluate`` and :meth:`predict` all come here (:meth:`mark_photos` too, with the
        faceness head).
        """
        return [(k, c) for k, c, _ in self._photo_pass(photos, boxes, flip, faceness=False)]

    def mark_photos(
        self, photos: Sequence[Photo], boxes: Sequence[np.ndarray], flip: bool = False
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """:meth:`predict_photos` with each face's faceness ``(F,)`` (None without a head)."""
        if self.faceness is None:
            return [(k, c, None) for k, c in self.predict_photos(photos, boxes, flip)]
        return self._photo_pass(photos, boxes, flip, faceness=True)

    def _photo_pass(
        self, photos: Sequence[Photo], boxes: Sequence[np.ndarray], flip: bool, faceness: bool
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        per_photo = [self.crops(p, b) for p, b in zip(photos, boxes, strict=True)]
        crops = np.concatenate([c for c, _ in per_photo]) if per_photo else np.zeros((0,))
        human: np.ndarray | None = None
        if not len(crops):
            kps_all, conf_all = _none()
            human = np.zeros(0, np.float32) if faceness else None
        elif faceness:
            kps_all, conf_all, human = self.predict_crops(crops, flip, faceness=True)
        else:
            kps_all, conf_all = self.predict_crops(crops, flip)
        out, start = [], 0
        for _, matrices in per_photo:
            stop = start + len(matrices)
            kps = kps_all[start:stop].astype(np.float64)
            for j, M in enumerate(matrices):
                kps[j] = transforms.apply_affine(kps[j], transforms.invert_affine(M))
            mine = None if human is None else human[start:stop]
            out.append((kps.astype(np.float32), conf_all[start:stop].astype(np.float32), mine))
            start = stop
        return out

    def predict(
        self, image: Any, boxes: np.ndarray, flip: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """68 keypoints per face box, in image pixels, with a confidence in [0, 1] per point.

        ``image`` is RGB uint8 ``(H, W, 3)`` (or a Pillow image, or a :class:`Photo`);
        ``boxes`` ``(F, 4)`` as ``x0, y0, x1, y1`` (from a face detector or
        :func:`transforms.face_box_from_keypoints`).  ``flip`` averages with the mirrored
        face: slightly more accurate, twice the time.
        """
        photo = image if isinstance(image, Photo) else Photo.from_image(image)
        return self.predict_photos([photo], [np.asarray(boxes, np.float64).reshape(-1, 4)], flip)[0]

    __call__ = predict

    def __repr__(self) -> str:
        return f"Landmarker(arch={self.arch!r}, img_size={self.img_size}, device='{self.device}')"


def crop_faces(photo: Photo, boxes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Each box's face crop at ``size`` px: ``(crops uint8 (F, S, S, 3), matrices (F, 2, 3))``,
    each matrix mapping full-size photo pixels to crop pixels.

    Crops come from the coarsest decoded view of the photo that still holds every face at
    ``size``, so a big face in a 12 MP photo is not cut from 12 MP.  The landmark model and
    the face check both crop here.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not len(boxes):
        return np.zeros((0, size, size, 3), np.uint8), np.zeros((0, 2, 3))
    if not np.isfinite(boxes).all():
        raise UsageError("face boxes must be finite numbers (got NaN or inf)")
    side = (boxes[:, 2:] - boxes[:, :2]).max(axis=1).min() * transforms.CROP_SCALE
    factor = max([f for f in REDUCE_FACTORS if f <= side / size], default=1)
    view, to_view = photo.view(-(-max(photo.size) // factor) if factor > 1 else 0)
    out_crops, out_matrices = [], []
    for box in map_boxes(boxes, to_view):
        crop, M = transforms.crop_face(view, box, size)
        out_crops.append(crop)
        out_matrices.append(transforms.compose(M, to_view))
    return np.stack(out_crops), np.stack(out_matrices)


def _none() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, NUM_POINTS, 2), np.float32), np.zeros((0, NUM_POINTS), np.float32)
