"""The installed dataset's layout, and whether the install on disk is still intact.

Installed layout (other modules rely on it)::

    dataset/
      training/  test/                       the frames
      training_frames_keypoints.csv           name + 136 coordinates per row, with a header
      test_frames_keypoints.csv
      LICENSE                                 the dataset's licence (MIT, Udacity)
      manifest.json                           source, sha256, counts, fingerprint, ...

The manifest records a fingerprint of the install (:func:`compute_fingerprint`);
:func:`dataset_status` recomputes it to tell an intact install from a damaged one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from facemark import paths

TRAIN_CSV = "training_frames_keypoints.csv"
TEST_CSV = "test_frames_keypoints.csv"
MANIFEST = "manifest.json"
LICENSE = "LICENSE"
# split name -> (folder inside the archive's data/ and inside the install, its CSV)
SPLITS = {"train": ("training", TRAIN_CSV), "test": ("test", TEST_CSV)}
CSV_COLUMNS = 1 + 68 * 2
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
INSTALLED_FILES = ("training", "test", TRAIN_CSV, TEST_CSV, LICENSE, MANIFEST)


def compute_fingerprint(root: str | os.PathLike) -> str:
    """sha256 over both CSVs and the sorted (name, size) of every image of an install.

    Training runs record it as the data hash: cheap to recompute (no image is read), and it
    changes when a label, a frame, or the set of frames changes.
    """
    root = Path(root)
    digest = hashlib.sha256()
    for csv_name in (TRAIN_CSV, TEST_CSV):
        data = (root / csv_name).read_bytes()
        digest.update(f"{csv_name}\0{len(data)}\0".encode())
        digest.update(data)
    entries = []
    for folder in ("training", "test"):
        with os.scandir(root / folder) as it:
            entries += [(f"{folder}/{e.name}", e.stat().st_size) for e in it if e.is_file()]
    for name, size in sorted(entries):
        digest.update(f"{name}\0{size}\n".encode())
    return digest.hexdigest()


def dataset_status() -> dict[str, Any] | None:
    """The installed dataset's manifest plus ``path``, ``intact`` and ``problem``; None if absent.

    ``intact`` means every installed file is there and the fingerprint still matches, which
    takes a few milliseconds (two CSVs and a directory listing, no image is read).
    """
    root = paths.dataset_dir()
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
        if not isinstance(manifest, dict):
            raise ValueError("not an object")
    except (OSError, ValueError):
        return {"path": str(root), "intact": False, "problem": "manifest.json is unreadable"}
    problem = None
    missing = [name for name in INSTALLED_FILES if not (root / name).exists()]
    if missing:
        problem = f"missing {', '.join(missing)}"
    else:
        try:
            if compute_fingerprint(root) != manifest.get("fingerprint"):
                problem = "files changed since it was installed"
        except OSError as exc:
            problem = f"unreadable ({exc.strerror or exc})"
    return {**manifest, "path": str(root), "intact": problem is None, "problem": problem}


def _manifest_only(status: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if k not in ("path", "intact", "problem")}
