"""Whether a file is a video, and whether PyAV is here to read it.

Folder scans go by suffix; a file named explicitly is probed.  PyAV is optional
(``pip install 'facemark[video]'``) and imported only when a video is read
(:func:`load_av`), so importing ``facemark.video`` stays light.
"""

from __future__ import annotations

import os
from typing import Any

from facemark.errors import UsageError
from facemark.video.config import VideoConfig

#: What a folder scan picks up as a video (case-insensitive); files named explicitly are
#: probed whatever their suffix.
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm")

INSTALL_HINT = "video input needs PyAV: pip install 'facemark[video]'"


def has_video_suffix(name: str) -> bool:
    return name.lower().endswith(VIDEO_SUFFIXES)


def load_av() -> Any:
    """The ``av`` module, or the one-line install hint."""
    try:
        import av
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return av


def require_av() -> None:
    """Raise the one-line install hint when PyAV is not installed."""
    load_av()


def frames_to_read(path: str | os.PathLike, config: VideoConfig) -> int | None:
    """About how many frames a run over this video will annotate (for a progress bar's
    total): from the container's frame count or duration, the span and the stride; None
    when the container does not say."""
    try:
        with load_av().open(os.fspath(path)) as container:
            stream = container.streams.video[0]
            rate = float(stream.average_rate or stream.guessed_rate or 0)
            seconds = (
                float(stream.duration * stream.time_base)
                if stream.duration is not None and stream.time_base
                else (container.duration / 1e6 if container.duration else None)
            )
            frames = stream.frames or (round(seconds * rate) if seconds and rate else 0)
    except Exception:
        return None
    if not frames:
        return None
    if seconds and rate:
        end = min(config.end, seconds) if config.end is not None else seconds
        frames = max(0, round((end - config.start) * rate))
    return max(1, -(-frames // config.video_stride))


def is_video(path: str | os.PathLike) -> bool:
    """A video by its suffix; any other file that Pillow cannot read is probed with PyAV."""
    if has_video_suffix(os.fspath(path)):
        return True
    from PIL import Image

    try:
        with Image.open(path):
            return False
    except Exception:
        pass
    try:
        import av
    except ImportError:
        return False
    try:
        with av.open(os.fspath(path)) as container:
            return bool(container.streams.video)
    except Exception:
        return False
