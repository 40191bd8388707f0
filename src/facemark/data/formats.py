"""Labelled faces in any of the 68-point formats facemark reads, detected from the content.

``--data PATH`` of ``train``, ``evaluate`` and ``preview`` accepts:

* ``udacity``: a dataset root (``training/``, ``test/`` and their two CSVs), read by
  :mod:`facemark.data.udacity` with its identity splits;
* ``csv``: one CSV in the dataset's format (``name,x0,y0,...``, 1-based); its images are in
  the CSV's folder unless ``images`` says otherwise (:mod:`facemark.data.keypoints_csv`);
* ``pts``: a folder (searched recursively) of images with iBUG ``.pts`` files beside them
  (``name.pts`` next to ``name.jpg``; 1-based like the 300-W originals).  facemark's own
  ``name_0.pts``, ``name_1.pts`` (several faces of ``name.jpg``) are understood too
  (:mod:`facemark.data.pts`);
* ``jsonl``: facemark's ``annotations.jsonl`` as ``facemark annotate`` writes it (0-based),
  or a folder holding ``annotations*.jsonl``; every face of a record is one sample;
* ``coco``: a COCO keypoints JSON with the 68-point category (see :mod:`facemark.coco`),
  or a folder holding one (both in :mod:`facemark.data.records`).

A folder is told apart by what it holds (the Udacity CSVs, then a JSONL of records, then a
COCO JSON, then ``.pts`` files), a file by its first bytes, never by its name.  Unusable items
(a ``.pts`` with 67 points, NaN, points outside the image, an image without labels, a line
that is not JSON) are skipped and reported as one warning line with a count per reason, like
the CSV reader does for its rows; input that holds no usable face at all is a
:class:`~facemark.errors.DataError`.

This module says which format a path holds and loads it; :func:`facemark.data.open_labels`
is the entry point that callers use.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path

from facemark import coco
from facemark.data.faces import FaceSet, random_pick
from facemark.data.keypoints_csv import csv_images, load_labeled_folder
from facemark.data.labels import Labels, faces_from_labels
from facemark.data.pts import read_pts_folder, walk
from facemark.data.records import read_coco_file, read_jsonl_files
from facemark.data.udacity import dataset_fingerprint, is_dataset_root, load_split
from facemark.errors import DataError, UsageError
from facemark.shape import NUM_POINTS

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

_EXPECTED = (
    "expected a folder of images with .pts files, a Udacity-style dataset root, a keypoints "
    "CSV, facemark's annotations.jsonl or a COCO keypoints JSON with 68 points"
)


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


def detect_format(path: str | os.PathLike, warn: bool = False) -> str:
    """``udacity``, ``csv``, ``pts``, ``jsonl`` or ``coco``: what ``path`` holds.

    A :class:`DataError` (one line) when it is none of them or does not exist.  ``warn``: say
    which labels are read from a folder that holds several kinds (only the reader asks, so
    the note comes once however often the format is looked at).
    """
    path = Path(path).expanduser()
    if path.is_dir():
        if is_dataset_root(path):
            return "udacity"
        pts, images = walk(path)
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


# --------------------------------------------------------------------------- loading


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


def load_format(
    path: Path,
    fmt: str,
    *,
    images: str | os.PathLike | None = None,
    split: str = "trainval",
    progress: bool = False,
    limit: int | None = None,
    limit_seed: int = 0,
) -> FaceSet:
    """:func:`load_faces` of a ``path`` whose format ``fmt`` is known."""
    if fmt == "udacity":
        return load_split(split, path, progress=progress, limit=limit, limit_seed=limit_seed)
    if fmt == "csv":
        folder = Path(images) if images is not None else csv_images(path)
        faces = load_labeled_folder(folder, path, progress=progress)
        pick = random_pick(len(faces), limit, limit_seed)
        return faces if pick is None else faces.subset(pick)
    read = read_labels(path, fmt)
    return faces_from_labels(read, str(path), progress=progress, limit=limit, seed=limit_seed)


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

    A Udacity root gives its ``split`` (:func:`facemark.data.udacity.load_split`); a CSV its
    rows, images from ``images`` (default: the CSV's folder, or the subfolder of it that holds
    the first image).  ``limit`` keeps a random ``limit``
    faces (by ``limit_seed``) before any image is decoded.  Skipped items are logged as one
    warning line and kept on ``FaceSet.skipped``; no usable face at all is a DataError.
    """
    path = Path(path).expanduser()
    fmt = detect_format(path, warn=True)
    return load_format(
        path,
        fmt,
        images=images,
        split=split,
        progress=progress,
        limit=limit,
        limit_seed=limit_seed,
    )


# --------------------------------------------------------------------------- fingerprints


def fingerprint(path: str | os.PathLike | None) -> str:
    """A sha256 that changes when the labels of ``path`` do.

    The installed dataset or a Udacity root: :func:`facemark.data.udacity.dataset_fingerprint`.
    Any other format: the sorted label files' names (relative to ``path``) and bytes; images
    are not re-read, as for a dataset without a manifest.
    """
    if path is None:
        return dataset_fingerprint(None)
    path = Path(path).expanduser()
    fmt = detect_format(path)
    if fmt == "udacity":
        return dataset_fingerprint(path)
    if fmt == "pts":
        files = walk(path)[0]
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
