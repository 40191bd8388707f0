"""Where the time of a video run goes (decode, detect, landmarks, write), summed over
videos for the run's summary."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Timing:
    decode: float = 0.0
    detect: float = 0.0
    landmarks: float = 0.0
    write: float = 0.0
    frames: int = 0

    def add(self, other: Timing) -> None:
        for name in ("decode", "detect", "landmarks", "write", "frames"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def seconds(self) -> float:
        return self.decode + self.detect + self.landmarks + self.write

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, float]:
        return {
            "frames": self.frames,
            "fps": round(self.fps, 2),
            **{k: round(getattr(self, k), 3) for k in ("decode", "detect", "landmarks", "write")},
        }
