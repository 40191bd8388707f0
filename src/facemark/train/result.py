"""What :func:`facemark.train.train` hands back: where a finished (or stopped) run went and
how it did.

A plain record with no training machinery in it, so the CLI, tools and tests can read it,
print it or save it as JSON.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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

    def to_dict(self) -> dict[str, Any]:
        """Every field plus both checkpoint paths, ready for ``json.dumps``: paths as strings,
        a metric that is not finite (no validation, no epoch finished) as None."""
        out = dataclasses.asdict(self)
        out.update(
            run_dir=str(self.run_dir),
            best_metric=_finite(self.best_metric),
            last_metrics={k: _finite(v) for k, v in self.last_metrics.items()},
            best_checkpoint=str(self.best_checkpoint),
            last_checkpoint=str(self.last_checkpoint),
        )
        return out


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
