"""Settings declared once, torch-free: each task's training defaults, the validation split,
the training run's config.

Everything here is plain data, so ``facemark --help`` and the CLI read their defaults from it
without importing torch or the networks, and the code that uses a setting reads the same
value.  The run-time objects (networks, datasets, the training loop) live above this layer and
import it; nothing here imports them.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facemark.errors import UsageError

# --------------------------------------------------------------------------- validation split

#: How a split holds out faces: whole persons (Udacity names), whole photos (300-W's
#: ``name_N``), or single frames.
VAL_BY = ("identity", "photo", "frame")


@dataclass(frozen=True)
class SplitConfig:
    """Which faces a training run holds out for validation; ``evaluate --split val`` rebuilds
    a run's split from the values saved in its config."""

    val_fraction: float = 0.1
    seed: int = 0
    val_by: str = "identity"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: The default split (train, evaluate, preview, label sets).
SPLIT = SplitConfig()


# --------------------------------------------------------------------------- tasks

#: The tasks ``facemark train --task`` accepts.
TASKS = ("landmarks", "detector")


@dataclass(frozen=True)
class TaskDefaults:
    """The training values a task uses where the user gave none."""

    arch: str
    img_size: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    balance: float  #: pose-balanced sampling strength (landmarks; see TrainConfig.balance)


#: Each task's training defaults, declared here once (torch-free, so the CLI can show them).
DEFAULTS: dict[str, TaskDefaults] = {
    "landmarks": TaskDefaults(
        arch="heatmap",
        img_size=128,
        epochs=70,
        batch_size=32,
        lr=2e-3,
        weight_decay=1e-4,
        balance=0.0,
    ),
    "detector": TaskDefaults(
        arch="facedet",
        img_size=320,
        epochs=120,
        batch_size=64,
        lr=2e-3,
        weight_decay=1e-4,
        balance=0.0,
    ),
}


def default_text(name: str) -> str:
    """How ``train --help`` shows a default that depends on the task."""
    lm, det = (getattr(DEFAULTS[t], name) for t in TASKS)
    if name == "img_size":
        return f"{lm}, or the arch's own (udacity: 224); detector {det}"
    return str(lm) if lm == det else f"{lm}; detector {det}"


# --------------------------------------------------------------------------- a training run


@dataclass
class TrainConfig:
    """Every ``facemark train`` option; saved as the run's ``config.json``.

    ``None`` means "the task's default" (see :meth:`Task.defaults`); :func:`resolve_config`
    fills them in, so a saved config always holds the values actually used.
    """

    task: str = "landmarks"
    arch: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    img_size: int | None = None
    seed: int = SPLIT.seed
    val_fraction: float = SPLIT.val_fraction
    val_by: str = SPLIT.val_by
    device: str = "auto"
    workers: int | None = None
    amp: bool = True
    resume: str | None = None
    name: str | None = None
    max_minutes: float | None = None
    #: training data (``--data``): a Udacity-style root (None = paths.dataset_dir()), a folder
    #: of images with .pts files, an annotations.jsonl or a COCO JSON (see facemark.data);
    #: several sources (``--data A --data B``) as a list, each split for validation on its own
    data_root: str | list[str] | None = None
    #: each source's share of a training epoch (``--data-weight``, one per source, relative);
    #: None = in proportion to their sizes
    data_weights: list[float] | None = None
    #: validation data (``--val-data``), any format of ``data_root``; None = split data_root
    val_data: str | None = None
    #: start from this checkpoint's weights (fine-tuning); optimizer and schedule start fresh
    init: str | None = None
    #: pose-balanced sampling (landmarks): a face is drawn with weight ``share ** -balance``,
    #: ``share`` being the fraction of training faces in its yaw bin; 0 = plain shuffling;
    #: None = the task default
    balance: float | None = None
    #: augmentation overrides, ``"key=value,..."`` of :class:`transforms.AugmentConfig` fields
    augment: str | None = None
    #: distil (landmarks, ``--teacher``): a frozen landmark model (any model spec) whose
    #: outputs the network learns besides the labels; it must give the same output grid
    #: (same design and input size), e.g. a bigger or slower model to be matched by a faster;
    #: a list: several models, whose average is learnt
    teacher: str | list[str] | None = None
    #: weight of the teacher's term against the labels' (``--distill``)
    distill: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Rebuild from ``to_dict`` output, ignoring keys this version does not know (a run
        saved with the former ``hflip`` field gets it as ``augment`` ``p_flip``)."""
        known = {f.name for f in dataclasses.fields(cls)}
        out = {k: v for k, v in values.items() if k in known}
        if values.get("hflip") is not None:
            flip = f"p_flip={float(values['hflip']):g}"
            out["augment"] = f"{out['augment']},{flip}" if out.get("augment") else flip
        return cls(**out)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> TrainConfig:
        """A saved run's ``config.json`` (or a TOML file of the same keys): ``train --config``.
        Keys this version does not know are ignored, as in :meth:`from_dict`."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--config {path}: {exc.strerror or exc}") from None
        toml = path.suffix.lower() == ".toml"
        try:
            if toml:
                try:
                    import tomllib
                except ImportError:  # Python 3.10
                    raise UsageError("--config: TOML files need Python 3.11 or newer") from None
                values = tomllib.loads(text)
            else:
                values = json.loads(text)
        except ValueError as exc:
            kind = "TOML" if toml else "JSON"
            raise UsageError(f"--config {path}: not valid {kind} ({exc})") from None
        if not isinstance(values, dict):
            raise UsageError(f"--config {path}: expected a table of settings")
        return cls.from_dict(values)


# --------------------------------------------------------------------------- evaluate, export


@dataclass(frozen=True)
class EvaluateConfig:
    """The defaults of ``facemark evaluate`` and :func:`facemark.evaluate.evaluate_models`."""

    boxes: str = "gt"  #: gt (crop from the true points) or detect (the face detector)
    detector: str = "default"  #: for boxes="detect"
    flip: bool = False  #: average with the mirrored face's prediction
    device: str = "cpu"
    batch_size: int = 32  #: faces per network call
    timing: bool = True  #: measure ms/face at batch 1 and 32
    worst: int = 16  #: worst faces the --report gallery shows


@dataclass(frozen=True)
class ExportConfig:
    """The defaults of ``facemark export``."""

    opset: int = 17  #: the oldest ONNX opset facemark exports (and the default)
    check: bool = True  #: compare the file with torch on random inputs, time both
    calib: int = 200  #: int8: training-split crops that calibrate the quantisation
    calib_seed: int = 0  #: int8: picks the calibration crops


EVALUATE = EvaluateConfig()
EXPORT = ExportConfig()
