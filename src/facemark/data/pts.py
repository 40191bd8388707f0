"""The ``pts`` format: a folder (searched recursively) of images with iBUG ``.pts`` files
beside them, 1-based like the 300-W originals.

``name.pts`` labels ``name.jpg``; facemark's own ``name_0.pts``, ``name_1.pts`` (several faces
of ``name.jpg``, as ``annotate --pts`` writes them) are understood too.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from facemark.data.faces import SkippedRow
from facemark.data.labels import Label, Labels, check_points
from facemark.errors import DataError
from facemark.shape import LABEL_ORIGIN, NUM_POINTS

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def walk(folder: Path) -> tuple[list[Path], list[Path]]:
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
    pts_files, images = walk(folder)
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
        reason = check_points(points)
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
