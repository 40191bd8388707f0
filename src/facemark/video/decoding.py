"""Decoding a video's kept frames with PyAV.

Frames are decoded as RGB arrays, with real timestamps (``pts * time_base``, so variable
frame rates are right) and the rotation of phone videos applied (coordinates are in the
orientation a player shows).  ``stride`` keeps every Nth frame, ``start``/``end`` (seconds)
a span; a file cut short keeps the frames before the cut, with a warning.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from facemark.errors import DataError
from facemark.video.config import VideoConfig
from facemark.video.probe import load_av


@dataclass
class Frame:
    index: int  #: 0-based index among all decoded frames of the video
    timestamp: float  #: seconds (pts * time_base)
    image: np.ndarray  #: (H, W, 3) uint8 RGB, rotation applied


@dataclass
class Decoded:
    """What decoding found out besides the frames (filled while iterating)."""

    cut: str | None = None  #: why the video ended early, when it did
    seconds: float = 0.0
    rate: float = 25.0  #: average frame rate


def _rotation(frame: Any, stream: Any) -> int:
    """Counter-clockwise degrees the stored picture must turn to be shown upright."""
    rot = getattr(frame, "rotation", None)
    if rot is None:
        rot = 0
        with contextlib.suppress(Exception):
            rot = int(float(stream.metadata.get("rotate", 0)))
            rot = -rot  # the old 'rotate' tag is clockwise
    return int(round(rot / 90.0)) * 90 % 360


def decode(path: str | os.PathLike, config: VideoConfig, info: Decoded) -> Iterator[Frame]:
    """The kept frames of a video (stride, span), RGB and upright; raises DataError for a
    file that is not a video or has no video stream.  A cut-short file ends early and says
    why in ``info.cut``."""
    av = load_av()
    name = os.fspath(path)
    try:
        container = av.open(name)
    except FileNotFoundError:
        raise DataError(f"cannot read {name}: file not found") from None
    except Exception as exc:
        raise DataError(f"cannot read {name}: not a video PyAV can read ({_reason(exc)})") from None
    with container:
        if not container.streams.video:
            raise DataError(f"cannot read {name}: no video stream (audio only?)")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        base = stream.time_base or Fraction(1, 1)
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        info.rate = rate
        expected = None
        if stream.duration is not None:
            expected = float(stream.duration * base) + _start_time(stream, base)
        elif container.duration is not None:
            expected = container.duration / 1e6
        index, kept, last_t = -1, 0, None
        clock = time.perf_counter()
        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    index += 1
                    t = float(frame.pts * base) if frame.pts is not None else index / rate
                    last_t = t
                    if t < config.start - 1e-6:
                        continue
                    if config.end is not None and t > config.end + 1e-6:
                        return
                    if kept % config.video_stride == 0:
                        image = frame.to_ndarray(format="rgb24")
                        k = _rotation(frame, stream) // 90
                        if k:
                            image = np.ascontiguousarray(np.rot90(image, k))
                        info.seconds += time.perf_counter() - clock
                        yield Frame(index, t, image)
                        clock = time.perf_counter()
                    kept += 1
        except av.error.FFmpegError as exc:
            info.cut = f"cut short after {index + 1} frames: {_reason(exc)}"
            return
        finally:
            info.seconds += time.perf_counter() - clock
        if expected is not None and (last_t is None or last_t + 1.5 / rate < expected - 0.5 / rate):
            got = "no frame" if last_t is None else f"{last_t + 1 / rate:.2f} s"
            info.cut = f"cut short: {got} of {expected:.2f} s decoded"


def _start_time(stream: Any, base: Fraction) -> float:
    return float(stream.start_time * base) if stream.start_time is not None else 0.0


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).splitlines()[0]
