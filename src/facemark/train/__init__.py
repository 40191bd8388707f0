"""The training loop shared by every task (landmarks, the face detector: :mod:`facemark.tasks`).

A *task* (see :class:`facemark.tasks.Task`) says what to build, what to feed it, how to
score it; this package does everything else the same way for all of them: device choice,
seeding, AdamW with a warm-up + cosine schedule, mixed precision on CUDA, gradient clipping,
rich progress, run records, checkpoints that resume exactly, Ctrl-C handling, a time limit,
and DistributedDataParallel when started by ``torchrun``.

Exact resumption rests on three things: the sample order is a pure function of
``(seed, epoch)`` (:class:`EpochSampler`), augmentation randomness is a pure function of
``(seed, epoch, index)`` (the dataset's ``set_epoch``), and every other piece of state
(weights, optimizer, schedule, loss scaler, global RNGs, position inside the epoch) is in
``last.pt``.

A run folder ``<runs dir>/<name>/`` holds ``best.pt`` (lowest validation metric), ``last.pt``
(everything needed to resume), ``config.json``, ``metrics.jsonl`` (one line per epoch),
``curves.png`` and ``env.json`` (versions, device, dataset fingerprint).

One module per concern: :mod:`~facemark.train.loop` (the loop, :func:`train`),
:mod:`~facemark.train.state` (building the run, checkpointing it),
:mod:`~facemark.train.resolve` (config defaults, checks, ``--resume``),
:mod:`~facemark.train.sampler` (sample order, loaders), :mod:`~facemark.train.schedule`
(optimiser, learning rate), :mod:`~facemark.train.amp` (mixed precision),
:mod:`~facemark.train.rng` (seeding, RNG state), :mod:`~facemark.train.records` (run folder,
``config.json``, ``env.json``), :mod:`~facemark.train.ddp` (``torchrun``),
:mod:`~facemark.train.stop` (Ctrl-C), :mod:`~facemark.train.console` (what is printed) and
:mod:`~facemark.train.result` (:class:`TrainResult`).  This file only re-exports their API.
"""

from __future__ import annotations

from facemark.config import TrainConfig
from facemark.train.console import format_metric
from facemark.train.loop import GRAD_CLIP, train
from facemark.train.records import cpu_name, environment, git_commit, peak_gpu_mem_mb
from facemark.train.resolve import resolve_config
from facemark.train.result import TrainResult
from facemark.train.rng import rng_state, seed_everything, set_rng_state
from facemark.train.sampler import EpochSampler
from facemark.train.schedule import FINAL_LR_FRACTION, WARMUP_EPOCHS, lr_factor

__all__ = [
    "FINAL_LR_FRACTION",
    "GRAD_CLIP",
    "WARMUP_EPOCHS",
    "EpochSampler",
    "TrainConfig",
    "TrainResult",
    "cpu_name",
    "environment",
    "format_metric",
    "git_commit",
    "lr_factor",
    "peak_gpu_mem_mb",
    "resolve_config",
    "rng_state",
    "seed_everything",
    "set_rng_state",
    "train",
]
