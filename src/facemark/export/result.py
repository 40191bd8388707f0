"""What an ONNX or TorchScript export made and measured (:class:`ExportResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facemark.export.options import TOLERANCE


@dataclass
class Timing:
    """Milliseconds per face (or image) at one batch size, exported runtime and torch."""

    batch: int
    exported_ms: float
    torch_ms: float


@dataclass
class ExportResult:
    path: Path
    format: str
    task: str
    arch: str
    size: int
    metadata: dict[str, str]
    output_names: tuple[str, ...]
    source: Path | None = None
    source_size: int = 0
    #: Largest absolute difference from torch, per output, over all check inputs.
    diffs: dict[str, float] = field(default_factory=dict)
    timings: list[Timing] = field(default_factory=list)
    unit: str = "face"
    threads: int = 0
    checked_shapes: tuple[tuple[int, ...], ...] = ()
    seconds: float = 0.0

    @property
    def max_abs_diff(self) -> float | None:
        return max(self.diffs.values()) if self.diffs else None

    @property
    def ok(self) -> bool:
        """No check made, or every output within :data:`TOLERANCE` of torch."""
        diff = self.max_abs_diff
        return diff is None or diff <= TOLERANCE

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "task": self.task,
            "arch": self.arch,
            "size": self.size,
            "max_abs_diff": self.max_abs_diff,
            "diffs": self.diffs,
            "timings": [vars(t) for t in self.timings],
            "unit": self.unit,
            "threads": self.threads,
            "metadata": self.metadata,
        }
