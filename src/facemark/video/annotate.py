"""One video from file to outputs: decode, track, and write each frame's record.

Outputs (with ``--out``), next to the photos' ``annotations.jsonl``: ``<out>/<video>.jsonl``
(one record per kept frame) and, with ``--csv``, ``<out>/<video>.csv`` in OpenFace's
FeatureExtraction layout.  Both are written under a ``.partial`` name and renamed when the
video is done, so ``--skip-existing`` skips finished videos and redoes interrupted ones.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facemark.confidence import confident
from facemark.errors import DataError
from facemark.files import plain
from facemark.results import ImageResult
from facemark.video.config import VideoConfig
from facemark.video.decoding import Decoded, Frame, decode
from facemark.video.openface import CSV_COLUMNS, csv_rows
from facemark.video.overlay import Overlay
from facemark.video.records import frame_record, poses_of
from facemark.video.timing import Timing
from facemark.video.tracker import Tracker

if TYPE_CHECKING:
    from facemark.pipeline import FaceMarker


def output_paths(out: Path, rel: os.PathLike | str) -> tuple[Path, Path]:
    """``<out>/<video rel path>.jsonl`` and ``.csv``."""
    base = out / rel
    return base.with_name(base.name + ".jsonl"), base.with_name(base.name + ".csv")


@dataclass
class VideoResult:
    frames: int = 0
    faces: int = 0
    tracks: int = 0
    dropped: int = 0  #: faces left out of the records by ``min_confidence``
    cut: str | None = None
    timing: Timing = field(default_factory=Timing)

    def to_dict(self) -> dict[str, Any]:
        return plain(self)


def annotate_video(
    path: Path,
    name: str,
    marker: FaceMarker,
    config: VideoConfig,
    *,
    jsonl: Path | None = None,
    csv_path: Path | None = None,
    overlay: Path | None = None,
    boxes: bool = False,
    on_record: Callable[[ImageResult], None] | None = None,
    min_confidence: float | None = None,
) -> VideoResult:
    """Track and mark the faces of one video; records go to ``on_record`` and, when given,
    to ``jsonl`` / ``csv_path`` / an annotated copy ``overlay`` (each written under a
    ``.partial`` name and renamed once the video is done, the JSONL last: it marks the video
    as done for ``--skip-existing``).  A face whose mean confidence is below
    ``min_confidence`` is left out of its frame's record (and counted) but still tracked.
    Raises DataError for a file that is not a readable video."""
    result = VideoResult()
    info = Decoded()
    tracker = Tracker(marker, config, result.timing)
    detector = marker.detector.describe() if marker.detector else None
    finals = [p for p in (overlay, csv_path, jsonl) if p is not None]  # the JSONL last
    partial = [p.with_name(p.name + ".partial") for p in (jsonl, csv_path) if p is not None]
    with contextlib.ExitStack() as stack:
        out_jsonl = out_csv = None
        frames = decode(path, config, info)
        first = next(frames, None)  # a bad file fails here, before any output is opened
        if first is None:
            span = f"between {config.start:g} s and " + (
                f"{config.end:g} s" if config.end is not None else "the end"
            )
            raise DataError(f"no video frame {span} (nothing written)")
        drawer = None
        if overlay is not None:
            overlay.parent.mkdir(parents=True, exist_ok=True)
            drawer = stack.enter_context(Overlay(overlay, info.rate / config.video_stride, boxes))
        if jsonl is not None:
            jsonl.parent.mkdir(parents=True, exist_ok=True)
            out_jsonl = stack.enter_context(open(partial[0], "w", encoding="utf-8"))
        if csv_path is not None:
            out_csv = csv.writer(
                stack.enter_context(open(partial[-1], "w", encoding="utf-8", newline="")),
                lineterminator="\n",
            )
            out_csv.writerow(CSV_COLUMNS)
        seen: set[int] = set()
        for frame in _chain(first, frames):
            tracked = tracker.step(frame.image, frame.timestamp)
            tracks = [t for t in tracked if confident(t.confidence, min_confidence)]
            result.dropped += len(tracked) - len(tracks)
            clock = time.perf_counter()
            h, w = frame.image.shape[:2]
            poses = poses_of(tracks, (w, h))
            marked = frame_record(name, frame, tracks, detector, poses)
            record = marked.to_dict()
            if out_jsonl is not None:
                out_jsonl.write(json.dumps(record, ensure_ascii=False) + "\n")
            if out_csv is not None:
                out_csv.writerows(csv_rows(record, poses))
            if drawer is not None:
                drawer.write(frame, record)
            if on_record is not None:
                on_record(marked)
            result.timing.write += time.perf_counter() - clock
            result.frames += 1
            result.faces += len(tracks)
            seen.update(t.id for t in tracks)
    result.timing.decode = info.seconds
    result.timing.frames = result.frames
    result.tracks = len(seen)
    result.cut = info.cut
    for final in finals:
        os.replace(final.with_name(final.name + ".partial"), final)
    return result


def _chain(first: Frame | None, rest: Iterator[Frame]) -> Iterator[Frame]:
    if first is not None:
        yield first
        yield from rest
