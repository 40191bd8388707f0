"""Which configuration a run trains with: the task's and the arch's defaults filled in, every
value checked before anything is built, and ``--resume`` turned into the saved run's config.

Mistakes here are the user's to fix, so they are :class:`UsageError`s with the option's name.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

from facemark import paths
from facemark.checkpoint import load_checkpoint
from facemark.config import TrainConfig
from facemark.errors import CheckpointError, FacemarkError, UsageError
from facemark.tasks import Task


def resolve_config(cfg: TrainConfig, task: Task) -> TrainConfig:
    """``cfg`` with the task's (and the arch's) defaults filled in and every value checked."""
    defaults = dataclasses.asdict(task.defaults)
    arch = cfg.arch or defaults.get("arch")
    arch_hook = getattr(task, "arch_defaults", None)
    if arch_hook is not None and arch is not None:
        defaults.update(arch_hook(arch))
    values = cfg.to_dict()
    for key, value in defaults.items():
        if values.get(key) is None:
            values[key] = value
    out = TrainConfig.from_dict(values)
    _require((out.epochs or 0) >= 1, f"--epochs must be at least 1, got {out.epochs}")
    _require((out.batch_size or 0) >= 1, f"--batch-size must be at least 1, got {out.batch_size}")
    _require((out.lr or 0) > 0, f"--lr must be positive, got {out.lr}")
    _require((out.weight_decay or 0) >= 0, f"--weight-decay must be >= 0, got {out.weight_decay}")
    _require((out.img_size or 0) >= 16, f"--img-size must be at least 16, got {out.img_size}")
    _require((out.balance or 0) >= 0, f"--balance must be >= 0, got {out.balance}")
    _require(
        math.isfinite(out.distill) and out.distill >= 0,
        f"--distill must be >= 0, got {out.distill}",
    )
    teacher = out.teacher
    if teacher is not None:  # one spec or a list of them (e.g. from a --config file)
        specs = teacher if isinstance(teacher, list) else [teacher]
        _require(
            bool(specs) and all(isinstance(t, str) and t.strip() for t in specs),
            f"--teacher takes model names, paths or URLs, got {teacher!r}",
        )
    _require(
        teacher is not None or out.distill == TrainConfig.distill,
        "--distill weighs the --teacher's term: give --teacher MODEL too",
    )
    for option, value, hook in (
        ("--balance", out.balance, "sample_weights"),
        ("--augment", out.augment, "sample_weights"),
        ("--teacher", out.teacher, "load_teacher"),
    ):
        _require(
            not value or hasattr(task, hook),
            f"{option} applies to landmark training, not --task {out.task}",
        )
    if not hasattr(task, "sample_weights"):  # the detector: one dataset root, split in place
        from facemark.data import is_udacity

        root = out.data_root
        _require(
            out.val_data is None and not isinstance(root, list) and is_udacity(root),
            f"--task {out.task} trains on a dataset root only (the installed one or --data "
            "ROOT); --data in other formats, several --data and --val-data are for landmarks",
        )
    if out.augment:  # a bad spec fails here, before any data is read
        from facemark.transforms import AugmentConfig

        AugmentConfig.with_overrides(out.augment)
    if out.data_weights:
        n_sources = len(out.data_root) if isinstance(out.data_root, list) else 1
        _require(
            len(out.data_weights) == n_sources,
            f"--data-weight: {len(out.data_weights)} weight(s) for {n_sources} --data source(s);"
            " give one per source",
        )
        _require(
            all(math.isfinite(w) and w >= 0 for w in out.data_weights)
            and sum(out.data_weights) > 0,
            "--data-weight: weights must be >= 0 and not all 0",
        )
        _require(
            out.task == "landmarks",
            f"--data-weight applies to landmark training, not --task {out.task}",
        )
    # Recorded absolute: the run's config names the same folders from any working directory
    # (``--config`` reuse, :func:`split_mismatch` of a later run that starts from it).
    out = dataclasses.replace(
        out, data_root=absolute_paths(out.data_root), val_data=absolute_paths(out.val_data)
    )
    _require(0 <= out.val_fraction < 1, f"--val-fraction must be in [0, 1), got {out.val_fraction}")
    _require(out.workers is None or out.workers >= 0, f"--workers must be >= 0, got {out.workers}")
    _require(
        out.max_minutes is None or out.max_minutes > 0,
        f"--max-minutes must be positive, got {out.max_minutes}",
    )
    return out


def absolute_paths(value: Any) -> Any:
    """A data path (or list of them) made absolute; None (the installed dataset) stays None."""
    if value is None:
        return None
    if isinstance(value, list):
        return [absolute_paths(v) for v in value]
    return os.path.abspath(os.path.expanduser(os.fspath(value)))


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise UsageError(message)


def _resolve_resume(spec: str) -> Path:
    """``--resume`` takes a checkpoint, a run folder or a run name."""
    path = Path(spec).expanduser()
    if path.is_dir():
        path = path / "last.pt"
    elif not path.exists() and "/" not in spec and (paths.runs_dir() / spec).is_dir():
        path = paths.runs_dir() / spec / "last.pt"
    if not path.is_file():
        raise UsageError(f"--resume: no checkpoint at {path}")
    return path


def load_init(cfg: TrainConfig) -> dict[str, Any]:
    """``--init``'s checkpoint, read once: its weights start the run, and its network is the
    run's when ``--arch`` is not given (:func:`config_for_init`)."""
    from facemark import hub

    try:
        return load_checkpoint(hub.resolve_model(cfg.init, cfg.task), task=cfg.task)
    except FacemarkError as exc:  # not found, not a checkpoint, no network: say which option
        raise type(exc)(f"--init: {exc}") from None


def config_for_init(cfg: TrainConfig, state: dict[str, Any] | None) -> TrainConfig:
    """``--init`` without ``--arch``: the network (and, unless given, the input size) of the
    model it starts from (``state``), so ``--init default`` fine-tunes whatever the bundled
    model is."""
    if state is None or cfg.arch is not None:
        return cfg
    arch = (state.get("config") or {}).get("arch") or state.get("arch")
    img_size = cfg.img_size if cfg.img_size is not None else state.get("img_size")
    return dataclasses.replace(cfg, arch=arch, img_size=img_size)


def split_mismatch(
    cfg: TrainConfig, state: dict[str, Any] | None, source: str | None = None
) -> str | None:
    """Why this run's validation figures would include faces a model it starts from (``--init``)
    or learns from (``--teacher``, named by ``source``) trained on, or None.

    Fine-tuning on data the init model also saw, split another way (another ``--seed`` or
    ``--val-fraction``, or a ``--val-by`` that splits that data differently), puts some of
    its training faces in this run's validation split, and the figures look better than
    they are.  So does validating (``--val-data``) on data it trained on, or splitting data it
    trained on in full (it validated on its own ``--val-data``).  A teacher leaks such faces
    as an init does: its outputs on its own training faces carry their labels.
    """
    from facemark.data import is_udacity, split_unit

    saved = (state or {}).get("config") or {}
    if not saved:
        return None
    source = source or f"--init {cfg.init}"

    def roots(value: Any) -> dict[Path, Any]:
        values = value if isinstance(value, list) else [value]
        return {Path(v or paths.dataset_dir()).expanduser().resolve(): v for v in values}

    def udacity(root: Any) -> bool:
        try:
            return is_udacity(root)
        except FacemarkError:  # unreadable: loading the data will say so
            return False

    trained = roots(saved.get("data_root"))
    if cfg.val_data is not None:  # this run validates on --val-data alone
        if not roots(cfg.val_data).keys() & trained.keys():
            return None
        return (
            f"{source} was trained on {cfg.val_data} (or part of it): this run's "
            "validation faces include some it trained on"
        )
    mine = roots(cfg.data_root)
    shared = [mine[r] for r in trained.keys() & mine.keys()]
    if not shared or not cfg.val_fraction:
        return None
    if saved.get("val_data") is not None:
        return (
            f"{source} was trained on all of {', '.join(map(str, shared))} (it "
            "validated on its --val-data): this run's validation faces are faces it trained on"
        )
    changed = [
        f"--{key.replace('_', '-')} {saved[key]} (this run {getattr(cfg, key)})"
        for key in ("val_fraction", "seed")
        if key in saved and saved[key] != getattr(cfg, key)
    ]
    then, now = saved.get("val_by", cfg.val_by), cfg.val_by
    if any(split_unit(then, udacity(r)) != split_unit(now, udacity(r)) for r in shared):
        changed.append(f"--val-by {then} (this run {now})")
    if not changed:
        return None
    return (
        f"{source} was trained on this data split with {', '.join(changed)}: this "
        "run's validation faces include some it trained on; give the same split options"
    )


def config_for_resume(cfg: TrainConfig) -> tuple[TrainConfig, dict[str, Any], Path | None]:
    """The saved run's config; only epochs, time limit, device and workers may change.

    Also returns the checkpoint's state and the run folder to continue in (None when a new
    ``--name`` asks for a new one).
    """
    path = _resolve_resume(cfg.resume)
    state = load_checkpoint(path, map_location="cpu")
    if "optimizer" not in state or "config" not in state:
        raise CheckpointError(
            f"{path} cannot be resumed (it has no training state; use the run's last.pt)"
        )
    saved = TrainConfig.from_dict(state["config"])
    changes = {
        "resume": str(path),
        "device": cfg.device,
        "workers": cfg.workers,
        "max_minutes": cfg.max_minutes,
    }
    if cfg.epochs is not None:
        changes["epochs"] = cfg.epochs
    resume_dir = path.parent if cfg.name is None else None
    resumed = dataclasses.replace(
        saved, **changes, name=saved.name if cfg.name is None else cfg.name
    )
    return resumed, state, resume_dir
