"""The Udacity dataset root (``training/``, ``test/`` and their two CSVs): its splits, sizes
and fingerprint.

``train``/``val`` are carved out of the training CSV by identity (:mod:`facemark.data.faces`),
``test`` is the dataset's own test CSV.  Images are decoded once (EXIF orientation applied,
RGB) and kept in memory; the training set takes about 0.5 GB, and DataLoader workers share it
copy-on-write.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from facemark import paths
from facemark.config import SPLIT
from facemark.data.decoded_cache import cached_reader, installed_fingerprint
from facemark.data.decoding import folder_reader
from facemark.data.faces import FaceSet, SkippedRow, identity_of, random_pick, split_indices
from facemark.data.keypoints_csv import load_rows, read_keypoints_csv
from facemark.errors import DataError, UsageError

TRAIN_CSV = "training_frames_keypoints.csv"
TEST_CSV = "test_frames_keypoints.csv"
TRAIN_DIR = "training"
TEST_DIR = "test"
SPLITS = ("train", "val", "trainval", "test")


def is_dataset_root(folder: Path) -> bool:
    """``folder`` holds the dataset's training or test CSV."""
    return (folder / TRAIN_CSV).is_file() or (folder / TEST_CSV).is_file()


def _dataset_root(root: str | Path | None) -> Path:
    root = Path(root) if root is not None else paths.dataset_dir()
    if not is_dataset_root(root):
        raise DataError(f"no dataset at {root}: run `facemark fetch-data` first")
    return root


def _split_rows(
    split: str, root: Path, val_fraction: float, seed: int, val_by: str
) -> tuple[Path, list[str], np.ndarray, list[SkippedRow]]:
    if split not in SPLITS:
        raise UsageError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    if split == "test":
        names, kps, skipped = read_keypoints_csv(root / TEST_CSV)
        return root / TEST_DIR, names, kps, skipped
    names, kps, skipped = read_keypoints_csv(root / TRAIN_CSV)
    if split != "trainval":
        train, val = split_indices(names, val_fraction, seed, val_by)
        idx = train if split == "train" else val
        names, kps = [names[i] for i in idx], kps[idx]
    return root / TRAIN_DIR, names, kps, skipped


def load_split(
    split: str,
    root: str | Path | None = None,
    val_fraction: float = SPLIT.val_fraction,
    seed: int = SPLIT.seed,
    val_by: str = SPLIT.val_by,
    progress: bool = False,
    limit: int | None = None,
    limit_seed: int = 0,
    cache: bool = True,
) -> FaceSet:
    """One split of the installed dataset, images decoded.

    ``train``/``val`` are carved from the training CSV (see :func:`.faces.split_indices`),
    ``trainval`` is all of it and ``test`` is the dataset's test CSV.  Only the split's own
    images are decoded; ``limit`` keeps a random ``limit`` of its rows (chosen by
    ``limit_seed``) for quick runs and previews.  Skipped rows are logged as one warning line
    and kept on ``FaceSet.skipped``.

    With ``cache`` (and an installed dataset, whose manifest fingerprints it), decoded pixels
    are kept in one file under the cache folder and memory-mapped by later loads: the first
    full load decodes every image of the CSV once, later ones take well under a second and
    share pages between processes.  The images are then read-only arrays.
    """
    root = _dataset_root(root)
    images_dir, names, kps, skipped = _split_rows(split, root, val_fraction, seed, val_by)
    pick = random_pick(len(names), limit, limit_seed)
    if pick is not None:
        names, kps = [names[i] for i in pick], kps[pick]
    reader = cached_reader(root, images_dir, len(names), progress) if cache else None
    faces = load_rows(
        reader or folder_reader(images_dir), names, kps, skipped, f"{split} split", progress
    )
    if not len(faces) and not (split == "val" and val_fraction == 0):
        raise DataError(f"the {split} split of {root} has no usable frames")
    return faces


def split_sizes(
    root: str | Path | None = None,
    val_fraction: float = SPLIT.val_fraction,
    seed: int = SPLIT.seed,
    val_by: str = SPLIT.val_by,
) -> dict[str, dict[str, int]]:
    """``{split: {"frames": n, "identities": m}}`` from the CSVs alone (no image decoding).

    Counts are of well-formed CSV rows; rows whose points fall outside their image are only
    discovered (and dropped) when the split is loaded.
    """
    root = _dataset_root(root)
    out: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        try:
            _, names, _, _ = _split_rows(split, root, val_fraction, seed, val_by)
        except DataError:
            continue  # e.g. a folder with only a test CSV
        out[split] = {"frames": len(names), "identities": len({identity_of(n) for n in names})}
    return out


def dataset_fingerprint(root: str | Path | None = None) -> str:
    """A sha256 that changes whenever the dataset's content does.

    The installer records one in ``manifest.json``; a dataset without a manifest is hashed
    from its two CSVs (names and labels; images are not re-read).
    """
    root = _dataset_root(root)
    installed = installed_fingerprint(root)
    if installed:
        return installed
    digest = hashlib.sha256()
    for name in (TRAIN_CSV, TEST_CSV):
        path = root / name
        digest.update(name.encode() + b"\0")
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()
