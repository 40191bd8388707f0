"""The state of one training run: how it is built (device, model, data, optimiser, schedule,
``--init`` weights, ``--resume``) and how it goes into ``last.pt`` / ``best.pt`` and comes
back out, exactly, on resume.

The loop in :mod:`facemark.train.loop` advances this state; keeping its construction and its
checkpoint format together here keeps what is saved and what is restored side by side.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facemark import devices
from facemark.checkpoint import save_checkpoint
from facemark.config import TrainConfig
from facemark.errors import CheckpointError, UsageError, first_line
from facemark.tasks import get_task
from facemark.train.amp import amp_dtype, grad_scaler
from facemark.train.ddp import rank_batch_size, seed_rank, share_cpu_threads, wrap_model
from facemark.train.records import dataset_fingerprint, new_run_dir
from facemark.train.resolve import (
    config_for_init,
    config_for_resume,
    load_init,
    resolve_config,
    split_mismatch,
)
from facemark.train.rng import rng_state, seed_everything, set_rng_state
from facemark.train.sampler import EpochSampler, make_loader
from facemark.train.schedule import optimizer_and_schedule


class RunState:
    """What one training invocation works with: config, task, model, data, optimiser, schedule
    and the progress so far; :meth:`_setup` builds it, :meth:`_save_last` checkpoints it."""

    def __init__(self, cfg: TrainConfig, console: Any) -> None:
        from rich.console import Console

        self.dist = devices.dist_from_env()
        self.console = console if console is not None else Console()
        if not self.dist.is_main:
            self.console = Console(quiet=True)
        self.resume_state: dict[str, Any] | None = None
        self.resume_dir: Path | None = None
        if cfg.resume:
            cfg, self.resume_state, self.resume_dir = config_for_resume(cfg)
        self.task = get_task(cfg.task)
        #: ``--init``'s checkpoint, read once (a resumed run has its own weights)
        self.init_state = load_init(cfg) if cfg.init and not cfg.resume else None
        self.cfg = resolve_config(config_for_init(cfg, self.init_state), self.task)
        self._warn_split(split_mismatch(self.cfg, self.init_state))
        self.arch_kwargs = self.task.arch_kwargs(self.cfg)

    def _warn_split(self, mismatch: str | None) -> None:
        if mismatch and self.dist.is_main:
            self.console.print(f"[yellow]warning:[/] {mismatch}", highlight=False)

    # -- setup -----------------------------------------------------------------------------

    def _load_init_weights(self, model: nn.Module, cfg: TrainConfig) -> None:
        """``--init``: fine-tune from another model's weights (same task and architecture).

        Any model spec works (run name, checkpoint, ``default``, URL): :func:`load_init`.
        """
        state = self.init_state
        assert state is not None
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
        self.rank_batch = rank_batch_size(cfg, dist)
        self.workers = (
            cfg.workers if cfg.workers is not None else devices.default_workers(dist.world_size)
        )
        share_cpu_threads(self.device, dist)
        seed_everything(cfg.seed)
        model = self.task.build_model(cfg)
        if self.init_state is not None:
            self._load_init_weights(model, cfg)
        model = model.to(self.device)
        seed_rank(cfg.seed, dist)  # same initial weights everywhere, different dropout/noise
        if self.device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
            torch.backends.cudnn.benchmark = True
        self.net = model
        self.model: nn.Module = wrap_model(model, dist, self.device)
        if cfg.teacher:  # resolve_config allowed it only for a task with load_teacher
            teachers = self.task.load_teacher(cfg, self.net, self.device)  # type: ignore[attr-defined]
            for spec, config in teachers:  # each one's training config
                self._warn_split(split_mismatch(cfg, {"config": config}, f"--teacher {spec}"))
        check = getattr(self.task, "check_resume", None)
        if self.resume_state is not None and check is not None:  # before the data is read
            check(cfg, self.resume_state)

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
        self.train_loader = make_loader(
            train_ds, self.rank_batch, self.workers, self.device, cfg.seed, self.sampler
        )
        self.val_loader = (
            make_loader(val_ds, max(self.rank_batch, 32), self.workers, self.device, cfg.seed)
            if len(val_ds) and dist.is_main
            else None
        )
        self.steps_per_epoch = self.sampler.steps
        self.optimizer, self.scheduler = optimizer_and_schedule(
            self.net, cfg, self.steps_per_epoch, self.device
        )
        self.amp_dtype = amp_dtype(self.device, cfg.amp)
        self.scaler = grad_scaler(self.amp_dtype == torch.float16)

        self.start_epoch, self.skip_batches = 0, 0
        self.history: list[dict[str, Any]] = []
        self.best = {"metric": math.inf, "epoch": 0}
        self.partial = {"loss_sum": 0.0, "steps": 0, "seconds": 0.0}
        if self.resume_state is not None:
            self._restore(self.resume_state)
            self.run_dir = self.resume_dir or new_run_dir(cfg.name, cfg.task)
        else:
            self.run_dir = new_run_dir(cfg.name, cfg.task) if dist.is_main else Path()
        if dist.is_main:  # the saved config names its run, also when the name was generated
            self.cfg = cfg = dataclasses.replace(cfg, name=self.run_dir.name)
        if self.start_epoch >= cfg.epochs and self.skip_batches == 0:
            raise UsageError(
                f"this run already finished its {self.start_epoch} epochs; "
                f"pass --epochs N (more than {self.start_epoch}) with --resume to train longer"
            )
        self.fingerprint = dataset_fingerprint(cfg)

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
        # only rank 0's RNG was saved; keep the ranks' streams distinct
        seed_rank(self.cfg.seed, self.dist, self.start_epoch)

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
