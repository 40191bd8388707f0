"""The options of video inputs in one frozen dataclass, apart from the code that uses them:
the CLI and ``annotator`` read their defaults and checks without loading anything heavy."""

from __future__ import annotations

from dataclasses import dataclass

from facemark.errors import UsageError, option


@dataclass(frozen=True)
class VideoConfig:
    """Options of video inputs, declared once (``facemark annotate --help`` shows these)."""

    #: Annotate every Nth frame.
    video_stride: int = 1
    #: Start of the span to annotate, in seconds.
    start: float = 0.0
    #: End of the span to annotate, in seconds (None: to the end).
    end: float | None = None
    #: Run the detector every N annotated frames (and whenever a face was lost); in
    #: between, faces are tracked by the landmark model alone.  1: detect on every frame.
    detect_every: int = 10
    #: Smooth the keypoints over time (One-Euro filter per point).
    smooth: bool = True
    #: One-Euro minimum cutoff (Hz): lower is steadier when the face is still.
    smooth_min_cutoff: float = 0.3
    #: One-Euro speed coefficient (per face size per second): higher follows fast motion
    #: with less lag.
    smooth_beta: float = 12.0

    def check(self) -> None:
        if self.video_stride < 1:
            raise UsageError(f"{option('video_stride')} must be >= 1 (got {self.video_stride})")
        if self.detect_every < 1:
            raise UsageError(f"{option('detect_every')} must be >= 1 (got {self.detect_every})")
        if self.start < 0:
            raise UsageError(f"{option('start')} must be >= 0 seconds (got {self.start})")
        if self.end is not None and self.end <= self.start:
            raise UsageError(f"--end ({self.end}) must be after --start ({self.start})")
        if self.smooth_min_cutoff <= 0 or self.smooth_beta < 0:
            raise UsageError("--smooth-min-cutoff must be > 0 and --smooth-beta >= 0")
