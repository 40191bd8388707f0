"""``facemark train --task detector``: facemark's own face detector network.

The network, its targets, loss and decoding live in :mod:`facemark.detection`; the synthetic
training scenes in :mod:`facemark.data.canvas`; this module ties them into a task.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from facemark.boxes import GREY, letterbox, map_boxes, nms
from facemark.config import DEFAULTS
from facemark.data import load_split
from facemark.data.canvas import Canvas, CanvasSynthesizer, SynthConfig
from facemark.detection import (
    CALIBRATION_RANGE,
    MAX_BOXES,
    SIZE_MULTIPLE,
    STRIDE,
    _check_arch,
    build_detector,
    decode,
    detection_loss,
    detection_metrics,
    encode_targets,
    logit,
)
from facemark.devices import move, unwrap
from facemark.errors import UsageError


class DetectorDataset(torch.utils.data.Dataset):
    """Detector training / validation items as fixed-shape dicts (default_collate works).

    Training (``train=True``): one synthetic canvas per face frame and epoch, random as a
    function of ``(seed, epoch, index)`` only.  Validation: one fixed synthetic canvas per
    frame, followed by every frame itself letterboxed as at inference (``kind`` 1), so the
    metrics cover both crowded scenes and the dataset's own framing.
    """

    def __init__(
        self,
        faces,
        img_size: int,
        train: bool,
        seed: int = 0,
        config: SynthConfig | None = None,
        stride: int = STRIDE,
    ) -> None:
        if img_size % SIZE_MULTIPLE or img_size < SIZE_MULTIPLE * 2:
            raise UsageError(
                f"detector --img-size must be a multiple of {SIZE_MULTIPLE} (>= 64), got {img_size}"
            )
        self.faces = faces
        self.img_size = int(img_size)
        self.train = bool(train)
        self.seed = int(seed)
        self.stride = stride
        self.synth = CanvasSynthesizer(faces, img_size, config) if len(faces) else None
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def __len__(self) -> int:
        return 0 if self.synth is None else len(self.faces) * (1 if self.train else 2)

    def set_epoch(self, epoch: int) -> None:
        """Shared memory, so persistent DataLoader workers see the new epoch too."""
        self._epoch.fill_(int(epoch))

    def sample(self, index: int):
        """The :class:`~facemark.data.canvas.Canvas` of item ``index``."""
        n = len(self.faces)
        if not self.train and index >= n:  # the real frame, letterboxed
            frame = self.faces.images[index - n]
            image, M = letterbox(frame, self.img_size, pad_to=(self.img_size, self.img_size))
            box = map_boxes(self.synth.boxes[index - n], M)
            return Canvas(image, box, np.zeros((0, 4), np.float32))
        epoch = int(self._epoch.item()) if self.train else 0
        rng = np.random.default_rng([self.seed, epoch, index, 0xDE7])
        return self.synth.canvas(rng)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        index = int(index)
        canvas = self.sample(index)
        item = {
            k: torch.from_numpy(v)
            for k, v in encode_targets(
                canvas.boxes, canvas.ignore, self.img_size, self.img_size, self.stride
            ).items()
        }
        item["image"] = torch.from_numpy(np.ascontiguousarray(canvas.image.transpose(2, 0, 1)))
        for key, arr in (("boxes", canvas.boxes), ("ignore", canvas.ignore)):
            padded = np.zeros((MAX_BOXES, 4), np.float32)
            k = min(len(arr), MAX_BOXES)
            padded[:k] = arr[:k]
            item[key], item[f"num_{key}"] = torch.from_numpy(padded), torch.tensor(k)
        item["kind"] = torch.tensor(int(not self.train and index >= len(self.faces)))
        return item


def _to_device(
    batch: dict[str, torch.Tensor], device: torch.device
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """uint8 images travel to the device as bytes (4x less transfer) and become floats there."""
    device = torch.device(device)
    x = move(batch["image"], device).float().div_(255.0)  # .float() keeps channels-last
    targets = {
        k: move(batch[k], device) for k in ("heatmap", "box_target", "box_weight", "heat_mask")
    }
    return x, targets


def _stride_of(model: nn.Module) -> int:
    return int(getattr(unwrap(model), "stride", STRIDE))


class DetectorTask:
    """``facemark train --task detector``: the :class:`facemark.tasks.Task` of the detector."""

    name = "detector"
    metric_name = "miss_rate"

    defaults = DEFAULTS["detector"]

    def arch_kwargs(self, cfg) -> dict[str, Any]:
        _check_arch(cfg.arch)  # before any data is read
        return {}

    def build_model(self, cfg) -> nn.Module:
        return build_detector(cfg.arch, **self.arch_kwargs(cfg))

    def datasets(self, cfg) -> tuple[DetectorDataset, DetectorDataset]:
        common = {
            "root": cfg.data_root,
            "val_fraction": cfg.val_fraction,
            "seed": cfg.seed,
            "val_by": cfg.val_by,
        }
        train = load_split("train", progress=True, **common)
        val = load_split("val", progress=True, **common)
        return (
            DetectorDataset(train, cfg.img_size, train=True, seed=cfg.seed),
            DetectorDataset(val, cfg.img_size, train=False, seed=cfg.seed),
        )

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor], device) -> torch.Tensor:
        x, targets = _to_device(batch, device)
        heat, box = model(x)
        total, _ = detection_loss(heat, box, targets, _stride_of(model))
        return total

    @torch.no_grad()
    def validate(self, model: nn.Module, loader, device) -> dict[str, float]:
        """Detection metrics on the validation canvases, plus recall on the real frames.

        Detections are decoded at a low threshold so ``miss_rate`` and ``ap50`` see the whole
        score range.  ``score_offset`` is the logit of the raw score with the best F1 on these
        images; :class:`FacemarkDetector` subtracts it from the heatmap logits, so that score
        reads 0.5 and ``detect()``'s default threshold is a sensible operating point for any
        trained model.  ``recall``, ``fp_per_image`` and ``frame_recall`` are at that point.
        """
        stride = _stride_of(model)
        results, frame_results = [], []
        losses = []
        for batch in loader:
            x, targets = _to_device(batch, device)
            heat, box = model(x)
            losses.append(detection_loss(heat, box, targets, stride)[0].item())
            decoded = decode(heat, box, CALIBRATION_RANGE[0], stride)
            for i, (boxes, scores) in enumerate(decoded):
                keep = nms(boxes, scores)
                gt = batch["boxes"][i, : int(batch["num_boxes"][i])].numpy()
                ign = batch["ignore"][i, : int(batch["num_ignore"][i])].numpy()
                entry = (boxes[keep], scores[keep], gt, ign)
                (frame_results if int(batch["kind"][i]) else results).append(entry)
        # Calibrate: the F1-best raw score becomes 0.5, the default threshold of detect().
        raw = detection_metrics(results + frame_results)
        t = min(max(raw["f1_threshold"], CALIBRATION_RANGE[0]), CALIBRATION_RANGE[1])
        out = detection_metrics(results + frame_results, threshold=t)
        out["frame_recall"] = (
            detection_metrics(frame_results, threshold=t)["recall"] if frame_results else math.nan
        )
        out["score_offset"] = logit(t)
        out["loss"] = float(np.mean(losses)) if losses else math.nan
        del out["f1_threshold"]
        return out

    def checkpoint_extras(self, cfg) -> dict[str, Any]:
        return {"img_size": int(cfg.img_size), "stride": STRIDE, "pad_value": GREY}
