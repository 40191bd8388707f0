"""``facemark train`` (the default task): 68-point landmarks on face crops."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from facemark import data, devices, metrics, models, transforms
from facemark.config import DEFAULTS
from facemark.errors import CheckpointError, FacemarkError, UsageError

if TYPE_CHECKING:
    from facemark.config import TrainConfig


class LandmarkTask:
    """68-point landmarks on face crops: the networks of :mod:`facemark.models`."""

    name = "landmarks"
    metric_name = "nme_io"

    defaults = DEFAULTS["landmarks"]

    def __init__(self) -> None:
        #: ``--teacher``'s frozen networks and the weight of their term (:meth:`load_teacher`)
        self.teachers: list[nn.Module] = []
        self.distill = 0.0
        #: each teacher file's sha256, kept in every checkpoint: a resumed run checks it still
        #: learns from the same models (a name like ``default`` can point elsewhere later)
        self.teacher_sha256: list[str] | None = None

    def arch_defaults(self, arch: str) -> dict[str, Any]:
        spec = models.arch_spec(_parsed(arch)[0])
        return {"img_size": spec.img_size, **spec.defaults}

    def arch_kwargs(self, cfg: TrainConfig) -> dict[str, Any]:
        """``{"img_size": ...}`` plus any ``--arch name:key=value`` overrides."""
        _, overrides = _parsed(cfg.arch)  # unknown arch -> UsageError before any work
        return {"img_size": int(cfg.img_size), **overrides}

    def build_model(self, cfg: TrainConfig) -> nn.Module:
        return models.build_landmark_model(_parsed(cfg.arch)[0], **self.arch_kwargs(cfg))

    def datasets(self, cfg: TrainConfig) -> tuple[Dataset, Dataset]:
        # Each --data source is split on its own: a Udacity root by identity as always,
        # other formats by image file (or by photo with --val-by photo).
        sources = data.training_sources(
            cfg.data_root,
            cfg.val_data,
            val_fraction=cfg.val_fraction,
            seed=cfg.seed,
            val_by=cfg.val_by,
            progress=True,
        )
        names = [s.name for s in sources]

        def part(split: str, augment: bool, **extra: Any) -> data.LandmarkDataset:
            sets = [getattr(s, split) for s in sources]
            ds = data.LandmarkDataset(
                data.concat_faces(sets, names),
                cfg.img_size,
                augment=augment,
                seed=cfg.seed,
                **extra,
            )
            ds.sources = _source_index([len(x) for x in sets])  # type: ignore[attr-defined]
            ds.source_names = names  # type: ignore[attr-defined]
            return ds

        train = part("train", True, config=self.augment_config(cfg))
        val = part("val", False)
        train.source_weights = data.source_weights(sources, cfg.data_weights)
        return train, val

    def augment_config(self, cfg: TrainConfig) -> Any:
        return transforms.AugmentConfig.with_overrides(cfg.augment)

    def sample_weights(self, cfg: TrainConfig, train_ds: Any) -> np.ndarray | None:
        """Per-face draw weights: each source's share of an epoch (``--data-weight``) times
        pose balance (``--balance``: turned faces are rare in the training videos, so each
        face is drawn with weight ``(share of its yaw bin) ** -balance`` within its source)."""
        by_source = getattr(train_ds, "source_weights", None)
        if not cfg.balance:
            return by_source
        sources = getattr(train_ds, "sources", np.zeros(len(train_ds), np.int64))
        yaw = metrics.yaw_proxy(train_ds.faces.keypoints)
        weights = np.zeros(len(train_ds))
        for k in np.unique(sources):
            mine = sources == k
            share = by_source[mine].sum() if by_source is not None else mine.mean()
            weights[mine] = balance_weights(yaw[mine], cfg.balance) * share
        return weights / weights.sum()

    def load_teacher(
        self, cfg: TrainConfig, model: nn.Module, device: torch.device
    ) -> list[tuple[str, Any]]:
        """``--teacher``: load the models whose outputs ``model`` learns besides the labels.

        Distilling needs the same output grid (heatmap networks at the same input size): the
        student then learns the teacher's whole score distribution per point, which says how
        unsure each point is, not only the labels' narrow Gaussian.  Several teachers teach
        their average (:meth:`HeatmapNet.average_outputs`): an ensemble is more accurate
        than any one of its members, and the student runs at the cost of one network.
        Returns each teacher's spec and training config, for the run's split check.
        """
        from facemark import hub
        from facemark.files import sha256_file

        student = devices.unwrap(model)
        nets, shas, configs = [], [], []
        for spec in teacher_specs(cfg.teacher):
            try:
                path = hub.resolve_model(spec, self.name)
                teacher = hub.load_model(path, device)
            except FacemarkError as exc:  # not found, not a checkpoint, no network
                raise type(exc)(f"--teacher: {exc}") from None
            net = teacher.model
            same = (
                hasattr(student, "distill_loss")
                and type(net) is type(student)
                and teacher.img_size == cfg.img_size
                and getattr(net, "grid", None) == student.grid
            )
            if not same:
                raise UsageError(
                    f"--teacher {spec}: a {teacher.arch} model at {teacher.img_size} px cannot "
                    f"teach --arch {cfg.arch} at --img-size {cfg.img_size} (distilling needs "
                    "heatmap models with the same input size and output grid)"
                )
            nets.append(net.eval().requires_grad_(False))
            shas.append(sha256_file(path))
            configs.append((spec, teacher.info.get("config")))
        self.teachers, self.teacher_sha256 = nets, shas
        self.distill = float(cfg.distill)
        return configs

    def loss(self, model: nn.Module, batch: Any, device: torch.device) -> torch.Tensor:
        images, keypoints = batch
        images = devices.move(images, device)
        outputs = model(images)
        net = devices.unwrap(model)
        loss = net.loss(outputs, devices.move(keypoints, device))
        if self.teachers and self.distill > 0:
            with torch.no_grad():
                target = net.average_outputs([t(images) for t in self.teachers])
            loss = loss + self.distill * net.distill_loss(outputs, target)
        return loss

    def validate(
        self, model: nn.Module, loader: DataLoader, device: torch.device
    ) -> dict[str, float]:
        """The headline metrics; with several sources, each source's too (``nme_io@wild``),
        and the overall ``nme_io`` is the mean of the sources' so each counts the same."""
        preds, truth = [], []
        net = devices.unwrap(model)
        for images, keypoints in loader:
            kps, _ = net.decode(net(devices.move(images, device)))
            preds.append(kps.float().cpu())
            truth.append(keypoints.float())
        pred, gt = torch.cat(preds).numpy(), torch.cat(truth).numpy()
        return source_metrics(
            pred,
            gt,
            getattr(loader.dataset, "sources", None),
            getattr(loader.dataset, "source_names", None),
        )

    def checkpoint_extras(self, cfg: TrainConfig) -> dict[str, Any]:
        extras = {"img_size": int(cfg.img_size), "arch": _parsed(cfg.arch)[0]}
        if self.teacher_sha256 is not None:
            extras["teacher_sha256"] = self.teacher_sha256
        return extras

    def check_resume(self, cfg: TrainConfig, state: dict[str, Any]) -> None:
        """A resumed run must learn from the teachers it started with: ``--teacher default``
        or a run name may point at another file after an upgrade or a retrain."""
        recorded = state.get("teacher_sha256")
        if isinstance(recorded, str):  # written by a development version: one teacher
            recorded = [recorded]
        if recorded is not None and recorded != self.teacher_sha256:
            raise CheckpointError(
                f"--resume: --teacher {' '.join(teacher_specs(cfg.teacher))} is no longer what "
                "this run started with (the file's sha256 differs); put those files back or "
                "start a new run"
            )


def teacher_specs(teacher: str | list[str] | None) -> list[str]:
    """``TrainConfig.teacher`` as a list: one model or several (an ensemble)."""
    if not teacher:
        return []
    return [teacher] if isinstance(teacher, str) else list(teacher)


@functools.lru_cache(maxsize=8)
def _parsed(arch: str) -> tuple[str, dict[str, Any]]:
    """``--arch`` as (name, overrides), parsed once per run however often the task asks."""
    return models.parse_arch(arch)


def balance_weights(yaw: np.ndarray, power: float) -> np.ndarray:
    """``share ** -power`` per face, ``share`` = fraction of faces in its yaw bin; sums to 1."""
    bins = metrics.bin_index(yaw, metrics.YAW_BINS)
    share = np.bincount(bins, minlength=len(metrics.YAW_BINS) - 1) / max(len(bins), 1)
    weights = share[bins] ** -float(power)
    return weights / weights.sum()


def _source_index(sizes: list[int]) -> np.ndarray:
    """The source of each sample of a concatenation of sets of these sizes."""
    return np.repeat(np.arange(len(sizes)), sizes)


def source_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    sources: np.ndarray | None = None,
    names: list[str] | None = None,
) -> dict[str, float]:
    """Headline metrics of all faces, or with several sources the mean of the sources'
    metrics plus each source's as ``key@name`` (the epoch table and metrics.jsonl show them)."""

    def headline(mask: Any = slice(None)) -> dict[str, float]:
        summary = metrics.summarize(pred[mask], gt[mask])
        return {k: float(summary[k]) for k in metrics.HEADLINE}  # type: ignore[arg-type]

    if sources is None or not names or len(names) < 2:
        return headline()
    out: dict[str, float] = {}
    per: list[dict[str, float]] = []
    for k, name in enumerate(names):
        mine = sources == k
        if not mine.any():
            continue
        row = headline(mine)
        per.append(row)
        out.update({f"{key}@{name}": value for key, value in row.items()})
    mean = {key: float(np.mean([row[key] for row in per])) for key in metrics.HEADLINE}
    return {**mean, **out}
