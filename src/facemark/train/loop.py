"""The training loop itself: epochs of steps, Ctrl-C and the time limit, validation after
each epoch, the best and last checkpoints, progress bars, the result.

It advances a :class:`~facemark.train.state.RunState` (built and checkpointed there); every
rank runs it, and only rank 0 validates, saves and prints.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import nn

from facemark import devices, runs
from facemark.checkpoint import save_checkpoint
from facemark.config import TrainConfig
from facemark.errors import FacemarkError
from facemark.train.amp import amp_name, autocast
from facemark.train.console import print_epoch, print_header, print_summary
from facemark.train.ddp import end_group
from facemark.train.records import peak_gpu_mem_mb, write_run_info
from facemark.train.result import TrainResult
from facemark.train.state import RunState
from facemark.train.stop import StopFlag

#: Gradient-norm clip: only bites on the rare bad batch, keeps from-scratch training stable.
GRAD_CLIP = 10.0
#: Under DDP, ranks agree on Ctrl-C every this many steps (a collective per step is wasteful).
_STOP_CHECK_EVERY = 10
#: Live loss / samples-per-second on the batch bar are refreshed every this many steps
#: (reading the loss synchronises CUDA, so not every step).
_DISPLAY_EVERY = 10


class _Trainer(RunState):
    """One training invocation; split into methods only for readability."""

    def run(self) -> TrainResult:
        start = time.monotonic()
        try:
            self._setup()
            return self._loop(start)
        finally:
            end_group(self.dist)

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
            write_run_info(
                self.run_dir,
                cfg,
                self.device,
                dist,
                fingerprint=self.fingerprint,
                train_samples=len(self.train_ds),
                val_samples=len(self.val_ds),
                workers=self.workers,
                amp=amp_name(self.amp_dtype),
            )
            print_header(
                self.console,
                cfg,
                net=self.net,
                device=self.device,
                dist=dist,
                amp_dtype=self.amp_dtype,
                samples=(len(self.train_ds), len(self.val_ds)),
                workers=self.workers,
                resumed_at=(
                    (self.start_epoch, self.skip_batches) if self.resume_state is not None else None
                ),
                run_dir=self.run_dir,
            )
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
        with progress, StopFlag() as stop:
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
            print_summary(self.console, result, cfg, self.history, self.device)
        return result

    def _train_epoch(
        self, epoch: int, skip: int, stop: StopFlag, progress: Any, bar: Any
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
        amp = autocast(self.device, self.amp_dtype)
        batches = iter(self.train_loader)
        while True:
            t_wait = time.monotonic()
            try:
                batch = next(batches)
            except StopIteration:
                break
            self.partial["data_seconds"] += time.monotonic() - t_wait
            with amp:
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
                with torch.no_grad(), autocast(self.device, self.amp_dtype):
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
            print_epoch(self.console, row, improved, task.metric_name, cfg.epochs)
        return row


def train(cfg: TrainConfig, console: Any = None) -> TrainResult:
    """Train ``cfg.task`` as configured; returns where the run went and how it did.

    ``console`` is a rich Console for progress and summaries (a quiet one silences them).
    Raises :class:`FacemarkError` subclasses for anything the user can fix.
    """
    return _Trainer(cfg, console).run()
