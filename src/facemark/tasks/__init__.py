"""Trainable tasks: what :func:`facemark.train.train` needs to know about each.

A task says how to build its network, read its data, compute its loss and validate; the
training loop (:mod:`facemark.train`) does everything else the same way for all of them.  Each task
declares its training defaults once, as a :class:`TaskDefaults`; ``facemark train --help``
shows them from there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from facemark.config import DEFAULTS, TASKS, TaskDefaults, default_text
from facemark.errors import UsageError

__all__ = ["DEFAULTS", "TASKS", "Task", "TaskDefaults", "default_text", "get_task"]

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

    from facemark.config import TrainConfig


@runtime_checkable
class Task(Protocol):
    """What a trainable task provides; the loop in :func:`train` does the rest.

    Optional extras the loop uses when present:

    * ``arch_defaults(arch) -> dict``: defaults that depend on the architecture (e.g. its
      input size), applied after ``defaults`` and before the user's values;
    * a ``collate_fn`` attribute on the datasets, used by their DataLoaders;
    * ``sample_weights(cfg, train_ds)``: per-sample draw weights (``--data-weight``,
      ``--balance``); a task without it takes no ``--balance`` or ``--augment``;
    * ``load_teacher(cfg, model, device)``: ``--teacher``, called once the network is built;
      the task's ``loss`` then adds the teacher's term; returns each teacher's spec and
      training config (the run warns when one trained on its validation faces);
    * ``check_resume(cfg, state)``: raise CheckpointError when ``--resume``'s checkpoint
      cannot go on under what the task loaded (e.g. the teacher's file changed).

    Models are passed as built (wrapped in DistributedDataParallel under ``torchrun``): call
    ``model(x)`` for the forward pass and ``devices.unwrap(model)`` for any other method.
    """

    name: str  #: "landmarks" | "detector"; stored as checkpoint["task"]
    metric_name: str  #: key of validate()'s dict that picks best.pt; lower is better

    #: TrainConfig values used where the user gave none.
    defaults: TaskDefaults

    def arch_kwargs(self, cfg: TrainConfig) -> dict[str, Any]:
        """Arguments that rebuild the network; stored in the checkpoint.  Raise UsageError
        for an unknown arch (called before any data is read)."""

    def build_model(self, cfg: TrainConfig) -> nn.Module:
        """A freshly initialised network."""

    def datasets(self, cfg: TrainConfig) -> tuple[Dataset, Dataset]:
        """(train, val); the train dataset has ``set_epoch(epoch)``.  Val may be empty."""

    def loss(self, model: nn.Module, batch: Any, device: torch.device) -> torch.Tensor:
        """Scalar training loss of one DataLoader batch (move it with :func:`move`)."""

    def validate(
        self, model: nn.Module, loader: DataLoader, device: torch.device
    ) -> dict[str, float]:
        """Metrics over the validation loader (eval mode and no_grad are set by the caller)."""

    def checkpoint_extras(self, cfg: TrainConfig) -> dict[str, Any]:
        """Merged into every checkpoint, e.g. ``{"img_size": ...}``."""


def get_task(name: str) -> Task:
    """The task called ``name``; each is imported only when asked for."""
    if name == "landmarks":
        from facemark.tasks.landmarks import LandmarkTask

        return LandmarkTask()
    if name == "detector":
        from facemark.tasks.detector import DetectorTask

        return DetectorTask()
    raise UsageError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}")
