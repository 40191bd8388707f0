"""The training loop shared by every task: landmarks here, the face detector in detection.py.

A *task* (see :class:`Task`) says what to build, what to feed it, how to score it; this module
does everything else the same way for all of them: device choice, seeding, AdamW with a
warm-up + cosine schedule, mixed precision on CUDA, gradient clipping, rich progress, run
records, checkpoints that resume exactly, Ctrl-C handling, a time limit, and
DistributedDataParallel when started by ``torchrun``.

Exact resumption rests on three things: the sample order is a pure function of
``(seed, epoch)`` (:class:`EpochSampler`), augmentation randomness is a pure function of
``(seed, epoch, index)`` (the dataset's ``set_epoch``), and every other piece of state
(weights, optimizer, schedule, loss scaler, global RNGs, position inside the epoch) is in
``last.pt``.

A run folder ``<runs dir>/<name>/`` holds ``best.pt`` (lowest validation metric), ``last.pt``
(everything needed to resume), ``config.json``, ``metrics.jsonl`` (one line per epoch),
``curves.png`` and ``env.json`` (versions, device, dataset fingerprint).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import math
import os
import platform
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from facemark import devices, paths, runs
from facemark.checkpoint import load_checkpoint, save_checkpoint
from facemark.config import TrainConfig
from facemark.errors import CheckpointError, DataError, FacemarkError, UsageError, first_line
from facemark.files import write_json
from facemark.tasks import Task, get_task

#: Gradient-norm clip: only bites on the rare bad batch, keeps from-scratch training stable.
GRAD_CLIP = 10.0
#: Linear warm-up length in epochs (capped at a tenth of the run), then cosine decay.
WARMUP_EPOCHS = 2.0
#: The cosine ends at this fraction of the peak learning rate.
FINAL_LR_FRACTION = 0.01
#: Under DDP, ranks agree on Ctrl-C every this many steps (a collective per step is wasteful).
_STOP_CHECK_EVERY = 10
#: Live loss / samples-per-second on the batch bar are refreshed every this many steps
#: (reading the loss synchronises CUDA, so not every step).
_DISPLAY_EVERY = 10


# ----------------------------------------------------------------------------- configuration


@dataclass
class TrainResult:
    """What a finished (or stopped) run produced."""

    run_dir: Path
    metric_name: str
    best_metric: float
    best_epoch: int
    epochs_run: int  #: completed epochs, counting those before a resume
    seconds: float  #: wall time of this invocation
    interrupted: bool = False  #: stopped by Ctrl-C (last.pt saved mid-epoch)
    stopped_by_time: bool = False  #: stopped by --max-minutes
    last_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def best_checkpoint(self) -> Path:
        return self.run_dir / "best.pt"

    @property
    def last_checkpoint(self) -> Path:
        return self.run_dir / "last.pt"


# ----------------------------------------------------------------------------- config resolution


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
    for option, value in (("--balance", out.balance), ("--augment", out.augment)):
        _require(
            not value or hasattr(task, "sample_weights"),
            f"{option} applies to landmark training, not --task {out.task}",
        )
    if not hasattr(task, "sample_weights"):  # the detector: one dataset root, split in place
        from facemark.labelsets import is_udacity

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
    _require(0 <= out.val_fraction < 1, f"--val-fraction must be in [0, 1), got {out.val_fraction}")
    _require(out.workers is None or out.workers >= 0, f"--workers must be >= 0, got {out.workers}")
    _require(
        out.max_minutes is None or out.max_minutes > 0,
        f"--max-minutes must be positive, got {out.max_minutes}",
    )
    return out


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise UsageError(message)


# ----------------------------------------------------------------------------- sampling, schedule


class EpochSampler(Sampler[int]):
    """Shuffled sample order that depends only on ``(seed, epoch)``.

    Each rank takes every ``world_size``-th sample of the permutation and only full batches,
    so all ranks run the same number of steps.  ``skip_batches`` resumes mid-epoch on
    exactly the batches that were not yet trained on.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        weights: np.ndarray | None = None,
    ) -> None:
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size = rank, world_size
        #: per-sample draw weights: an epoch is ``size`` draws with replacement instead of a
        #: permutation, so rare samples come up more often
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        self.steps = (size // world_size) // batch_size
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch, self.skip = int(epoch), int(skip_batches)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.weights is None:
            order = torch.randperm(self.size, generator=g)
        else:
            order = torch.multinomial(self.weights, self.size, replacement=True, generator=g)
        mine = order[self.rank :: self.world_size]
        return iter(mine[self.skip * self.batch_size : self.steps * self.batch_size].tolist())

    def __len__(self) -> int:
        return max(self.steps - self.skip, 0) * self.batch_size


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warm-up from 1% to 100%, then cosine down to ``FINAL_LR_FRACTION``."""
    if step < warmup_steps:
        return 0.01 + 0.99 * step / max(warmup_steps, 1)
    t = min(1.0, (step - warmup_steps) / max(total_steps - warmup_steps, 1))
    return FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * t))


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv/linear weights only; decaying BatchNorm scales and biases hurts."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


# ----------------------------------------------------------------------------- state capture


def rng_state() -> dict[str, Any]:
    """Every global RNG, in a form ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            **np_state,
            "state": {"key": np_state["state"]["key"].tolist(), "pos": np_state["state"]["pos"]},
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np_state = dict(state["numpy"])
    np_state["state"] = {
        "key": np.asarray(np_state["state"]["key"], dtype=np.uint32),
        "pos": np_state["state"]["pos"],
    }
    np.random.set_state(np_state)
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if (
        "cuda" in state
        and torch.cuda.is_available()
        and len(state["cuda"]) == torch.cuda.device_count()
    ):
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------- run records


def environment(device: torch.device, dist: devices.Dist) -> dict[str, Any]:
    """Versions, hardware and source revision: what someone reproducing the run needs."""
    import PIL

    from facemark import __version__

    env: dict[str, Any] = {
        "facemark": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "world_size": dist.world_size,
        "git_commit": git_commit(),
        "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    return env


def cpu_name() -> str:
    """The CPU model (Linux /proc/cpuinfo), else whatever the platform module knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "cpu"


def peak_gpu_mem_mb(device: torch.device) -> float | None:
    """Most memory torch's allocator has held on ``device`` since the process started (MiB),
    or None off CUDA.  Tensors only: the CUDA context and the allocator's cache are not in it."""
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


def git_commit() -> str | None:
    """The source checkout's commit (with ``-dirty`` for local changes), if it is one."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def format_metric(name: str, value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    scale, unit = runs.metric_scale(name)
    return f"{value * scale:.3f}%" if unit else f"{value:.4g}"


# ----------------------------------------------------------------------------- the loop


class _StopFlag:
    """Ctrl-C sets a flag instead of raising, so the current step finishes and the state
    saved in ``last.pt`` is consistent.  A second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _StopFlag:
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _ignore_sigint(worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C to the main process, which shuts them down cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _loader(
    dataset: Dataset,
    batch_size: int,
    workers: int,
    device: torch.device,
    seed: int,
    sampler: Sampler | None = None,
) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        drop_last=sampler is not None,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        worker_init_fn=_ignore_sigint if workers > 0 else None,
        collate_fn=getattr(dataset, "collate_fn", None),
        # An explicit generator keeps DataLoader from drawing on the global RNG, which a
        # resumed run must find exactly as it was saved.
        generator=torch.Generator().manual_seed(seed),
    )


def _amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """bf16 autocast where the GPU supports it (no loss scaling needed), else fp16; never on CPU
    (CPU autocast is slower than float32 for these small convolutions)."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _grad_scaler(enabled: bool) -> Any:
    """Loss scaling, needed for fp16 autocast only (torch < 2.3 keeps it under torch.cuda)."""
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)


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


def _new_run_dir(name: str | None, task: str) -> Path:
    if name is None:
        name = f"{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{task}"
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise UsageError(f"--name must be a plain folder name, got {name!r}")
    run_dir = paths.runs_dir() / name
    if (run_dir / "last.pt").exists() or (run_dir / "best.pt").exists():
        raise UsageError(
            f"run '{name}' already exists at {run_dir}; pick another --name or --resume it"
        )
    return run_dir


class _Trainer:
    """One training invocation; split into methods only for readability."""

    def __init__(self, cfg: TrainConfig, console: Any) -> None:
        from rich.console import Console

        self.dist = devices.dist_from_env()
        self.console = console if console is not None else Console()
        if not self.dist.is_main:
            self.console = Console(quiet=True)
        self.resume_state: dict[str, Any] | None = None
        if cfg.resume:
            cfg = self._config_for_resume(cfg)
        self.task = get_task(cfg.task)
        self.cfg = resolve_config(cfg, self.task)
        self.arch_kwargs = self.task.arch_kwargs(self.cfg)

    # -- setup -----------------------------------------------------------------------------

    def _config_for_resume(self, cfg: TrainConfig) -> TrainConfig:
        """The saved run's config; only epochs, time limit, device and workers may change."""
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
        self.resume_state = state
        self.resume_dir = path.parent if cfg.name is None else None
        return dataclasses.replace(
            saved, **changes, name=saved.name if cfg.name is None else cfg.name
        )

    def _load_init_weights(self, model: nn.Module, cfg: TrainConfig) -> None:
        """``--init``: fine-tune from another model's weights (same task and architecture).

        Any model spec works (run name, checkpoint, ``default``, URL): :func:`hub.resolve_model`.
        """
        from facemark import hub

        try:
            state = load_checkpoint(
                hub.resolve_model(cfg.init, self.task.name), task=self.task.name
            )
        except UsageError as exc:
            raise UsageError(f"--init: {exc}") from None
        try:
            model.load_state_dict(state["state_dict"])
        except RuntimeError as exc:
            raise UsageError(
                f"--init: {cfg.init} holds arch {state['arch']!r} weights that do not fit "
                f"--arch {cfg.arch!r} at --img-size {cfg.img_size}"
            ) from exc

    def _setup(self) -> None:
        cfg, dist = self.cfg, self.dist
        self.device = devices.resolve_train_device(cfg.device, dist)
        devices.init_dist(dist, self.device)
        if cfg.batch_size % dist.world_size:
            raise UsageError(
                f"--batch-size {cfg.batch_size} does not split evenly over "
                f"{dist.world_size} processes"
            )
        self.rank_batch = cfg.batch_size // dist.world_size
        self.workers = (
            cfg.workers if cfg.workers is not None else devices.default_workers(dist.world_size)
        )
        if dist.enabled and self.device.type == "cpu":  # processes share the cores
            torch.set_num_threads(max(1, torch.get_num_threads() // dist.world_size))
        seed_everything(cfg.seed)
        model = self.task.build_model(cfg)
        if cfg.init:
            self._load_init_weights(model, cfg)
        model = model.to(self.device)
        if dist.rank:  # same initial weights everywhere, different dropout/noise streams
            torch.manual_seed(cfg.seed + 7919 * dist.rank)
        if self.device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
            torch.backends.cudnn.benchmark = True
        self.net = model
        self.model: nn.Module = model
        if dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(model, device_ids=ids)

        train_ds, val_ds = self.task.datasets(cfg)
        if len(train_ds) < cfg.batch_size:
            raise UsageError(
                f"the training split has {len(train_ds)} samples, "
                f"fewer than one batch of {cfg.batch_size}; "
                "lower --batch-size"
            )
        self.train_ds, self.val_ds = train_ds, val_ds
        weights_hook = getattr(self.task, "sample_weights", None)
        self.sampler = EpochSampler(
            len(train_ds),
            self.rank_batch,
            cfg.seed,
            dist.rank,
            dist.world_size,
            weights_hook(cfg, train_ds) if weights_hook is not None else None,
        )
        self.train_loader = _loader(
            train_ds, self.rank_batch, self.workers, self.device, cfg.seed, self.sampler
        )
        self.val_loader = (
            _loader(val_ds, max(self.rank_batch, 32), self.workers, self.device, cfg.seed)
            if len(val_ds) and dist.is_main
            else None
        )
        self.steps_per_epoch = self.sampler.steps
        total = self.steps_per_epoch * cfg.epochs
        warmup = min(int(WARMUP_EPOCHS * self.steps_per_epoch), total // 10)
        self.optimizer = torch.optim.AdamW(
            _param_groups(self.net, cfg.weight_decay), lr=cfg.lr, fused=self.device.type == "cuda"
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, total, warmup)
        )
        self.amp_dtype = _amp_dtype(self.device, cfg.amp)
        self.scaler = _grad_scaler(self.amp_dtype == torch.float16)

        self.start_epoch, self.skip_batches = 0, 0
        self.history: list[dict[str, Any]] = []
        self.best = {"metric": math.inf, "epoch": 0}
        self.partial = {"loss_sum": 0.0, "steps": 0, "seconds": 0.0}
        if self.resume_state is not None:
            self._restore(self.resume_state)
            self.run_dir = self.resume_dir or _new_run_dir(cfg.name, cfg.task)
        else:
            self.run_dir = _new_run_dir(cfg.name, cfg.task) if dist.is_main else Path()
        if dist.is_main:  # the saved config names its run, also when the name was generated
            self.cfg = cfg = dataclasses.replace(cfg, name=self.run_dir.name)
        if self.start_epoch >= cfg.epochs and self.skip_batches == 0:
            raise UsageError(
                f"this run already finished its {self.start_epoch} epochs; "
                f"pass --epochs N (more than {self.start_epoch}) with --resume to train longer"
            )
        try:
            from facemark.labelsets import training_fingerprint

            self.fingerprint: str | None = training_fingerprint(cfg.data_root, cfg.val_data)
        except (DataError, ImportError, OSError):
            self.fingerprint = None

    def _restore(self, state: dict[str, Any]) -> None:
        if (
            state.get("arch") != self._payload_arch()
            or state.get("arch_kwargs") != self.arch_kwargs
        ):
            raise CheckpointError(
                "--resume: the checkpoint's architecture does not match its saved config"
            )
        try:
            self.net.load_state_dict(state["state_dict"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(
                f"--resume: the checkpoint does not fit this model ({first_line(exc)})"
            ) from None
        self.start_epoch = int(state["epoch"])
        self.skip_batches = int(state.get("step_in_epoch", 0))
        self.history = list(state.get("history", []))
        self.best = dict(state.get("best", self.best))
        self.partial = dict(state.get("partial", self.partial))
        if "rng" in state:
            set_rng_state(state["rng"])
        if self.dist.rank:  # only rank 0's RNG was saved; keep the ranks' streams distinct
            torch.manual_seed(self.cfg.seed + 7919 * self.dist.rank + self.start_epoch)

    # -- checkpoints -----------------------------------------------------------------------

    def _payload_arch(self) -> str:
        """The checkpoint's ``arch``: the config's, unless the task names it (variants)."""
        return self.task.checkpoint_extras(self.cfg).get("arch", self.cfg.arch)

    def _payload(self, metrics: dict[str, float], epoch: int) -> dict[str, Any]:
        state_dict = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        return {
            "task": self.task.name,
            "arch": self.cfg.arch,
            "arch_kwargs": self.arch_kwargs,
            **self.task.checkpoint_extras(self.cfg),
            "state_dict": state_dict,
            "config": self.cfg.to_dict(),
            "metrics": metrics,
            "epoch": epoch,
            "run_name": self.run_dir.name,
            "dataset_fingerprint": self.fingerprint,
        }

    def _save_last(self, metrics: dict[str, float], epoch: int, step_in_epoch: int) -> None:
        payload = self._payload(metrics, epoch)
        payload.update(
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            scaler=self.scaler.state_dict(),
            rng=rng_state(),
            step_in_epoch=step_in_epoch,
            partial=dict(self.partial),
            history=self.history,
            best=self.best,
        )
        save_checkpoint(self.run_dir / "last.pt", payload)

    # -- running ---------------------------------------------------------------------------

    def run(self) -> TrainResult:
        start = time.monotonic()
        try:
            self._setup()
            return self._loop(start)
        finally:
            if self.dist.owns_group:
                import torch.distributed as td

                with contextlib.suppress(Exception):
                    td.destroy_process_group()

    def _write_run_info(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.run_dir / "config.json", self.cfg.to_dict())
        env = environment(self.device, self.dist)
        env["dataset"] = {
            "fingerprint": self.fingerprint,
            "train_samples": len(self.train_ds),
            "val_samples": len(self.val_ds),
        }
        env["workers"] = self.workers
        env["amp"] = str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else None
        write_json(self.run_dir / "env.json", env)

    def _loop(self, start: float) -> TrainResult:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        cfg, dist, task = self.cfg, self.dist, self.task
        main = dist.is_main
        if main:
            self._write_run_info()
            self._print_header()
        last_metrics: dict[str, float] = self.history[-1].get("val", {}) if self.history else {}
        interrupted = stopped_by_time = False
        epoch = self.start_epoch
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("<"),
            TimeRemainingColumn(),
        )
        progress = Progress(*columns, console=self.console, disable=not main)
        with progress, _StopFlag() as stop:
            epochs_bar = progress.add_task("epochs", total=cfg.epochs, completed=epoch, info="")
            batch_bar = progress.add_task("", total=self.steps_per_epoch, info="")
            while epoch < cfg.epochs:
                skip = self.skip_batches if epoch == self.start_epoch else 0
                progress.update(
                    batch_bar, description=f"epoch {epoch + 1}", completed=skip, info=""
                )
                stopped_at = self._train_epoch(epoch, skip, stop, progress, batch_bar)
                if stopped_at is not None:
                    if main:
                        self._save_last(last_metrics, epoch, stopped_at)
                    interrupted = True
                    break
                row = self._end_epoch(epoch, start)
                last_metrics = row.get("val", {})
                epoch += 1
                progress.update(epochs_bar, completed=epoch)
                if epoch < cfg.epochs and devices.any_rank(stop.requested, dist, self.device):
                    interrupted = True  # last.pt of this epoch is already saved
                    break
                if cfg.max_minutes is not None and devices.any_rank(
                    time.monotonic() - start > cfg.max_minutes * 60, dist, self.device
                ):
                    stopped_by_time = epoch < cfg.epochs
                    break
        result = TrainResult(
            run_dir=self.run_dir,
            metric_name=task.metric_name,
            best_metric=float(self.best["metric"]),
            best_epoch=int(self.best["epoch"]),
            epochs_run=epoch,
            seconds=time.monotonic() - start,
            interrupted=interrupted,
            stopped_by_time=stopped_by_time,
            last_metrics=last_metrics,
        )
        if main:
            self._print_summary(result)
        return result

    def _train_epoch(
        self, epoch: int, skip: int, stop: _StopFlag, progress: Any, bar: Any
    ) -> int | None:
        """One pass over the training set; returns the step reached if stopped by Ctrl-C."""
        self.model.train()
        self.train_ds.set_epoch(epoch)
        self.sampler.set_epoch(epoch, skip)
        if skip == 0:
            self.partial = {"loss_sum": 0.0, "steps": 0, "seconds": 0.0, "data_seconds": 0.0}
        self.partial.setdefault("data_seconds", 0.0)
        loss_sum = torch.zeros((), device=self.device)
        shown_steps, t0, step = 0, time.monotonic(), skip
        autocast = self._autocast()
        batches = iter(self.train_loader)
        while True:
            t_wait = time.monotonic()
            try:
                batch = next(batches)
            except StopIteration:
                break
            self.partial["data_seconds"] += time.monotonic() - t_wait
            with autocast:
                loss = self.task.loss(self.model, batch, self.device)
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.net.parameters(), GRAD_CLIP)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            self.scheduler.step()
            loss_sum += loss.detach().float()
            step += 1
            if (step - skip) % _DISPLAY_EVERY == 0 or step == self.steps_per_epoch:
                self._fold_loss(loss_sum, step - skip - shown_steps, t0)
                shown_steps, t0 = step - skip, time.monotonic()
                loss_sum.zero_()
                mean = self.partial["loss_sum"] / max(self.partial["steps"], 1)
                rate = (
                    self.partial["steps"] * self.cfg.batch_size / max(self.partial["seconds"], 1e-9)
                )
                progress.update(bar, completed=step, info=f"loss {mean:.4f}  {rate:.0f} samples/s")
            else:
                progress.update(bar, completed=step)
            check = not self.dist.enabled or step % _STOP_CHECK_EVERY == 0
            if (
                check
                and devices.any_rank(stop.requested, self.dist, self.device)
                and step < self.steps_per_epoch
            ):
                self._fold_loss(loss_sum, step - skip - shown_steps, t0)
                return step
        return None

    def _autocast(self) -> torch.autocast:
        return torch.autocast(
            self.device.type,
            dtype=self.amp_dtype or torch.bfloat16,
            enabled=self.amp_dtype is not None,
        )

    def _fold_loss(self, loss_sum: torch.Tensor, steps: int, t0: float) -> None:
        if steps <= 0:
            return
        self.partial["loss_sum"] += float(loss_sum.item())
        self.partial["steps"] += steps
        self.partial["seconds"] += time.monotonic() - t0

    def _end_epoch(self, epoch: int, start: float) -> dict[str, Any]:
        cfg, task = self.cfg, self.task
        steps = max(self.partial["steps"], 1)
        train_loss = self.partial["loss_sum"] / steps
        if not math.isfinite(train_loss):
            raise FacemarkError(
                f"training diverged at epoch {epoch + 1} (loss is {train_loss}); try a lower --lr"
                + (" or --no-amp" if self.amp_dtype else "")
            )
        seconds = self.partial["seconds"]
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "lr": self.optimizer.param_groups[0]["lr"],
            "seconds": round(seconds, 3),
            "samples_per_s": round(self.partial["steps"] * cfg.batch_size / max(seconds, 1e-9), 1),
            "data_wait": round(self.partial.get("data_seconds", 0.0) / max(seconds, 1e-9), 4),
        }
        val: dict[str, float] = {}
        if self.dist.is_main:
            if self.val_loader is not None:
                t = time.monotonic()
                self.model.eval()
                with torch.no_grad(), self._autocast():
                    val = task.validate(self.net, self.val_loader, self.device)
                row["val_seconds"] = round(time.monotonic() - t, 3)
            row["val"] = val
            row.update({f"val_{k}": v for k, v in val.items()})
            peak = peak_gpu_mem_mb(self.device)
            if peak is not None:
                row["peak_gpu_mem_mb"] = peak
            row["elapsed"] = round(time.monotonic() - start, 1)
            self.history.append(row)
            if val:
                metric = val.get(task.metric_name, math.nan)
                improved = math.isfinite(metric) and metric < self.best["metric"]
            else:  # no validation split: the newest weights are the best we know
                metric, improved = math.nan, True
            if improved:
                self.best = {"metric": metric, "epoch": epoch + 1}
            self.partial = {"loss_sum": 0.0, "steps": 0, "seconds": 0.0, "data_seconds": 0.0}
            self._save_last(val, epoch + 1, 0)
            if improved:
                save_checkpoint(self.run_dir / "best.pt", self._payload(val, epoch + 1))
            runs.write_history(self.run_dir, self.history, task.metric_name)
            self._print_epoch(row, improved)
        return row

    # -- output ----------------------------------------------------------------------------

    def _print_header(self) -> None:
        cfg = self.cfg
        from facemark.models import count_parameters

        params = count_parameters(self.net) / 1e6
        amp = str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "off"
        world = f" x {self.dist.world_size} processes" if self.dist.enabled else ""
        verb = "resuming" if self.resume_state is not None else "training"
        self.console.print(
            f"[bold]{verb}[/] {cfg.task} arch [cyan]{cfg.arch}[/] ({params:.2f}M params, "
            f"{cfg.img_size} px) on [cyan]{self.device}[/]{world}, amp {amp}, "
            f"{len(self.train_ds)} train / {len(self.val_ds)} val samples, batch {cfg.batch_size}, "
            f"lr {cfg.lr:g}, {cfg.epochs} epochs, {self.workers} workers",
            highlight=False,
            soft_wrap=True,
        )
        if self.resume_state is not None:
            step = f", step {self.skip_batches}" if self.skip_batches else ""
            self.console.print(f"continuing after epoch {self.start_epoch}{step}", highlight=False)
        self.console.print(f"run folder: {self.run_dir}", highlight=False, soft_wrap=True)

    def _print_epoch(self, row: dict[str, Any], improved: bool) -> None:
        name = self.task.metric_name
        val = format_metric(name, row["val"].get(name)) if row["val"] else "-"
        by_source = "".join(
            f" {key.split('@', 1)[1]} {format_metric(name, value)}"
            for key, value in row["val"].items()
            if key.startswith(f"{name}@")
        )
        if by_source:
            val += f" ({by_source.strip()})"
        best = " [green]best[/]" if improved else ""
        self.console.print(
            f"epoch {row['epoch']:>3}/{self.cfg.epochs}  loss {row['train_loss']:.4f}  "
            f"val {name} {val}{best}  lr {row['lr']:.2e}  {row['seconds']:.1f}s  "
            f"{row['samples_per_s']:.0f} samples/s  data wait {row['data_wait']:.0%}",
            highlight=False,
            soft_wrap=True,
        )

    def _print_summary(self, result: TrainResult) -> None:
        from rich.table import Table

        name = result.metric_name
        table = Table(title="training summary", show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column()
        done = [r for r in self.history if "seconds" in r]
        per_epoch = sum(r["seconds"] + r.get("val_seconds", 0.0) for r in done) / max(len(done), 1)
        status = (
            "interrupted (Ctrl-C)"
            if result.interrupted
            else ("stopped by --max-minutes" if result.stopped_by_time else "finished")
        )
        rows = [
            ("status", status),
            ("task / arch", f"{self.cfg.task} / {self.cfg.arch} ({self.cfg.img_size} px)"),
            ("epochs", f"{result.epochs_run} of {self.cfg.epochs}"),
            (
                f"best val {name}",
                f"{format_metric(name, result.best_metric)} (epoch {result.best_epoch})"
                if result.best_epoch and math.isfinite(result.best_metric)
                else "-",
            ),
            (f"last val {name}", format_metric(name, result.last_metrics.get(name))),
            ("final train loss", f"{self.history[-1]['train_loss']:.4f}" if self.history else "-"),
            (
                "time",
                f"{_duration(result.seconds)} this session, "
                + (f"{per_epoch:.1f} s per epoch" if done else "no epoch finished yet"),
            ),
            (
                "throughput",
                f"{self.history[-1]['samples_per_s']:.0f} samples/s on {self.device}"
                if self.history
                else "-",
            ),
        ]
        if self.history and "peak_gpu_mem_mb" in self.history[-1]:
            rows.append(("peak GPU memory", f"{self.history[-1]['peak_gpu_mem_mb']:.0f} MiB"))
        rows.append(("run folder", str(self.run_dir)))
        for key, value in rows:
            table.add_row(key, value)
        self.console.print(table)
        if result.interrupted or result.stopped_by_time:
            self.console.print(
                f"saved {self.run_dir / 'last.pt'}; continue with: "
                f"facemark train --resume {self.run_dir}",
                highlight=False,
                soft_wrap=True,
            )


def train(cfg: TrainConfig, console: Any = None) -> TrainResult:
    """Train ``cfg.task`` as configured; returns where the run went and how it did.

    ``console`` is a rich Console for progress and summaries (a quiet one silences them).
    Raises :class:`FacemarkError` subclasses for anything the user can fix.
    """
    return _Trainer(cfg, console).run()
