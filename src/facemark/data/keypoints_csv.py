"""The keypoints CSV (``name,x0,y0,...,x67,y67``, 1-based): the Udacity dataset's label format
and the ``csv`` format of ``--data``, ``evaluate --images --labels`` and ``annotate --csv``.

Rows are checked before any image is read; the images of the usable rows are then decoded
together (:mod:`facemark.data.decoding`), and rows whose image is missing or whose points fall
outside it are skipped with a count per reason, as every format reports them.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from facemark.data.decoding import ImageReader, decode_all, folder_reader
from facemark.data.faces import MAX_COORDINATE, FaceSet, SkippedRow, points_inside, report_skipped
from facemark.errors import DataError
from facemark.shape import LABEL_ORIGIN, NUM_POINTS


def read_keypoints_csv(csv_path: str | Path) -> tuple[list[str], np.ndarray, list[SkippedRow]]:
    """Parse ``name,x0,y0,...,x67,y67`` rows (a header row is optional).

    Returns the names, ``(N, 68, 2)`` float32 keypoints (0-based: the file's
    1-based numbers minus :data:`facemark.shape.LABEL_ORIGIN`) and the rows that were
    malformed, had missing/NaN or absurd (beyond :data:`MAX_COORDINATE`) values, or repeated
    an earlier row's image name (the first row of a name is kept).  Whether points lie inside
    their image is checked when the image is read.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DataError(f"labels file not found: {csv_path}")
    names: list[str] = []
    rows: list[np.ndarray] = []
    skipped: list[SkippedRow] = []
    seen: set[str] = set()
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            for lineno, row in enumerate(csv.reader(fh), start=1):
                if not row or not any(c.strip() for c in row):
                    continue
                name = row[0].strip()
                if lineno == 1 and not name.lower().endswith((".jpg", ".jpeg", ".png", ".bmp")):
                    continue  # header
                values = row[1:]
                if len(values) != 2 * NUM_POINTS:
                    skipped.append(
                        SkippedRow(name, f"{len(values)} values instead of {2 * NUM_POINTS}")
                    )
                    continue
                try:
                    nums = np.array(values, dtype=np.float64)  # fast path: all numbers
                except ValueError:
                    try:
                        nums = np.array([float(v) if v.strip() else math.nan for v in values])
                    except ValueError:
                        skipped.append(SkippedRow(name, "non-numeric value"))
                        continue
                if not np.isfinite(nums).all():
                    skipped.append(SkippedRow(name, "missing or NaN keypoints"))
                    continue
                if np.abs(nums).max() > MAX_COORDINATE:
                    skipped.append(SkippedRow(name, f"coordinate beyond ±{MAX_COORDINATE:,.0f} px"))
                    continue
                if name in seen:
                    skipped.append(SkippedRow(name, "duplicate image name (first row kept)"))
                    continue
                seen.add(name)
                names.append(name)
                rows.append(nums)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot parse {csv_path}: {exc}") from None
    kps = np.asarray(rows, dtype=np.float64).reshape(-1, NUM_POINTS, 2) - LABEL_ORIGIN
    return names, kps.astype(np.float32), skipped


def load_rows(
    reader: ImageReader,
    names: list[str],
    kps: np.ndarray,
    skipped: list[SkippedRow],
    source: str,
    progress: bool,
) -> FaceSet:
    """Read the images of the given rows; rows whose image is missing or whose points fall
    outside it join ``skipped``."""
    keep_names: list[str] = []
    keep_images: list[np.ndarray] = []
    keep_kps: list[np.ndarray] = []
    with decode_all(
        reader, names, progress=progress and len(names) > 200, description=f"reading {source}"
    ) as decoded:
        for name, points, img in zip(names, kps, decoded, strict=True):
            if img is None:
                skipped.append(SkippedRow(name, "image file missing"))
            elif not points_inside(points, img.shape[0], img.shape[1]):
                skipped.append(SkippedRow(name, "keypoints outside the image"))
            else:
                keep_names.append(name)
                keep_images.append(img)
                keep_kps.append(points)
    report_skipped(source, skipped)
    arr = np.stack(keep_kps) if keep_kps else np.zeros((0, NUM_POINTS, 2), np.float32)
    return FaceSet(keep_names, keep_images, arr, skipped)


def load_labeled_folder(
    images_dir: str | Path, labels_csv: str | Path, progress: bool = False
) -> FaceSet:
    """Any folder of images plus a CSV in the dataset's format (e.g. your own labelled set)."""
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise DataError(f"image folder not found: {images_dir}")
    names, kps, skipped = read_keypoints_csv(labels_csv)
    faces = load_rows(
        folder_reader(images_dir), names, kps, skipped, Path(labels_csv).name, progress
    )
    if not len(faces):
        raise DataError(f"no usable labelled images in {labels_csv}")
    return faces


def csv_images(csv_path: Path) -> Path:
    """Where a CSV's images are: its own folder, else the subfolder holding its first image
    (``training/`` beside ``training_frames_keypoints.csv`` in a dataset root)."""
    names = read_keypoints_csv(csv_path)[0][:1]
    folder = csv_path.parent
    if not names or (folder / names[0]).is_file():
        return folder
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if (sub / names[0]).is_file():
            return sub
    return folder
