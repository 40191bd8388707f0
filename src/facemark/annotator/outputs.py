"""The files of a run: where they go, the JSONL written line by line (resumable), the CSV,
``.pts`` and annotated copies, and merging with an earlier run's records."""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from facemark.annotator.config import AnnotateConfig
from facemark.annotator.inputs import InputImage
from facemark.errors import DataError, UsageError
from facemark.files import atomic_write, is_output_folder, read_jsonl
from facemark.images import Photo
from facemark.shape import LABEL_ORIGIN, NUM_POINTS
from facemark.video import VIDEO_SUFFIXES

if TYPE_CHECKING:  # the pipeline imports torch: loaded when a run starts, not with the CLI
    pass


JSONL_NAME = "annotations"
DEFAULT_OUT = "facemark-out"

#: Quality of annotated JPEG/WebP copies: high enough that the thin keypoint dots stay crisp.
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {"JPEG": {"quality": 92}, "WEBP": {"quality": 90}}


@dataclass(frozen=True)
class Layout:
    """Where every output of a run goes (``suffix`` tells shards' files apart)."""

    out: Path
    suffix: str = ""

    @property
    def jsonl(self) -> Path:
        return self.out / f"{JSONL_NAME}{self.suffix}.jsonl"

    @property
    def csv(self) -> Path:
        return self.out / f"{JSONL_NAME}{self.suffix}.csv"

    @property
    def coco(self) -> Path:
        return self.out / f"{JSONL_NAME}{self.suffix}.coco.json"

    @property
    def parquet(self) -> Path:
        return self.out / f"{JSONL_NAME}{self.suffix}.parquet"

    def overlay(self, item: InputImage) -> Path:
        """The annotated copy: same relative path and format (PNG when it cannot be saved)."""
        path = self.out / item.rel
        if _save_format(path) is None:
            path = path.with_name(path.name + ".png")
        return path

    def pts(self, item: InputImage, index: int, count: int) -> Path:
        """``<stem>.pts`` for a single face (the iBUG convention), ``<stem>_<k>.pts`` otherwise."""
        name = f"{item.stem}.pts" if count == 1 else f"{item.stem}_{index}.pts"
        return self.out / item.rel.parent / name


def _save_format(path: Path) -> str | None:
    fmt = Image.registered_extensions().get(path.suffix.lower())
    return fmt if fmt in Image.SAVE else None


def _own_output(out: Path | None) -> Path | None:
    """``out`` when it is safe to leave out of a scan: new, or written by facemark before.

    An existing folder of the user's own photos is scanned like any other, so naming it as
    ``--out`` is refused by :func:`check_output` instead of its photos being overwritten.
    """
    if out is None or not out.exists() or is_output_folder(out):
        return out
    if any(out.glob(f"{JSONL_NAME}*.jsonl")):
        return out
    # a run over videos alone writes <video>.jsonl files (and annotated .mp4 copies) only
    video_jsonl = tuple(suffix + ".jsonl" for suffix in VIDEO_SUFFIXES)
    if any(p.name.lower().endswith(video_jsonl) for p in out.rglob("*.jsonl")):
        return out
    return None


def check_output(
    out: Path, items: Sequence[InputImage], inputs: Iterable[str | os.PathLike], draw: bool
) -> None:
    """Refuse an ``--out`` that would put files into an input folder or over an input."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    real_out = os.path.realpath(out)
    input_dirs = {os.path.realpath(Path(os.fspath(p)).expanduser()) for p in inputs}
    input_dirs = {d for d in input_dirs if os.path.isdir(d)}
    input_dirs |= {os.path.dirname(item.real) for item in items}
    if real_out in input_dirs:
        raise UsageError(
            f"--out {out} is a folder with input images; facemark never writes among its inputs: "
            f"choose another folder (e.g. --out {Path(out) / DEFAULT_OUT})"
        )
    if draw:
        layout = Layout(out)
        reals = {item.real for item in items}
        for item in items:
            if os.path.realpath(layout.overlay(item)) in reals:
                raise UsageError(
                    f"--out {out} would overwrite the input {item.image}; choose another folder"
                )


def write_pts(path: Path, keypoints: np.ndarray) -> None:
    """An iBUG ``.pts`` file (version 1, 68 points, ``x y`` per line, 1-based image pixels)."""
    lines = ["version: 1", f"n_points: {len(keypoints)}", "{"]
    lines += [f"{x + LABEL_ORIGIN:.2f} {y + LABEL_ORIGIN:.2f}" for x, y in keypoints]
    lines.append("}")
    with atomic_write(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def draw_overlay(image: np.ndarray, record: dict[str, Any], boxes: bool = False) -> Image.Image:
    """The annotated copy: keypoints (and optionally boxes with scores), sized to the image."""
    from facemark import draw

    faces = record["faces"]
    picture = draw.to_pil(image)
    if faces and boxes:
        picture = draw.draw_boxes(picture, [f["box"] for f in faces], [f["score"] for f in faces])
    if faces:
        picture = draw.draw_keypoints(picture, np.array([f["keypoints"] for f in faces]))
    return picture


#: ``os.write``, named so a test can fill the disk.
_os_write = os.write


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """An OS error while writing ``path`` as one line that names the file."""
    try:
        yield
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from None


def _save_image(picture: Image.Image, path: Path) -> None:
    fmt = _save_format(path) or "PNG"
    with atomic_write(path, "wb") as fh:
        picture.save(fh, format=fmt, **_SAVE_OPTIONS.get(fmt, {}))


def _csv_name(image: str, index: int, count: int) -> str:
    return image if count == 1 else f"{image}#{index}"


def write_csv(jsonl: Path, csv_path: Path) -> int:
    """The dataset CSV (``name,x0,y0,...,x67,y67``, one row per face) from a JSONL file.

    Built from the JSONL rather than alongside it so it always agrees with it, also after a
    resumed run.  Coordinates are written in the dataset's 1-based convention, so the file
    reads back with :func:`facemark.data.read_keypoints_csv`.  Returns the number of rows.
    """
    rows = 0
    # Undecodable file names (lone surrogates) as \\u escapes, exactly as in the JSONL.
    with atomic_write(csv_path, "w", errors="backslashreplace") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([""] + [str(i) for i in range(2 * NUM_POINTS)])
        for record in read_jsonl(jsonl):
            faces = record.get("faces") or []
            for k, face in enumerate(faces):
                coords = [f"{v + LABEL_ORIGIN:.2f}" for point in face["keypoints"] for v in point]
                writer.writerow([_csv_name(record["image"], k, len(faces))] + coords)
                rows += 1
    return rows


def _image_key(image: str) -> str:
    """Which image a record is about: its path resolved from here (runs may name one image
    differently: ``photos/a.jpg``, ``./photos/a.jpg``)."""
    return os.path.realpath(image)


def merge_records(path: Path) -> tuple[int, int]:
    """Keep one record per image in ``path``, the newest (the last line), earlier ones in
    their order; rewritten atomically only when an image was annotated again.

    Returns ``(earlier records kept, earlier records replaced)`` where "earlier" means lines
    before the first line of this run, i.e. what a re-run into the folder found there.
    """
    if not path.is_file():
        return 0, 0
    with open(path, encoding="utf-8") as old:
        lines = [line for line in old if line.strip()]
    keys = [_record_key(line) for line in lines]  # None: not a record (a line cut short)
    last = {key: index for index, key in enumerate(keys) if key is not None}
    replaced = sum(key is not None for key in keys) - len(last)
    if replaced:
        keep = set(last.values())
        with atomic_write(path, "w") as fh:
            for index, line in enumerate(lines):
                if index in keep:
                    fh.write(line if line.endswith("\n") else line + "\n")
    return len(last), replaced


def _record_key(line: str) -> str | None:
    """Which image a JSONL line records (None for a line that is no record)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    image = record.get("image") if isinstance(record, dict) else None
    return _image_key(image) if isinstance(image, str) else None


def recorded_images(out: Path) -> set[str]:
    """Images already in any ``annotations*.jsonl`` of ``out``: as recorded and resolved."""
    done: set[str] = set()
    for path in sorted(out.glob(f"{JSONL_NAME}*.jsonl")):
        for record in read_jsonl(path):
            done.add(record["image"])
            done.add(os.path.realpath(record["image"]))
    return done


def _cut_partial_line(path: Path, block: int = 1 << 16) -> None:
    """Drop a last line without its newline (a run killed mid-write) before appending.

    Reads backwards from the end, so a multi-gigabyte file costs one small read.
    """
    if not path.is_file():
        return
    with open(path, "rb+") as fh:
        end = fh.seek(0, os.SEEK_END)
        pos = end
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            chunk = fh.read(pos - start)
            if pos == end and chunk.endswith(b"\n"):
                return
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                fh.truncate(start + newline + 1)
                return
            pos = start
        fh.truncate(0)


def mark_output(out: Path) -> None:
    """Mark ``out`` as an annotate output folder (:data:`files.OUTPUT_MARKER`): scans skip
    it, so annotated copies (points drawn on them) are never taken for photos."""
    from facemark import __version__, files

    files.mark_output(out, __version__)


class _Writer:
    """Writes each image's files in a background thread, then its JSONL line, in order."""

    def __init__(self, layout: Layout, config: AnnotateConfig) -> None:
        self.layout, self.config = layout, config
        layout.out.mkdir(parents=True, exist_ok=True)
        mark_output(layout.out)
        # Earlier records are kept: new lines go after them, and merge_records() drops the
        # ones an image's newer record replaces when the run ends.
        _cut_partial_line(layout.jsonl)
        # Unbuffered: a line is either on disk or cut off again (see _drain), never half in a
        # buffer that a later flush would write after the cut.
        self.fd = os.open(layout.jsonl, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        self.failed = False
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facemark-write")
        self.pending: deque[tuple[dict[str, Any], Future]] = deque()

    def submit(
        self, item: InputImage, photo: Photo, record: dict[str, Any], max_pending: int
    ) -> None:
        self.pending.append((record, self.pool.submit(self._files, item, photo, record)))
        self._drain(keep=max_pending)

    def _files(self, item: InputImage, photo: Photo, record: dict[str, Any]) -> None:
        if self.config.draw:
            path = self.layout.overlay(item)
            with _writing(path):
                _save_image(draw_overlay(photo.array(), record, self.config.boxes), path)
        if self.config.pts:
            faces = record["faces"]
            for k, face in enumerate(faces):
                path = self.layout.pts(item, k, len(faces))
                with _writing(path):
                    write_pts(path, face["keypoints"])

    def _drain(self, keep: int) -> None:
        """Append the lines of finished images; wait while more than ``keep`` are in flight.

        A line that cannot be written whole (a full disk) is cut off again, so the file
        holds only complete records and ``--skip-existing`` can resume from it.
        """
        lines = []
        while self.pending and (len(self.pending) > keep or self.pending[0][1].done()):
            record, future = self.pending.popleft()
            future.result()  # a write error (disk full) is fatal and surfaces here
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        if not lines:
            return
        # Lone surrogates (undecodable file names) become JSON \\u escapes and so round-trip.
        data = "".join(lines).encode("utf-8", errors="backslashreplace")
        with _writing(self.layout.jsonl):
            good = os.lseek(self.fd, 0, os.SEEK_END)
            try:
                while data:
                    data = data[_os_write(self.fd, data) :]
            except OSError:
                self.failed = True
                with contextlib.suppress(OSError):
                    os.ftruncate(self.fd, good)
                raise

    def close(self) -> None:
        """Finish what is in flight; on an error, keep the lines of what was fully written
        (after a failed write, nothing more is appended: the file ends at a whole line)."""
        try:
            if not self.failed:
                self._drain(keep=0)
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
            os.close(self.fd)
