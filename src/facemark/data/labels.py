"""Labelled faces before their images are read (:class:`Label`), and turning them into a
:class:`~facemark.data.faces.FaceSet`.

The ``.pts``, JSONL and COCO readers only parse labels; this module checks the points, finds
the images that label files name, decodes each image once (faces of one photo share it) and
reports what was skipped, so every such format behaves alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facemark.data.decoding import decode_all
from facemark.data.faces import (
    MAX_COORDINATE,
    FaceSet,
    SkippedRow,
    points_usable,
    random_pick,
    report_skipped,
    skip_counts,
)
from facemark.errors import DataError
from facemark.files import is_output_folder, output_run_dirs
from facemark.images import load_image
from facemark.shape import NUM_POINTS


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


def check_points(kps: np.ndarray) -> str | None:
    """Why these (68, 2) numbers cannot be a face, or None."""
    if not np.isfinite(kps).all():
        return "missing or NaN keypoints"
    if np.abs(kps).max() > MAX_COORDINATE:
        return f"coordinate beyond ±{MAX_COORDINATE:,.0f} px"
    return None


def image_roots(base: Path) -> list[Path]:
    """Where the relative image paths of a label file in ``base`` may start, in order: the
    current folder, the folders ``facemark annotate`` ran in when it wrote ``base`` (its
    records name images relative to that), the file's folder and its ``images/``: never an
    annotate output folder, whose images are annotated copies under the same relative names
    (training on them would teach the drawn points)."""
    own = [] if is_output_folder(base) else [base, base / "images"]
    roots = [Path.cwd(), *reversed(output_run_dirs(base)), *own]
    return list(dict.fromkeys(roots))


def resolve_image(name: str, base: Path) -> Path:
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


# --------------------------------------------------------------------------- loading


def _read_images(labels: Sequence[Label], progress: bool) -> list[np.ndarray | None]:
    """Decode each label's image once (faces of one image share the array)."""
    unique = list(dict.fromkeys(label.image for label in labels))

    def read(path: Path) -> np.ndarray | None:
        try:
            return load_image(path)
        except DataError:  # missing, a folder or not an image: the caller says which
            return None

    show = progress and len(unique) > 200
    with decode_all(read, unique, progress=show, description="reading images") as decoded:
        cache = dict(zip(unique, decoded, strict=True))
    return [cache[label.image] for label in labels]


def _unreadable(path: Path) -> str:
    return "image file missing" if not path.is_file() else "image unreadable"


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
    pick = random_pick(len(read.labels), limit, seed)
    chosen = read.labels if pick is None else [read.labels[i] for i in pick]
    decoded = _read_images(chosen, progress)
    names: list[str] = []
    pixels: list[np.ndarray] = []
    points: list[np.ndarray] = []
    for label, image in zip(chosen, decoded, strict=True):
        if image is None:
            skipped.append(SkippedRow(label.name, _unreadable(label.image)))
        elif not points_usable(label.keypoints, image.shape[0], image.shape[1]):
            skipped.append(SkippedRow(label.name, "most keypoints outside the image"))
        else:
            names.append(label.name)
            pixels.append(image)
            points.append(label.keypoints)
    if names:
        report_skipped(source, skipped, "item(s)")
    else:  # the error says it all
        counts = skip_counts(skipped)
        why = ", ".join(f"{n} {reason}" for reason, n in counts.items()) or "no labels"
        looked = ""
        if "image file missing" in counts and read.files:
            roots = ", ".join(str(r) for r in image_roots(read.files[0].parent))
            looked = f"; relative image paths were looked up in: {roots}"
        raise DataError(f"no usable labelled face in {source} ({why}){looked}")
    arr = np.stack(points) if points else np.zeros((0, NUM_POINTS, 2), np.float32)
    return FaceSet(names, pixels, arr, skipped)
