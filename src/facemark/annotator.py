"""``annotate``: photos in; every face's box and 68 keypoints out.

``facemark.annotate(inputs, out=None, ...)`` returns one plain dict per image::

    {"image": "photos/a.jpg", "width": 640, "height": 480,
     "faces": [{"box": [x0, y0, x1, y1], "score": 0.98,
                "keypoints": [[x, y], ... 68], "confidence": [c0, ... c67],
                "low_confidence": False, "pose": {...}}]}

in pixels of the image as a viewer shows it (EXIF orientation applied), coordinates rounded to
two decimals.  With ``out`` it also writes ``annotations.jsonl`` (one such line per image) and,
as asked, annotated copies, a dataset-style CSV, a COCO keypoints JSON and iBUG ``.pts``
files.  See docs/annotate.md.

How a run is organised, and why:

* Inputs are collected and de-duplicated first, and every output name is planned from the
  whole collection (paths relative to the inputs' common folder), so shards of one collection
  never collide and an output can be checked against every input before anything is written.
* Images are decoded once, in background threads a few batches ahead of the models; the
  detector runs on a batch of images, the landmark model on all faces of that batch.
* Annotated copies and ``.pts`` files are written by a background thread; an image's JSONL
  line is appended only after its files exist, so ``--skip-existing`` (which trusts the JSONL)
  can resume an interrupted run without leaving holes.
* A file that cannot be read is a warning and a count, never the end of the run.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import glob
import hashlib
import json
import os
import time
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from facemark.confidence import check_minimum
from facemark.detectors.base import Detector, DetectorConfig
from facemark.errors import DataError, UsageError, option
from facemark.files import OUTPUT_MARKER, atomic_write, is_output_folder, read_jsonl
from facemark.images import Photo, read_failure
from facemark.results import ImageResult
from facemark.shape import LABEL_ORIGIN, NUM_POINTS
from facemark.video import VIDEO_SUFFIXES, VideoConfig, has_video_suffix

if TYPE_CHECKING:  # the pipeline imports torch: loaded when a run starts, not with the CLI
    from facemark.pipeline import FaceMarker


#: What a folder scan picks up (case-insensitive).  Files named explicitly are tried whatever
#: their suffix: Pillow recognises formats by content.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

JSONL_NAME = "annotations"
DEFAULT_OUT = "facemark-out"

#: Quality of annotated JPEG/WebP copies: high enough that the thin keypoint dots stay crisp.
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {"JPEG": {"quality": 92}, "WEBP": {"quality": 90}}


class AnnotateWarning(UserWarning):
    """An input that was skipped (unreadable, truncated, missing); the run went on."""


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class InputImage:
    """One image to annotate and where its outputs go.

    ``image`` is the path as the user gave it (or the given folder joined with the file's
    path inside it): it is what the JSONL records.  ``rel`` is the path relative to the
    common folder of all inputs, mirrored under ``--out``; ``stem`` names its ``.pts`` files.
    """

    path: Path
    image: str | None
    real: str
    rel: PurePath = PurePath()
    stem: str = ""
    #: an image given in memory (bytes, a file object, a Pillow image or an array): decoded
    #: from here instead of ``path``
    data: Any = None


def has_image_suffix(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _scan_folder(
    folder: Path, recursive: bool, exclude: str | None, outputs: list[Path] | None = None
) -> list[Path]:
    """Image files in ``folder`` (sorted), skipping hidden entries, the ``exclude`` folder and
    facemark output folders (their images are added to ``outputs``)."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        if OUTPUT_MARKER in files:
            if outputs is not None:
                outputs += [
                    Path(r) / f
                    for r, _, fs in os.walk(root_path)
                    for f in fs
                    if has_image_suffix(f) or has_video_suffix(f)
                ]
            dirs[:] = []
            continue
        dirs[:] = sorted(
            d
            for d in dirs
            if recursive and not d.startswith(".") and not _inside(root_path / d, exclude)
        )
        found += [
            root_path / f
            for f in sorted(files)
            if not f.startswith(".") and (has_image_suffix(f) or has_video_suffix(f))
        ]
    return found


def _inside(path: str | os.PathLike, folder: str | None) -> bool:
    """``path`` is ``folder`` or lies under it (``folder`` already a realpath)."""
    if folder is None:
        return False
    real = os.path.realpath(path)
    return real == folder or real.startswith(folder.rstrip(os.sep) + os.sep)


def collect_inputs(
    inputs: Iterable[str | os.PathLike],
    recursive: bool = False,
    exclude: str | os.PathLike | None = None,
    outputs: list[Path] | None = None,
) -> tuple[list[InputImage], list[tuple[str, str]]]:
    """Expand files, folders and glob patterns into a de-duplicated list of images.

    Returns the images (in the order given, folders sorted) with their output names planned,
    and ``(input, reason)`` for each input that named nothing usable.  ``exclude`` (the
    output folder) is never scanned, nor is any facemark output folder (annotated copies
    found there are added to ``outputs``), so annotating ``.`` twice does not annotate the
    copies, wherever the earlier output went.
    """
    exclude_real = os.path.realpath(exclude) if exclude is not None else None
    found: list[tuple[Path, str]] = []
    problems: list[tuple[str, str]] = []

    def add_folder(folder: Path, given: str) -> None:
        if is_output_folder(folder):
            problems.append((given, "a facemark output folder (its images are annotated copies)"))
            return
        files = _scan_folder(folder, recursive, exclude_real, outputs)
        if not files:
            hint = "" if recursive else " (add --recursive to search its subfolders)"
            problems.append((given, f"no images in this folder{hint}"))
        found.extend((f, os.path.join(given, f.relative_to(folder).as_posix())) for f in files)

    for raw in inputs:
        given = os.fspath(raw)
        path = Path(given).expanduser()
        if path.is_dir():
            add_folder(path, given)
        elif path.is_file():
            found.append((path, given))
        elif glob.has_magic(given):
            matches = sorted(glob.glob(os.path.expanduser(given), recursive=True))
            if not matches:
                problems.append((given, "no file matches this pattern"))
            for match in matches:
                if _inside(match, exclude_real) or is_output_folder(os.path.dirname(match)):
                    continue  # '**/*.jpg' must not pick up earlier annotated copies
                if Path(match).is_dir():
                    add_folder(Path(match), match)
                elif (has_image_suffix(match) or has_video_suffix(match)) and not Path(
                    match
                ).name.startswith("."):
                    found.append((Path(match), match))
        else:
            problems.append((given, "no such file or folder"))

    seen: set[str] = set()
    images: list[InputImage] = []
    for path, given in found:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            images.append(InputImage(path=path, image=given, real=real))
    return plan_output_names(images), problems


def plan_output_names(images: Sequence[InputImage]) -> list[InputImage]:
    """Give each image a unique mirrored path (``rel``) and a unique ``.pts`` stem.

    Paths are taken relative to the deepest folder holding all inputs, so one folder of
    photos maps to ``out/<name>`` while two ``a.jpg`` from different folders stay apart.
    """
    if not images:
        return []
    absolute = [Path(os.path.abspath(im.path)) for im in images]
    try:
        common = Path(os.path.commonpath([str(p.parent) for p in absolute]))
        rels = [p.relative_to(common) for p in absolute]
    except ValueError:  # different drives (Windows): keep the drive as the first folder
        rels = [PurePath(p.drive.rstrip(":\\/") or "root", *p.parts[1:]) for p in absolute]
    # a.jpg and a.png in one folder would both want a.pts: those keep their suffix in the stem
    stems = Counter((rel.parent, rel.stem.lower()) for rel in rels)
    return [
        replace(
            im, rel=rel, stem=rel.stem if stems[(rel.parent, rel.stem.lower())] == 1 else rel.name
        )
        for im, rel in zip(images, rels, strict=True)
    ]


def parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"2/4"`` -> ``(2, 4)``: the second of four shards (1-based)."""
    if shard is None or shard == "":
        return None
    if isinstance(shard, str):
        index, sep, count = shard.partition("/")
        try:
            value = (int(index), int(count))
        except ValueError:
            value = None
        if not sep or value is None:
            raise UsageError(f"{option('shard')} must look like i/n, e.g. 1/4 (got '{shard}')")
    else:
        value = (int(shard[0]), int(shard[1]))
    index, count = value
    if count < 1 or not 1 <= index <= count:
        raise UsageError(f"--shard {index}/{count}: i must be between 1 and n")
    return index, count


def shard_of(item: InputImage, count: int) -> int:
    """The 1-based shard an image belongs to: a hash of its mirrored path.

    Hashing (rather than counting) keeps an image in the same shard when files are added to
    the collection, and does not depend on where the collection is mounted.
    """
    digest = hashlib.sha1(item.rel.as_posix().encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def select_shard(items: Sequence[InputImage], shard: tuple[int, int] | None) -> list[InputImage]:
    if shard is None:
        return list(items)
    index, count = shard
    return [item for item in items if shard_of(item, count) == index]


# --------------------------------------------------------------------------- decoding


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity: a worker given one CPU share of a big
    machine sees 1, where ``os.cpu_count()`` says the machine's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def _decoded(
    items: Iterable[InputImage], lookahead: int, threads: int | None = None
) -> Iterator[tuple[InputImage, Photo | str]]:
    """Photos decoded in background threads, yielded in order: the photo or why it failed."""
    from facemark.pipeline import as_photo

    def read(item: InputImage) -> Photo | str:
        try:
            return Photo.open(item.path) if item.data is None else as_photo(item.data)
        except (DataError, UsageError) as exc:
            return read_failure(exc)

    pool = ThreadPoolExecutor(
        max_workers=min(4, threads or available_cpus()), thread_name_prefix="facemark-read"
    )
    pending: deque[tuple[InputImage, Future]] = deque()
    source = iter(items)
    try:
        for item in source:
            pending.append((item, pool.submit(read, item)))
            if len(pending) >= lookahead:
                done_item, future = pending.popleft()
                yield done_item, future.result()
        while pending:
            done_item, future = pending.popleft()
            yield done_item, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class AnnotateConfig:
    """Every option of an annotate run, declared once (``facemark annotate --help`` shows
    these defaults).  Detector options (threshold, min_face, max_faces, det_size) are in
    ``detection``."""

    #: Landmark model: ``default``, a run, a checkpoint, an https URL, or a loaded Landmarker.
    model: Any = "default"
    #: Face detector: ``default``, ``yunet_s``, ``facemark``, ``boxes:FILE``, a run, a
    #: checkpoint, an https URL, or a loaded Detector.
    detector: Any = "default"
    #: cpu, cuda, cuda:N or auto.
    device: str = "cpu"
    #: Also search the folders' subfolders.
    recursive: bool = False
    #: Images per network call.
    batch_size: int = 8
    #: Average with the mirrored image's keypoints (slower, a bit more accurate).
    flip: bool = False
    #: Write an annotated copy of each image.
    draw: bool = True
    #: Also draw each face's box and score on the copies.
    boxes: bool = False
    #: Also write annotations.csv (dataset format, one row per face).
    csv: bool = False
    #: Also write annotations.coco.json (COCO keypoints, for labelling tools).
    coco: bool = False
    #: Also write annotations.parquet (one row per image, faces nested; needs pyarrow).
    parquet: bool = False
    #: Also write one iBUG .pts file per face.
    pts: bool = False
    #: Resume: skip images already in the output's annotations*.jsonl.
    skip_existing: bool = False
    #: Process only shard I of N (1-based) of the inputs, e.g. "2/4".
    shard: str | tuple[int, int] | None = None
    #: Drop the faces whose mean point confidence is below this (None: keep them all; each
    #: face's ``low_confidence`` flag uses facemark.confidence.LOW_CONFIDENCE).
    min_confidence: float | None = None
    detection: DetectorConfig = field(default_factory=DetectorConfig)
    #: Options of video inputs (stride, span, tracking, smoothing): see facemark.video.
    video: VideoConfig = field(default_factory=VideoConfig)
    #: CPU threads: torch's (process-wide) and at most this many decoding threads; None
    #: leaves torch's own choice and decodes with up to 4 threads of the CPUs this process
    #: may use (:func:`available_cpus`).
    threads: int | None = None

    def check(self) -> None:
        self.detection.check()
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"{option('threads')} must be >= 1 (got {self.threads})")
        self.video.check()
        if self.batch_size < 1:
            raise UsageError(f"{option('batch_size')} must be >= 1 (got {self.batch_size})")
        check_minimum(self.min_confidence)
        parse_shard(self.shard)

    @classmethod
    def from_options(cls, config: AnnotateConfig | None = None, **options: Any) -> AnnotateConfig:
        """``config`` (or the defaults) with ``options`` replaced: any field of this class or
        of :class:`DetectorConfig`; an unknown name is a UsageError."""
        config = config or cls()
        own = {f.name for f in fields(cls)}
        det = {f.name for f in fields(DetectorConfig)}
        vid = {f.name for f in fields(VideoConfig)}
        unknown = sorted(set(options) - own - det - vid)
        if unknown:
            raise UsageError(f"unknown annotate option(s): {', '.join(unknown)}")
        detection = replace(config.detection, **{k: v for k, v in options.items() if k in det})
        video = replace(config.video, **{k: v for k, v in options.items() if k in vid})
        return replace(
            config,
            detection=detection,
            video=video,
            **{k: v for k, v in options.items() if k in own},
        )


def load_marker(config: AnnotateConfig) -> FaceMarker:
    """The FaceMarker of a run's settings (threads applied); loaded ones are reused across
    calls (see :func:`_cached`), so a batch engine calling per block loads them once."""
    from facemark.pipeline import FaceMarker

    if config.threads is not None:
        import torch

        torch.set_num_threads(config.threads)

    specs = (config.detector, config.model)
    if all(isinstance(s, (str, os.PathLike)) for s in specs):
        keys = tuple(
            _file_key(s, task) for s, task in zip(specs, ("detector", "landmarks"), strict=True)
        )
        return _cached(keys, config.device, config.flip, config.detection)
    # a loaded detector keeps its own options unless the run sets others
    default = config.detection == DetectorConfig()
    options = {} if default and isinstance(config.detector, Detector) else asdict(config.detection)
    return FaceMarker(config.detector, config.model, config.device, config.flip, **options)


def _file_key(spec: str | os.PathLike, task: str) -> tuple[str, int]:
    """(file, mtime) a spec resolves to: a file that changed since (a run that saved a
    better best.pt) is loaded again."""
    from facemark import hub
    from facemark.detectors.boxes import PREFIX

    text = os.fspath(spec)
    if task == "detector" and (text.startswith(PREFIX) or text.lower().endswith((".json", ".csv"))):
        path = Path(text.removeprefix(PREFIX))
        return f"{PREFIX}{path.resolve()}", path.stat().st_mtime_ns if path.is_file() else 0
    path = hub.resolve_model(spec, task)
    return str(path.resolve()), path.stat().st_mtime_ns


@functools.lru_cache(maxsize=4)
def _cached(
    keys: tuple[tuple[str, int], tuple[str, int]],
    device: str,
    flip: bool,
    detection: DetectorConfig,
) -> FaceMarker:
    from facemark.pipeline import FaceMarker

    (detector, _), (model, _) = keys
    return FaceMarker(detector, Path(model), device, flip, **asdict(detection))


# --------------------------------------------------------------------------- outputs


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
    reads back with :func:`facemark.dataset.read_keypoints_csv`.  Returns the number of rows.
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
    last: dict[str, int] = {}
    count = 0
    for index, record in enumerate(read_jsonl(path)):
        last[_image_key(str(record.get("image", "")))] = index
        count = index + 1
    replaced = count - len(last)
    if replaced:
        keep = set(last.values())
        with atomic_write(path, "w") as fh:
            with open(path, encoding="utf-8") as old:
                for index, line in enumerate(line for line in old if line.strip()):
                    if index in keep:
                        fh.write(line if line.endswith("\n") else line + "\n")
    return len(last), replaced


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


# --------------------------------------------------------------------------- the run


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

    def as_dict(self) -> dict[str, Any]:
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


def run(
    inputs: Any,
    out: str | os.PathLike | None = None,
    config: AnnotateConfig | None = None,
    *,
    on_record: Callable[[ImageResult], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    progress: Any = None,
    strict: bool = True,
) -> Summary:
    """Annotate ``inputs``; the engine behind :func:`annotate` and ``facemark annotate``.

    ``inputs``: a file, folder or glob pattern, or a list mixing those with images in memory
    (see :func:`annotate`).  Results stream to ``on_record`` (and to ``out``), so a run over
    a million photos needs no more memory than a few batches; an input that cannot be read
    is an :class:`ImageResult` with ``error`` set (never written to the JSONL).
    ``progress`` is a rich ``Progress`` (or None).  Raises :class:`UsageError` for bad
    options; with ``strict`` also when there is nothing to annotate, and
    :class:`DataError` when not one image could be read.
    """
    start = time.perf_counter()
    config = config or AnnotateConfig()
    inputs = [inputs] if _is_single(inputs) else list(inputs)
    config.check()
    shard_spec = parse_shard(config.shard)
    warn = _Deferred(
        on_warning or (lambda message: warnings.warn(message, AnnotateWarning, stacklevel=4))
    )

    def recorded(record: ImageResult) -> None:
        warn.release()  # an image went through: the held-back warnings are news now
        if on_record is not None:
            on_record(record)

    def failed(image: str | None, reason: str, message: str) -> None:
        warn(message)
        summary.failures.append((str(image), reason))
        if on_record is not None:
            on_record(ImageResult(image, error=reason))

    out_dir = Path(out).expanduser() if out is not None else None
    if out_dir is None and (
        config.csv or config.coco or config.parquet or config.pts or config.skip_existing
    ):
        raise UsageError(
            "csv, coco, parquet, pts and skip_existing need an output folder (out=...)"
        )
    if config.parquet:
        from facemark.results import require_pyarrow

        require_pyarrow()

    copies: list[Path] = []
    paths = [raw for raw in inputs if isinstance(raw, (str, os.PathLike))]
    items, problems = collect_inputs(
        paths, config.recursive, exclude=_own_output(out_dir), outputs=copies
    )
    items += _in_memory([raw for raw in inputs if not isinstance(raw, (str, os.PathLike))])
    summary = Summary(out=out_dir, shard=shard_spec, found=len(items), outputs_skipped=len(copies))
    if not items and strict:
        reasons = "; ".join(f"{given}: {reason}" for given, reason in problems[:3])
        raise UsageError(f"no images to annotate ({reasons or 'no inputs given'})")
    for given, reason in problems:
        if reason == "no such file or folder":
            failed(given, reason, f"{given}: {reason}")
        else:
            warn(f"{given}: {reason}")
    if out_dir is not None:
        check_output(out_dir, [i for i in items if i.data is None], paths, config.draw)
    todo = select_shard(items, shard_spec)
    layout = (
        Layout(out_dir, f".shard-{shard_spec[0]}-of-{shard_spec[1]}" if shard_spec else "")
        if out_dir
        else None
    )
    # records of an earlier run that this one may annotate again (with --skip-existing it
    # annotates only images they lack): merged once this run is done
    earlier = (
        layout is not None
        and not config.skip_existing
        and layout.jsonl.is_file()
        and layout.jsonl.stat().st_size > 0
    )
    if config.skip_existing and layout is not None and out_dir.is_dir():
        done = recorded_images(out_dir)
        kept = [item for item in todo if item.image not in done and item.real not in done]
        summary.skipped = len(todo) - len(kept)
        todo = kept
    videos = [item for item in todo if _is_video(item)]
    if videos:
        from facemark import video

        video.require_av()  # without PyAV: one line naming the install, before any work
        ignored = [
            flag
            for flag, on in (
                ("--pts", config.pts),
                ("--coco", config.coco),
                ("--parquet", config.parquet),
            )
            if on
        ]
        if ignored:
            warn(
                f"{', '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} for photos; "
                "each video gets its own "
                "<video>.jsonl (and <video>.csv with --csv)"
            )
        todo = [item for item in todo if item not in videos]
        if config.skip_existing and out_dir is not None:
            kept = [v for v in videos if not video.output_paths(out_dir, v.rel)[0].is_file()]
            summary.skipped += len(videos) - len(kept)
            videos = kept

    if todo or videos:
        loading = time.perf_counter()
        marker = load_marker(config)
        summary.load_seconds = time.perf_counter() - loading
        summary.detector = marker.detector.describe() if marker.detector else None
        open_writer = functools.partial(_Writer, layout, config) if layout else None
        with progress if progress is not None else contextlib.nullcontext():
            if todo:
                _process(
                    todo,
                    marker,
                    config,
                    open_writer,
                    summary,
                    lambda item, why: failed(item.image, why, f"skipped {item.image}: {why}"),
                    recorded,
                    progress,
                )
            if videos:
                _process_videos(
                    videos, marker, config, out_dir, summary, warn, failed, recorded, progress
                )
    if earlier:
        kept, summary.replaced = merge_records(layout.jsonl)
        summary.earlier_kept = max(kept - summary.images, 0)
    if config.csv and layout is not None and layout.jsonl.is_file():
        write_csv(layout.jsonl, layout.csv)
    if config.coco and layout is not None and layout.jsonl.is_file():
        from facemark.coco import write_coco

        write_coco(layout.jsonl, layout.coco)
    if config.parquet and layout is not None and layout.jsonl.is_file():
        from facemark.results import write_parquet

        write_parquet(read_jsonl(layout.jsonl), layout.parquet)
    summary.seconds = time.perf_counter() - start
    nothing = summary.images == 0 and summary.videos == 0 and not summary.skipped
    if strict and nothing and summary.failures:
        first, reason = summary.failures[0]
        more = f"{len(summary.failures)} failed; first: " if len(summary.failures) > 1 else ""
        raise DataError(f"no image could be read ({more}{first}: {reason})")
    warn.release()
    return summary


def _is_single(inputs: Any) -> bool:
    """One input rather than a list of them (a path, bytes, a file object, an image)."""
    from PIL import Image as PILImage

    return isinstance(
        inputs, (str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, PILImage.Image)
    ) or hasattr(inputs, "read")


def _in_memory(images: Sequence[Any]) -> list[InputImage]:
    """Images given in memory, named by their file name where they have one; their outputs
    (annotated copies, .pts) are ``memory/<n>.png`` under the output folder."""
    from facemark.pipeline import source_name

    items = []
    for k, data in enumerate(images, 1):
        name = source_name(data)
        rel = PurePath("memory", f"{k:06d}.png")
        items.append(InputImage(Path(name or "-"), name, "", rel, rel.stem, data=data))
    return items


class _Deferred:
    """Warnings held back until the first image is annotated: when none can be read, the
    run's one error line says it all instead of following a warning that said the same."""

    def __init__(self, warn: Callable[[str], None]) -> None:
        self.warn, self.held, self.open = warn, [], False

    def __call__(self, message: str) -> None:
        if self.open:
            self.warn(message)
        else:
            self.held.append(message)

    def release(self) -> None:
        self.open = True
        held, self.held = self.held, []
        for message in held:
            self.warn(message)


def _process(
    todo: Sequence[InputImage],
    marker: FaceMarker,
    config: AnnotateConfig,
    open_writer: Callable[[], _Writer] | None,
    summary: Summary,
    failed: Callable[[InputImage, str], None],
    on_record: Callable[[ImageResult], None] | None,
    progress: Any,
) -> None:
    """The loop over batches: decode, find faces, hand records to the writer and caller.

    The output file is opened at the first readable batch, so a run over unreadable files
    fails fast and leaves an earlier annotations.jsonl alone.
    """
    writer: _Writer | None = None
    task = progress.add_task("Annotating", total=len(todo)) if progress is not None else None
    size = config.batch_size
    try:
        decoded = _decoded(todo, size, config.threads)
        for batch in _batches(decoded, size, failed, progress, task):
            if writer is None and open_writer is not None:
                writer = open_writer()
            photos = [photo for _, photo in batch]
            names = [item.image for item, _ in batch]
            found, rejected, dropped = marker.mark(photos, names, config.min_confidence)
            summary.rejected += sum(rejected)
            summary.below_min_confidence += sum(dropped)
            for (item, photo), faces in zip(batch, found, strict=True):
                result = ImageResult(
                    item.image, photo.width, photo.height, tuple(faces), summary.detector
                )
                summary.images += 1
                summary.faces += len(faces)
                if writer is not None:
                    writer.submit(item, photo, result.to_dict(), max_pending=size)
                if on_record is not None:
                    on_record(result)
            if progress is not None:
                progress.advance(task, len(batch))
    finally:
        if writer is not None:
            writer.close()


def _is_video(item: InputImage) -> bool:
    """A video by suffix; a file without an image suffix is probed (see facemark.video)."""
    if item.data is not None:  # videos are read from files
        return False
    if has_video_suffix(item.path.name):
        return True
    if has_image_suffix(item.path.name):
        return False
    from facemark.video import is_video

    return is_video(item.path)


def _process_videos(
    videos: Sequence[InputImage],
    marker: FaceMarker,
    config: AnnotateConfig,
    out: Path | None,
    summary: Summary,
    warn: Callable[[str], None],
    failed: Callable[[str | None, str, str], None],
    on_record: Callable[[ImageResult], None] | None,
    progress: Any = None,
) -> None:
    """Each video through :func:`facemark.video.annotate_video`: a JSONL (and a CSV) per
    video; an unreadable video is a warning and a failure, a cut one keeps its frames."""
    from facemark import video

    timing = video.Timing()
    for item in videos:
        callback = on_record
        if progress is not None:
            total = video.frames_to_read(item.path, config.video)
            task = progress.add_task(f"Video {item.path.name}", total=total, unit="frames")

            def callback(record: ImageResult, task: Any = task) -> None:
                progress.advance(task)
                if on_record is not None:
                    on_record(record)

        jsonl = csv_path = overlay = None
        if out is not None:
            jsonl, csv_path = video.output_paths(out, item.rel)
            overlay = video.overlay_path(out, item.rel, item.stem) if config.draw else None
        try:
            result = video.annotate_video(
                item.path,
                item.image,
                marker,
                config.video,
                jsonl=jsonl,
                csv_path=csv_path if config.csv else None,
                overlay=overlay,
                boxes=config.boxes,
                on_record=callback,
                min_confidence=config.min_confidence,
            )
        except DataError as exc:
            reason = read_failure(exc).removeprefix(f"cannot read {item.path}: ")
            failed(item.image, reason, f"skipped {item.image}: {reason}")
            continue
        if result.cut:
            warn(f"{item.image}: {result.cut}; the {result.frames} frames before were kept")
        if out is not None:
            mark_output(out)
        summary.videos += 1
        summary.frames += result.frames
        summary.faces += result.faces
        summary.below_min_confidence += result.dropped
        timing.add(result.timing)
    if timing.frames:
        summary.video_timing = timing.as_dict()


def _batches(
    decoded: Iterator[tuple[InputImage, Photo | str]],
    size: int,
    failed: Callable[[InputImage, str], None],
    progress: Any,
    task: Any,
) -> Iterator[list[tuple[InputImage, Photo]]]:
    """Group readable images into batches; hand the unreadable ones to ``failed``."""
    batch: list[tuple[InputImage, Photo]] = []
    for item, photo in decoded:
        if isinstance(photo, str):
            failed(item, photo)
            if progress is not None:
                progress.advance(task)
            continue
        batch.append((item, photo))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


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


def annotate(
    inputs: Any,
    out: str | os.PathLike | None = None,
    config: AnnotateConfig | None = None,
    *,
    progress: bool = False,
    **options: Any,
) -> list[ImageResult]:
    """Find every face in ``inputs`` and place its 68 keypoints: one result per image.

    ``inputs``: a file, folder or glob pattern, the bytes of an image file, a binary file
    object, a Pillow image, an RGB/gray uint8 array, or a list mixing them (files found in
    folders and patterns first, in order, then the images given in memory, in order).
    Every form decodes the same pixels alike, so it finds the same faces.  ``out``: a folder
    for ``annotations.jsonl`` and (``draw``) annotated copies, ``csv``, ``coco``,
    ``parquet`` and ``pts`` files; None writes nothing.  Options: an
    :class:`AnnotateConfig`, and/or its fields (and those of
    :class:`~facemark.detectors.DetectorConfig`) as keywords, e.g.
    ``annotate("photos/", threshold=0.6, detector="yunet_s")``.

    Nothing a single input can be wrong with raises: an unreadable file, a missing path or
    a non-image gets a result with ``error`` set (and an :class:`AnnotateWarning`).  With
    ``skip_existing`` the images an earlier run did are not returned again.  ``progress``
    shows a bar on stderr.  ``[r.to_dict() for r in results]`` are annotations.jsonl lines.
    """
    results: list[ImageResult] = []
    run(
        inputs,
        out,
        AnnotateConfig.from_options(config, **options),
        on_record=results.append,
        progress=progress_bar() if progress else None,
        strict=False,
    )
    return results
