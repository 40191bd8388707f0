"""Labelled faces in any of the 68-point formats facemark reads, detected from the content.

``--data PATH`` of ``train``, ``evaluate`` and ``preview`` accepts:

* ``udacity``: a dataset root (``training/``, ``test/`` and their two CSVs), read by
  :mod:`facemark.dataset` with its identity splits, exactly as without this module;
* ``csv``: one CSV in the dataset's format (``name,x0,y0,...``, 1-based); its images are in
  the CSV's folder unless ``images`` says otherwise;
* ``pts``: a folder (searched recursively) of images with iBUG ``.pts`` files beside them
  (``name.pts`` next to ``name.jpg``; 1-based like the 300-W originals).  facemark's own
  ``name_0.pts``, ``name_1.pts`` (several faces of ``name.jpg``) are understood too;
* ``jsonl``: facemark's ``annotations.jsonl`` as ``facemark annotate`` writes it (0-based),
  or a folder holding ``annotations*.jsonl``; every face of a record is one sample;
* ``coco``: a COCO keypoints JSON with the 68-point category (see :mod:`facemark.coco`),
  or a folder holding one.

A folder is told apart by what it holds (the Udacity CSVs, then a JSONL of records, then a
COCO JSON, then ``.pts`` files), a file by its first bytes, never by its name.  Unusable items
(a ``.pts`` with 67 points, NaN, points outside the image, an image without labels, a line
that is not JSON) are skipped and reported as one warning line with a count per reason, like
:mod:`facemark.dataset` does for CSV rows; input that holds no usable face at all is a
:class:`~facemark.errors.DataError`.

Every face is a sample; a :class:`FaceSet` name is the image path relative to the data's
folder, with ``#k`` appended for the k-th face of an image with several.  Splits are by image
file (:func:`split_faces`), so the faces of one photo never straddle train and val.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facemark import coco, dataset
from facemark.config import SPLIT
from facemark.dataset import FaceSet, SkippedRow
from facemark.errors import DataError, UsageError
from facemark.files import is_output_folder, output_run_dirs
from facemark.shape import LABEL_ORIGIN, NUM_POINTS

log = logging.getLogger(__name__)

FORMATS = ("udacity", "csv", "pts", "jsonl", "coco")
#: Readable names, for messages and the CLI.
FORMAT_NAMES = {
    "udacity": "Udacity dataset root",
    "csv": "keypoints CSV",
    "pts": "folder of .pts files",
    "jsonl": "facemark annotations JSONL",
    "coco": "COCO keypoints JSON",
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

_EXPECTED = (
    "expected a folder of images with .pts files, a Udacity-style dataset root, a keypoints "
    "CSV, facemark's annotations.jsonl or a COCO keypoints JSON with 68 points"
)


@dataclass
class Label:
    """One labelled face before its image is read."""

    name: str  #: unique sample name (image path relative to the data, ``#k`` for face k)
    image: Path  #: the image file
    keypoints: np.ndarray  #: (68, 2) float32, 0-based
    key: str = ""  #: the file the face belongs to (splits keep a file's faces together)


@dataclass
class Labels:
    labels: list[Label]
    skipped: list[SkippedRow] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  #: the label files read (fingerprint)


# --------------------------------------------------------------------------- detection


def _is_record(line: str) -> bool:
    try:
        value = json.loads(line)
    except ValueError:
        return False
    return isinstance(value, dict) and isinstance(value.get("image"), str)


def _file_format(path: Path) -> str | None:
    """The format of one label file from its content, or None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    text = head.decode("utf-8-sig", errors="replace").lstrip()
    if text.startswith("{"):
        # a JSONL record per line, or one JSON document (COCO), however it is indented
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            for _, line in zip(range(20), fh, strict=False):
                if line.strip() and _is_record(line):
                    return "jsonl"
        try:
            document = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError):
            return None
        return "coco" if coco.looks_like_coco(document) else None
    first = text.splitlines()[0] if text else ""
    if first.count(",") >= 2 * NUM_POINTS:
        return "csv"
    return None


def _label_files(folder: Path, fmt: str) -> list[Path]:
    """The ``jsonl`` or ``coco`` label files directly in ``folder``, recognised by content."""
    pattern = "*.jsonl" if fmt == "jsonl" else "*.json"
    return [p for p in sorted(folder.glob(pattern)) if p.is_file() and _file_format(p) == fmt]


def _walk(folder: Path) -> tuple[list[Path], list[Path]]:
    """(``.pts`` files, image files) under ``folder``, sorted, hidden entries skipped."""
    pts: list[Path] = []
    images: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            lower = name.lower()
            if lower.endswith(".pts"):
                pts.append(Path(root) / name)
            elif lower.endswith(IMAGE_SUFFIXES):
                images.append(Path(root) / name)
    return pts, images


def detect_format(path: str | os.PathLike, warn: bool = False) -> str:
    """``udacity``, ``csv``, ``pts``, ``jsonl`` or ``coco``: what ``path`` holds.

    A :class:`DataError` (one line) when it is none of them or does not exist.  ``warn``: say
    which labels are read from a folder that holds several kinds (only the reader asks, so
    the note comes once however often the format is looked at).
    """
    path = Path(path).expanduser()
    if path.is_dir():
        if (path / dataset.TRAIN_CSV).is_file() or (path / dataset.TEST_CSV).is_file():
            return "udacity"
        pts, images = _walk(path)
        kinds = [
            k
            for k, found in (
                ("jsonl", _label_files(path, "jsonl")),
                ("coco", _label_files(path, "coco")),
                ("pts", pts),
            )
            if found
        ]
        if len(kinds) > 1 and warn:  # e.g. an annotate output folder
            log.warning(
                "%s holds %s labels; reading the %s (pass a file to choose another)",
                path,
                " and ".join(kinds),
                kinds[0],
            )
        if kinds:
            return kinds[0]
        what = f"{len(images)} image(s) but no labels" if images else "no labels"
        raise DataError(f"{path}: {what}; {_EXPECTED}")
    if path.is_file():
        fmt = _file_format(path)
        if fmt is None:
            raise DataError(f"{path}: not a label file facemark reads; {_EXPECTED}")
        return fmt
    raise DataError(f"{path}: no such file or folder")


def is_udacity(path: str | os.PathLike | None) -> bool:
    """``path`` is None (the installed dataset) or a Udacity-style root."""
    return path is None or detect_format(path) == "udacity"


# --------------------------------------------------------------------------- readers


def _check_points(kps: np.ndarray) -> str | None:
    """Why these (68, 2) numbers cannot be a face, or None."""
    if not np.isfinite(kps).all():
        return "missing or NaN keypoints"
    if np.abs(kps).max() > dataset.MAX_COORDINATE:
        return f"coordinate beyond ±{dataset.MAX_COORDINATE:,.0f} px"
    return None


def read_pts(path: str | os.PathLike) -> np.ndarray:
    """The (N, 2) points of an iBUG ``.pts`` file, as written (1-based); DataError if malformed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    declared: int | None = None
    try:
        start, stop = lines.index("{"), lines.index("}")
    except ValueError:
        raise DataError("not a .pts file (no { ... } block)") from None
    for line in lines[:start]:
        key, _, value = line.partition(":")
        if key.strip().lower() == "n_points":
            try:
                declared = int(value)
            except ValueError:
                raise DataError(f"bad n_points line '{line}'") from None
    points = []
    for line in lines[start + 1 : stop]:
        parts = line.split()
        if len(parts) != 2:
            raise DataError(f"a point line is not 'x y': '{line[:40]}'")
        try:
            points.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise DataError(f"non-numeric point '{line[:40]}'") from None
    if declared is not None and declared != len(points):
        raise DataError("its n_points does not match its points")
    return np.array(points, dtype=np.float64).reshape(-1, 2)


def _image_of(pts: Path, by_stem: dict[tuple[Path, str], Path]) -> Path | None:
    """The image a ``.pts`` file labels: same stem, or ``stem`` of ``stem_K.pts`` (annotate's
    name for the K-th face of an image)."""
    found = by_stem.get((pts.parent, pts.stem))
    if found is None:
        base, sep, k = pts.stem.rpartition("_")
        if sep and k.isdigit():
            found = by_stem.get((pts.parent, base))
    return found


def read_pts_folder(folder: Path) -> Labels:
    pts_files, images = _walk(folder)
    by_stem: dict[tuple[Path, str], Path] = {}
    for image in images:
        by_stem.setdefault((image.parent, image.stem), image)
    labels: list[Label] = []
    skipped: list[SkippedRow] = []
    labelled: set[Path] = set()
    for pts in pts_files:
        rel = pts.relative_to(folder).as_posix()
        image = _image_of(pts, by_stem)
        if image is None:
            skipped.append(SkippedRow(rel, ".pts without its image"))
            continue
        labelled.add(image)
        try:
            points = read_pts(pts)
        except DataError as exc:
            # the reason is a count category: the details go to the debug log
            log.debug("%s: %s", pts, exc)
            skipped.append(SkippedRow(rel, "malformed .pts"))
            continue
        if len(points) != NUM_POINTS:
            skipped.append(SkippedRow(rel, f"{len(points)} points instead of {NUM_POINTS}"))
            continue
        reason = _check_points(points)
        if reason:
            skipped.append(SkippedRow(rel, reason))
            continue
        image_rel = image.relative_to(folder).as_posix()
        name = image_rel if image.stem == pts.stem else f"{image_rel}#{pts.stem}"
        labels.append(Label(name, image, (points - LABEL_ORIGIN).astype(np.float32), image_rel))
    for image in images:
        if image not in labelled:
            skipped.append(SkippedRow(image.relative_to(folder).as_posix(), "image without .pts"))
    return Labels(labels, skipped, pts_files)


def image_roots(base: Path) -> list[Path]:
    """Where the relative image paths of a label file in ``base`` may start, in order: the
    current folder, the folders ``facemark annotate`` ran in when it wrote ``base`` (its
    records name images relative to that), the file's folder and its ``images/``: never an
    annotate output folder, whose images are annotated copies under the same relative names
    (training on them would teach the drawn points)."""
    own = [] if is_output_folder(base) else [base, base / "images"]
    roots = [Path.cwd(), *reversed(output_run_dirs(base)), *own]
    return list(dict.fromkeys(roots))


def _resolve_image(name: str, base: Path) -> Path:
    """An image path as a label file records it: absolute, or under the first of
    :func:`image_roots` that holds it."""
    recorded = Path(name).expanduser()
    if recorded.is_absolute():
        return recorded
    roots = image_roots(base)
    for root in roots:
        if (root / recorded).is_file():
            return root / recorded
    return roots[0] / recorded


def _faces_to_labels(
    entries: Iterable[tuple[str, Sequence[np.ndarray]]], base: Path, files: list[Path]
) -> Labels:
    """Labels from ``(recorded image name, [keypoints per face])``; a name seen before is
    skipped (first kept)."""
    labels: list[Label] = []
    skipped: list[SkippedRow] = []
    seen: set[str] = set()
    for name, faces in entries:
        if name in seen:
            skipped.append(SkippedRow(name, "duplicate image (first kept)"))
            continue
        seen.add(name)
        image = _resolve_image(name, base)
        for k, kps in enumerate(faces):
            label = name if len(faces) == 1 else f"{name}#{k}"
            labels.append(Label(label, image, kps, name))
    return Labels(labels, skipped, files)


def read_jsonl_files(paths: Sequence[Path]) -> Labels:
    """Faces of facemark ``annotations*.jsonl`` files (0-based keypoints)."""
    entries: list[tuple[str, list[np.ndarray]]] = []
    skipped: list[SkippedRow] = []
    for path in paths:
        try:
            fh = open(path, encoding="utf-8")
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
        with fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{path.name}:{lineno}"
                try:
                    record = json.loads(line)
                except ValueError:
                    skipped.append(SkippedRow(where, "line is not JSON"))
                    continue
                if not isinstance(record, dict) or not isinstance(record.get("image"), str):
                    skipped.append(SkippedRow(where, "line is not an image record"))
                    continue
                faces: list[np.ndarray] = []
                raw_faces = record.get("faces")
                if not isinstance(raw_faces, list) or not raw_faces:
                    skipped.append(SkippedRow(record["image"], "image with no face"))
                    continue
                bad = None
                for face in raw_faces:
                    try:
                        kps = np.array(face["keypoints"], dtype=np.float64)
                    except (TypeError, KeyError, ValueError):
                        bad = "face without keypoints"
                        break
                    if kps.shape != (NUM_POINTS, 2):
                        n = kps.shape[0] if kps.ndim else 0
                        bad = f"{n} points instead of {NUM_POINTS}"
                        break
                    bad = _check_points(kps)
                    if bad:
                        break
                    faces.append(kps.astype(np.float32))
                if bad:  # one bad face: drop the record, or the image's other faces shift
                    skipped.append(SkippedRow(record["image"], bad))
                    continue
                entries.append((record["image"], faces))
    labels = _faces_to_labels(entries, paths[0].parent, list(paths))
    labels.skipped[:0] = skipped
    return labels


def read_coco_file(path: Path) -> Labels:
    """Faces of a COCO keypoints JSON (see :mod:`facemark.coco`; 0-based keypoints)."""
    read = coco.read_coco(path)
    grouped: dict[str, list[np.ndarray]] = {}
    skipped = [SkippedRow(name, reason) for name, reason in read.skipped]
    for face in read.faces:
        reason = _check_points(face.keypoints)
        if reason:
            skipped.append(SkippedRow(face.file_name, reason))
            continue
        grouped.setdefault(face.file_name, []).append(face.keypoints)
    labels = _faces_to_labels(grouped.items(), path.parent, [path])
    labels.skipped[:0] = skipped
    return labels


def read_labels(path: str | os.PathLike, fmt: str | None = None) -> Labels:
    """The labels of ``path`` (any format but ``udacity`` and ``csv``), images not yet read."""
    path = Path(path).expanduser()
    fmt = fmt or detect_format(path)
    if fmt == "pts":
        return read_pts_folder(path)
    if fmt == "jsonl":
        return read_jsonl_files(_label_files(path, "jsonl") if path.is_dir() else [path])
    if fmt == "coco":
        files = _label_files(path, "coco") if path.is_dir() else [path]
        if len(files) > 1:
            raise DataError(
                f"{path} holds {len(files)} COCO files ({', '.join(f.name for f in files[:3])}); "
                "name the one to use"
            )
        return read_coco_file(files[0])
    raise UsageError(f"read_labels does not read {fmt} data")


# --------------------------------------------------------------------------- loading


def _read_images(labels: Sequence[Label], progress: bool) -> list[np.ndarray | None]:
    """Decode each label's image once (faces of one image share the array)."""
    cache: dict[Path, np.ndarray | None] = {}
    lock = threading.Lock()
    unique = list(dict.fromkeys(label.image for label in labels))

    def read(path: Path) -> None:
        try:
            image: np.ndarray | None = dataset.read_image(path)
        except (FileNotFoundError, IsADirectoryError):
            image = None
        except DataError:
            image = None
        with lock:
            cache[path] = image

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        done: Iterable[None] = pool.map(read, unique)
        if progress and len(unique) > 200:
            from rich.progress import track

            done = track(done, total=len(unique), description="reading images", transient=True)
        for _ in done:
            pass
    return [cache[label.image] for label in labels]


def _unreadable(path: Path) -> str:
    return "image file missing" if not path.is_file() else "image unreadable"


def _csv_images(csv_path: Path) -> Path:
    """Where a CSV's images are: its own folder, else the subfolder holding its first image
    (``training/`` beside ``training_frames_keypoints.csv`` in a dataset root)."""
    names = dataset.read_keypoints_csv(csv_path)[0][:1]
    folder = csv_path.parent
    if not names or (folder / names[0]).is_file():
        return folder
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if (sub / names[0]).is_file():
            return sub
    return folder


def _subset_labels(labels: list[Label], limit: int | None, seed: int) -> list[Label]:
    if limit is None or limit >= len(labels):
        return labels
    pick = np.sort(
        np.random.default_rng(seed).choice(len(labels), size=max(limit, 0), replace=False)
    )
    return [labels[i] for i in pick]


def load_faces(
    path: str | os.PathLike,
    *,
    images: str | os.PathLike | None = None,
    split: str = "trainval",
    progress: bool = False,
    limit: int | None = None,
    limit_seed: int = 0,
) -> FaceSet:
    """Every usable labelled face of ``path``, whatever its format (:func:`detect_format`).

    A Udacity root gives its ``split`` (:func:`facemark.dataset.load_split`); a CSV its rows,
    images from ``images`` (default: the CSV's folder, or the subfolder of it that holds the
    first image).  ``limit`` keeps a random ``limit``
    faces (by ``limit_seed``) before any image is decoded.  Skipped items are logged as one
    warning line and kept on ``FaceSet.skipped``; no usable face at all is a DataError.
    """
    path = Path(path).expanduser()
    fmt = detect_format(path, warn=True)
    if fmt == "udacity":
        return dataset.load_split(
            split, path, progress=progress, limit=limit, limit_seed=limit_seed
        )
    if fmt == "csv":
        folder = Path(images) if images is not None else _csv_images(path)
        faces = dataset.load_labeled_folder(folder, path, progress=progress)
        if limit is not None and limit < len(faces):
            rng = np.random.default_rng(limit_seed)
            faces = faces.subset(np.sort(rng.choice(len(faces), size=limit, replace=False)))
        return faces
    read = read_labels(path, fmt)
    return faces_from_labels(read, str(path), progress=progress, limit=limit, seed=limit_seed)


def faces_from_labels(
    read: Labels,
    source: str,
    *,
    progress: bool = False,
    limit: int | None = None,
    seed: int = 0,
) -> FaceSet:
    """Decode the images of ``read.labels``; drop faces whose image is missing or whose
    points fall outside it; report what was skipped."""
    skipped = list(read.skipped)
    chosen = _subset_labels(read.labels, limit, seed)
    decoded = _read_images(chosen, progress)
    names: list[str] = []
    pixels: list[np.ndarray] = []
    points: list[np.ndarray] = []
    for label, image in zip(chosen, decoded, strict=True):
        if image is None:
            skipped.append(SkippedRow(label.name, _unreadable(label.image)))
        elif not dataset.points_usable(label.keypoints, image.shape[0], image.shape[1]):
            skipped.append(SkippedRow(label.name, "most keypoints outside the image"))
        else:
            names.append(label.name)
            pixels.append(image)
            points.append(label.keypoints)
    if names:
        dataset.report_skipped(source, skipped, "item(s)")
    else:  # the error says it all
        counts: dict[str, int] = {}
        for s in skipped:
            counts[s.reason] = counts.get(s.reason, 0) + 1
        why = ", ".join(f"{n} {reason}" for reason, n in counts.items()) or "no labels"
        looked = ""
        if "image file missing" in counts and read.files:
            roots = ", ".join(str(r) for r in image_roots(read.files[0].parent))
            looked = f"; relative image paths were looked up in: {roots}"
        raise DataError(f"no usable labelled face in {source} ({why}){looked}")
    arr = np.stack(points) if points else np.zeros((0, NUM_POINTS, 2), np.float32)
    return FaceSet(names, pixels, arr, skipped)


# --------------------------------------------------------------------------- splits


def file_keys(faces: FaceSet) -> list[str]:
    """The image file of each face (``name`` without its ``#k``)."""
    return [name.split("#", 1)[0] for name in faces.names]


def photo_key(name: str) -> str:
    """The photo a face comes from: its file without a trailing ``_N`` face number
    (300-W's ``111076519_2.jpg`` is face 2 of photo ``111076519``)."""
    file = name.split("#", 1)[0]
    path = Path(file)
    return (path.parent / dataset.identity_of(path.name)).as_posix()


def split_faces(
    faces: FaceSet, val_fraction: float, seed: int, val_by: str = "frame"
) -> tuple[FaceSet, FaceSet]:
    """(train, val) of ``faces``, split with :func:`dataset.split_indices` by image file, or
    by photo (:func:`photo_key`) with ``val_by="photo"``."""
    keys = [photo_key(n) for n in faces.names] if val_by == "photo" else file_keys(faces)
    unique = sorted(set(keys))
    _, val_files = dataset.split_indices(unique, val_fraction, seed, val_by="frame")
    val_set = {unique[i] for i in val_files}
    train = [i for i, k in enumerate(keys) if k not in val_set]
    val = [i for i, k in enumerate(keys) if k in val_set]
    return faces.subset(train), faces.subset(val)


def training_sets(
    data: str | os.PathLike | None,
    val_data: str | os.PathLike | None = None,
    *,
    val_fraction: float = SPLIT.val_fraction,
    seed: int = SPLIT.seed,
    val_by: str = SPLIT.val_by,
    progress: bool = False,
) -> tuple[FaceSet, FaceSet]:
    """(train, val) faces of a training run.

    ``data`` None or a Udacity root: its identity (or frame) split, exactly as
    :func:`dataset.load_split`.  Any other format: split by image file (by photo with
    ``val_by="photo"``) with the run's seed and ``val_fraction``.  With ``val_data`` all of
    ``data`` trains and ``val_data`` validates (a Udacity root as ``val_data`` gives its test
    frames).
    """
    udacity = is_udacity(data)
    if val_data is not None:
        train = (
            dataset.load_split("trainval", data, progress=progress)
            if udacity
            else load_faces(data, progress=progress)  # type: ignore[arg-type]
        )
        return train, load_faces(val_data, split="test", progress=progress)
    if udacity:
        split = {"root": data, "val_fraction": val_fraction, "seed": seed, "val_by": val_by}
        return (
            dataset.load_split("train", progress=progress, **split),
            dataset.load_split("val", progress=progress, **split),
        )
    faces = load_faces(data, progress=progress)  # type: ignore[arg-type]
    train, val = split_faces(faces, val_fraction, seed, val_by)
    if not len(train):
        raise DataError(f"{data}: no training faces are left after holding out val")
    return train, val


@dataclass
class Source:
    """One labelled source of a training run: its short name and its two splits."""

    name: str
    train: FaceSet
    val: FaceSet


def as_sources(data: str | os.PathLike | Sequence[str | os.PathLike] | None) -> list[str | None]:
    """``--data`` as a list: one source (None = the installed dataset) or several."""
    if data is None or isinstance(data, str | os.PathLike):
        return [None if data is None else os.fspath(data)]
    items = [os.fspath(d) for d in data]
    return items or [None]


def source_names(data: Sequence[str | None]) -> list[str]:
    """Short, unique names for the sources of a run (``udacity``, a folder's name, ...), as
    the epoch table, the run record and ``evaluate`` label them."""
    names = []
    for item in data:
        if item is None or is_udacity(item):
            base = "udacity"
        else:
            path = Path(item).expanduser()
            base = path.name if path.is_dir() else path.stem
            base = base or "data"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def training_sources(
    data: str | os.PathLike | Sequence[str | os.PathLike] | None,
    val_data: str | os.PathLike | None = None,
    *,
    val_fraction: float = SPLIT.val_fraction,
    seed: int = SPLIT.seed,
    val_by: str = SPLIT.val_by,
    progress: bool = False,
) -> list[Source]:
    """Each ``--data`` source with its own (train, val) split, by :func:`training_sets`.

    Each source is split on its own (a Udacity root by person, others by file or photo), so
    no person or photo straddles train and val.  With ``val_data`` every source trains in
    full and ``val_data`` is the one validation source.
    """
    items = as_sources(data)
    names = source_names(items)
    if len(items) == 1:
        train, val = training_sets(
            items[0],
            val_data,
            val_fraction=val_fraction,
            seed=seed,
            val_by=val_by,
            progress=progress,
        )
        return [Source(names[0], train, val)]
    split = {"val_fraction": val_fraction, "seed": seed, "val_by": val_by, "progress": progress}
    sources = []
    for name, item in zip(names, items, strict=True):
        if val_data is None:
            train, val = training_sets(item, **split)
        else:
            train, val = training_sets(item, val_fraction=0.0, seed=seed, progress=progress)
        sources.append(Source(name, train, val))
    if val_data is not None:
        sources.append(
            Source(
                source_names([os.fspath(val_data)])[0],
                sources[0].train.subset([]),
                load_faces(val_data, split="test", progress=progress),
            )
        )
    return sources


def source_weights(sources: Sequence[Source], shares: Sequence[float] | None) -> np.ndarray | None:
    """Per-training-face draw weights that give each source ``shares[k]`` of an epoch
    (normalised), or None (plain shuffling: each source in proportion to its size)."""
    if not shares:
        return None
    total = float(sum(shares))  # one per source, >= 0, not all 0: train.resolve_config checks
    parts = [
        np.full(len(s.train), w / total / len(s.train))
        for s, w in zip(sources, shares, strict=False)
    ]
    weights = np.concatenate(parts)
    return weights / weights.sum()


def concat_faces(sets: Sequence[FaceSet], prefixes: Sequence[str]) -> FaceSet:
    """One FaceSet of several; names become ``prefix/name`` so they stay unique (one set is
    returned as it is)."""
    if len(sets) == 1:
        return sets[0]
    names = [f"{p}/{n}" for fs, p in zip(sets, prefixes, strict=True) for n in fs.names]
    images = [im for fs in sets for im in fs.images]
    kps = [fs.keypoints for fs in sets if len(fs)]
    arr = np.concatenate(kps) if kps else np.zeros((0, NUM_POINTS, 2), np.float32)
    return FaceSet(names, images, arr)


# --------------------------------------------------------------------------- fingerprints


def fingerprint(path: str | os.PathLike | None) -> str:
    """A sha256 that changes when the labels of ``path`` do.

    The installed dataset or a Udacity root: :func:`dataset.dataset_fingerprint`.  Any other
    format: the sorted label files' names (relative to ``path``) and bytes; images are not
    re-read, as for a dataset without a manifest.
    """
    if path is None:
        return dataset.dataset_fingerprint(None)
    path = Path(path).expanduser()
    fmt = detect_format(path)
    if fmt == "udacity":
        return dataset.dataset_fingerprint(path)
    if fmt == "pts":
        files = _walk(path)[0]
    elif path.is_dir():
        files = _label_files(path, fmt)
    else:
        files = [path]
    base = path if path.is_dir() else path.parent
    digest = hashlib.sha256(f"facemark-labels:{fmt}\0".encode())
    for file in sorted(files, key=lambda f: f.relative_to(base).as_posix()):
        digest.update(file.relative_to(base).as_posix().encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
        with contextlib.suppress(OSError):
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def training_fingerprint(
    data: str | os.PathLike | Sequence[str | os.PathLike] | None,
    val_data: str | os.PathLike | None = None,
) -> str:
    """The fingerprint a run records: of ``data`` (each source, in order), and of
    ``val_data`` when there is one."""
    items = as_sources(data)
    if len(items) == 1:
        own = fingerprint(items[0])
    else:
        parts = "\0".join(fingerprint(item) for item in items)
        own = hashlib.sha256(f"sources:{parts}".encode()).hexdigest()
    if val_data is None:
        return own
    return hashlib.sha256(f"train:{own}\0val:{fingerprint(val_data)}".encode()).hexdigest()


def describe(faces: FaceSet) -> str:
    """``"120 faces in 100 images"``."""
    images = len(set(file_keys(faces)))
    return f"{len(faces)} face(s) in {images} image(s)"
