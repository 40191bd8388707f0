"""Each task's training defaults, declared once.

Torch-free, so ``facemark train --help`` can show them without importing the networks; the
networks' modules read their default architecture and input size from here too.
"""

from __future__ import annotations

from dataclasses import dataclass

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
