"""What a run did (:class:`Summary`), its progress bar and its closing table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the pipeline imports torch: loaded when a run starts, not with the CLI
    pass


@dataclass
class Summary:
    """What a run did, for the closing table and for scripts."""

    images: int = 0
    faces: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    found: int = 0  #: images among the inputs (all shards)
    seconds: float = 0.0  #: the whole run
    load_seconds: float = 0.0  #: of which loading the models (torch import included)
    out: Path | None = None
    shard: tuple[int, int] | None = None
    detector: dict[str, Any] | None = None  #: name and version of the detector used
    rejected: int = 0  #: detections the face check or the landmark model did not accept
    below_min_confidence: int = 0  #: faces dropped by ``min_confidence``
    #: records of an earlier run into the same folder: kept, and replaced by this run's
    earlier_kept: int = 0
    replaced: int = 0
    #: images inside facemark output folders among the inputs, not annotated again
    outputs_skipped: int = 0
    videos: int = 0  #: videos annotated (their frames are not counted in ``images``)
    frames: int = 0  #: video frames annotated
    #: seconds spent decoding, detecting, marking and writing video frames, and frames/s
    video_timing: dict[str, float] = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        """Throughput once the models are loaded (what a bigger run would see)."""
        busy = self.seconds - self.load_seconds
        return self.images / busy if busy > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "found": self.found,
            "images": self.images,
            "faces": self.faces,
            "skipped": self.skipped,
            "failures": len(self.failures),
            "images_per_s": round(self.images_per_s, 2),
            "seconds": round(self.seconds, 2),
            "load_seconds": round(self.load_seconds, 2),
            "out": str(self.out) if self.out else None,
            "detector": self.detector,
            "rejected": self.rejected,
            "below_min_confidence": self.below_min_confidence,
            "earlier_kept": self.earlier_kept,
            "replaced": self.replaced,
            "outputs_skipped": self.outputs_skipped,
            "videos": self.videos,
            "frames": self.frames,
            "video_timing": self.video_timing,
        }


def progress_bar(console: Any = None) -> Any:
    """The rich progress bar of an annotate run (on stderr unless a console is given)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    console = console or Console(stderr=True)

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            unit = task.fields.get("unit", "img")  # videos count frames
            return Text(
                f"{task.speed:.1f} {unit}/s" if task.speed else "", style="progress.data.speed"
            )

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=True,  # the summary table follows; warnings printed above the bar stay
        disable=not console.is_terminal,  # nothing to animate in a log file
    )


def summary_table(summary: Summary) -> Any:
    """The closing rich table of a run."""
    from rich.table import Table

    title = "annotate" + (
        f" (shard {summary.shard[0]}/{summary.shard[1]})" if summary.shard else ""
    )
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    if summary.shard:
        table.add_row("images found (all shards)", f"{summary.found:,}")
    table.add_row("images annotated", f"{summary.images:,}")
    if summary.videos:
        table.add_row("videos annotated", f"{summary.videos:,} ({summary.frames:,} frames)")
    table.add_row("faces", f"{summary.faces:,}")
    if summary.rejected:
        table.add_row("not faces (face and landmark checks)", f"{summary.rejected:,}")
    if summary.below_min_confidence:
        table.add_row("dropped (below --min-confidence)", f"{summary.below_min_confidence:,}")
    if summary.skipped:
        table.add_row("skipped (already done)", f"{summary.skipped:,}")
    if summary.outputs_skipped:
        table.add_row("skipped (in facemark output folders)", f"{summary.outputs_skipped:,}")
    if summary.earlier_kept or summary.replaced:
        table.add_row(
            "earlier results in --out",
            f"{summary.earlier_kept:,} kept, {summary.replaced:,} replaced by this run",
        )
    failed = len(summary.failures)
    table.add_row("failures", f"[red]{failed:,}[/] (see the warnings above)" if failed else "0")
    timing = f"{summary.seconds:.1f} s in all, {summary.load_seconds:.1f} s loading models"
    if summary.images or not summary.videos:
        table.add_row("speed", f"{summary.images_per_s:.1f} images/s ({timing})")
    else:
        table.add_row("time", timing)
    vt = summary.video_timing
    if vt:
        table.add_row(
            "video speed",
            f"{vt['fps']:.1f} frames/s (decode {vt['decode']:.1f} s, detect {vt['detect']:.1f} s, "
            f"landmarks {vt['landmarks']:.1f} s, write {vt['write']:.1f} s)",
        )
    if summary.out is not None:
        table.add_row("output", str(summary.out))
    return table
