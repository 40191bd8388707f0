"""``facemark train`` (the default task): 68-point landmarks on face crops."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from facemark import dataset, devices, labelsets, metrics, models, transforms
from facemark.tasks.defaults import DEFAULTS

if TYPE_CHECKING:
    from facemark.train import TrainConfig


class LandmarkTask:
    """68-point landmarks on face crops: the networks of :mod:`facemark.models`."""

    name = "landmarks"
    metric_name = "nme_io"

    defaults = DEFAULTS["landmarks"]

    def arch_defaults(self, arch: str) -> dict[str, Any]:
        spec = models.arch_spec(models.parse_arch(arch)[0])
        return {"img_size": spec.img_size, **spec.defaults}

    def arch_kwargs(self, cfg: TrainConfig) -> dict[str, Any]:
        """``{"img_size": ...}`` plus any ``--arch name:key=value`` overrides."""
        _, overrides = models.parse_arch(cfg.arch)  # unknown arch -> UsageError before any work
        return {"img_size": int(cfg.img_size), **overrides}

    def build_model(self, cfg: TrainConfig) -> nn.Module:
        return models.build_landmark_model(models.parse_arch(cfg.arch)[0], **self.arch_kwargs(cfg))

    def datasets(self, cfg: TrainConfig) -> tuple[Dataset, Dataset]:
        # A Udacity root splits by identity as always; other formats by image file.
        train_faces, val_faces = labelsets.training_sets(
            cfg.data_root,
            cfg.val_data,
            val_fraction=cfg.val_fraction,
            seed=cfg.seed,
            val_by=cfg.val_by,
            progress=True,
        )
        return (
            dataset.LandmarkDataset(
                train_faces,
                cfg.img_size,
                augment=True,
                seed=cfg.seed,
                config=self.augment_config(cfg),
            ),
            dataset.LandmarkDataset(val_faces, cfg.img_size, augment=False, seed=cfg.seed),
        )

    def augment_config(self, cfg: TrainConfig) -> Any:
        aug = transforms.AugmentConfig.with_overrides(cfg.augment)
        if cfg.hflip is not None:
            aug = dataclasses.replace(aug, p_flip=float(cfg.hflip))
        return aug

    def sample_weights(self, cfg: TrainConfig, train_ds: Any) -> np.ndarray | None:
        """Pose-balanced sampling (``--balance``): turned faces are rare in the training
        videos, so each face is drawn with weight ``(share of its yaw bin) ** -balance``."""
        if not cfg.balance:
            return None
        return balance_weights(metrics.yaw_proxy(train_ds.faces.keypoints), cfg.balance)

    def loss(self, model: nn.Module, batch: Any, device: torch.device) -> torch.Tensor:
        images, keypoints = batch
        outputs = model(devices.move(images, device))
        return devices.unwrap(model).loss(outputs, devices.move(keypoints, device))

    def validate(
        self, model: nn.Module, loader: DataLoader, device: torch.device
    ) -> dict[str, float]:
        preds, truth = [], []
        net = devices.unwrap(model)
        for images, keypoints in loader:
            kps, _ = net.decode(net(devices.move(images, device)))
            preds.append(kps.float().cpu())
            truth.append(keypoints.float())
        summary = metrics.summarize(torch.cat(preds).numpy(), torch.cat(truth).numpy())
        return {k: float(summary[k]) for k in metrics.HEADLINE}  # type: ignore[arg-type]

    def checkpoint_extras(self, cfg: TrainConfig) -> dict[str, Any]:
        return {"img_size": int(cfg.img_size), "arch": models.parse_arch(cfg.arch)[0]}


def balance_weights(yaw: np.ndarray, power: float) -> np.ndarray:
    """``share ** -power`` per face, ``share`` = fraction of faces in its yaw bin; sums to 1."""
    bins = metrics.bin_index(yaw, metrics.YAW_BINS)
    share = np.bincount(bins, minlength=len(metrics.YAW_BINS) - 1) / max(len(bins), 1)
    weights = share[bins] ** -float(power)
    return weights / weights.sum()
