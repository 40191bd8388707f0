"""Reading the installed dataset, identity splits, and the torch ``Dataset`` for training.

The Udacity P1 set is a few thousand small frames cut from videos, so consecutive frames of one
person are near-duplicates: validation is carved out by *identity* (the ``<Person_Name>``
prefix of each file name), otherwise the validation score would mostly measure memorisation.
The split is a pure function of the names and the seed (a hash, not a random generator), so it
is the same on every machine and every numpy version.

Images are decoded once (EXIF orientation applied, RGB) and kept in memory; the training set
takes about 0.5 GB, and DataLoader workers share it copy-on-write.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from facemark import paths, transforms
from facemark.config import SPLIT, VAL_BY
from facemark.errors import DataError, UsageError
from facemark.files import atomic_write, write_json
from facemark.shape import LABEL_ORIGIN, NUM_POINTS

log = logging.getLogger(__name__)

TRAIN_CSV = "training_frames_keypoints.csv"
TEST_CSV = "test_frames_keypoints.csv"
TRAIN_DIR = "training"
TEST_DIR = "test"
SPLITS = ("train", "val", "trainval", "test")
# How a validation split groups faces (config.VAL_BY): by person (Udacity names), by photo
# (the name before a trailing ``_N``, as 300-W numbers the faces of one photo; for Udacity
# frames the same as the person) or by single frame/file.
_FRAME_SUFFIX = re.compile(r"_\d+$")

#: Coordinates beyond this (pixels, either sign) are typos, not faces: such rows are skipped
#: before float32 conversion could overflow them to inf.
MAX_COORDINATE = 1e7


@dataclass
class SkippedRow:
    """A CSV row that was not used, and why (shown to the user as a count per reason)."""

    name: str
    reason: str


@dataclass
class FaceSet:
    """Frames with one labelled face each: names, RGB uint8 images and (N, 68, 2) keypoints."""

    names: list[str]
    images: list[np.ndarray]
    keypoints: np.ndarray
    skipped: list[SkippedRow] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32).reshape(-1, NUM_POINTS, 2)
        if not (len(self.names) == len(self.images) == len(self.keypoints)):
            raise ValueError("names, images and keypoints must have the same length")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def identities(self) -> list[str]:
        """The person of each frame."""
        return [identity_of(n) for n in self.names]

    def subset(self, indices: Iterable[int]) -> FaceSet:
        idx = [int(i) for i in indices]
        return FaceSet(
            [self.names[i] for i in idx],
            [self.images[i] for i in idx],
            self.keypoints[idx] if idx else np.zeros((0, NUM_POINTS, 2), np.float32),
        )

    def boxes(self) -> np.ndarray:
        """The face box of every frame, ``(N, 4)``."""
        return (
            transforms.face_box_from_keypoints(self.keypoints)
            if len(self)
            else np.zeros((0, 4), np.float32)
        )


def identity_of(name: str) -> str:
    """``Person_Name_12.jpg`` -> ``Person_Name`` (frames of one video share it)."""
    return _FRAME_SUFFIX.sub("", Path(name).stem)


# --------------------------------------------------------------------------- CSV and images


def _dataset_root(root: str | Path | None) -> Path:
    root = Path(root) if root is not None else paths.dataset_dir()
    if not (root / TRAIN_CSV).is_file() and not (root / TEST_CSV).is_file():
        raise DataError(f"no dataset at {root}: run `facemark fetch-data` first")
    return root


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


def read_image(path: str | Path) -> np.ndarray:
    """Decode one image as RGB uint8 with its EXIF orientation applied (alpha is dropped)."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def points_inside(kps: np.ndarray, height: int, width: int) -> bool:
    """All points on the image (pixel ``i`` spans ``[i - 0.5, i + 0.5)``)."""
    x, y = kps[:, 0], kps[:, 1]
    return bool(
        (x >= -0.5).all()
        and (y >= -0.5).all()
        and (x < width - 0.5).all()
        and (y < height - 0.5).all()
    )


def points_usable(kps: np.ndarray, height: int, width: int) -> bool:
    """At least half of the points on the image, so the crop holds most of the face.

    300-W labels faces cut by the photo's border with points beyond it; the crop pads those
    with black, so such hard cases train (and validate) instead of being dropped.
    """
    x, y = kps[:, 0], kps[:, 1]
    on = (x >= -0.5) & (y >= -0.5) & (x < width - 0.5) & (y < height - 0.5)
    return bool(on.mean() >= 0.5)


def report_skipped(source: str, skipped: Sequence[SkippedRow], what: str = "row(s)") -> None:
    """One warning line: how many rows (or items) were skipped, with a count per reason."""
    if not skipped:
        return
    counts: dict[str, int] = {}
    for s in skipped:
        counts[s.reason] = counts.get(s.reason, 0) + 1
    detail = ", ".join(
        f"{n} {reason}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1])
    )
    log.warning("%s: skipped %d %s: %s", source, len(skipped), what, detail)


ImageReader = Callable[[str], "np.ndarray | None"]


def folder_reader(images_dir: Path) -> ImageReader:
    """Decode ``images_dir / name``; ``None`` when the file does not exist."""

    def read(name: str) -> np.ndarray | None:
        try:
            return read_image(images_dir / name)
        except FileNotFoundError:
            return None

    return read


def _load(
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
    # Pillow releases the GIL while decoding, so threads use every core.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        decoded: Iterable[np.ndarray | None] = pool.map(reader, names)
        if progress and len(names) > 200:
            from rich.progress import track

            decoded = track(
                decoded, total=len(names), description=f"reading {source}", transient=True
            )
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
    faces = _load(folder_reader(images_dir), names, kps, skipped, Path(labels_csv).name, progress)
    if not len(faces):
        raise DataError(f"no usable labelled images in {labels_csv}")
    return faces


# --------------------------------------------------------------------------- splits


def _hash_key(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def split_indices(
    names: Sequence[str],
    val_fraction: float = SPLIT.val_fraction,
    seed: int = SPLIT.seed,
    val_by: str = SPLIT.val_by,
) -> tuple[list[int], list[int]]:
    """Deterministic (train, val) row indices of the training CSV.

    ``val_by="identity"`` puts ``round(val_fraction * persons)`` whole persons in val;
    ``"frame"`` picks frames regardless of person (optimistic: near-duplicates leak).
    """
    if val_by not in VAL_BY:
        raise UsageError(f"val_by must be one of {', '.join(VAL_BY)}, not {val_by!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise UsageError(f"val_fraction must be in [0, 1), not {val_fraction}")
    keys = [identity_of(n) if val_by in ("identity", "photo") else n for n in names]
    unique = sorted(set(keys), key=lambda k: _hash_key(seed, k))
    n_val = int(round(val_fraction * len(unique)))
    if val_fraction > 0 and len(unique) > 1:
        n_val = min(max(n_val, 1), len(unique) - 1)
    val_keys = set(unique[:n_val])
    train = [i for i, k in enumerate(keys) if k not in val_keys]
    val = [i for i, k in enumerate(keys) if k in val_keys]
    return train, val


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

    ``train``/``val`` are carved from the training CSV (see :func:`split_indices`),
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
    if limit is not None and limit < len(names):
        pick = np.sort(
            np.random.default_rng(limit_seed).choice(len(names), size=max(limit, 0), replace=False)
        )
        names, kps = [names[i] for i in pick], kps[pick]
    reader = _cached_reader(root, images_dir, len(names), progress) if cache else None
    faces = _load(
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
    installed = _installed_fingerprint(root)
    if installed:
        return installed
    digest = hashlib.sha256()
    for name in (TRAIN_CSV, TEST_CSV):
        path = root / name
        digest.update(name.encode() + b"\0")
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------- decoded cache

#: Bump when the cached layout or the decoding (EXIF, colour conversion) changes.
CACHE_VERSION = 1
#: Build the cache only for loads that need at least this share of a CSV's images anyway, so
#: a 16-frame preview never pays for decoding the whole set.
_CACHE_MIN_SHARE = 0.5


def _installed_fingerprint(root: Path) -> str | None:
    """The manifest's fingerprint (covers the images), or None for an uninstalled folder."""
    try:
        fp = json.loads((root / "manifest.json").read_text()).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return None
    return fp if isinstance(fp, str) and len(fp) >= 16 else None


def _cache_files(fingerprint: str, subdir: str) -> tuple[Path, Path]:
    stem = f"{subdir}-{fingerprint[:16]}-v{CACHE_VERSION}"
    folder = paths.cache_dir() / "decoded"
    return folder / f"{stem}.u8", folder / f"{stem}.json"


def _open_cache(blob: Path, index: Path) -> ImageReader | None:
    try:
        entries: dict[str, list[int]] = json.loads(index.read_text())["images"]
        data = np.memmap(blob, dtype=np.uint8, mode="r")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    end = max((off + h * w * 3 for off, h, w in entries.values()), default=0)
    if data.size != end:  # truncated or from another build: ignore it
        return None

    def read(name: str) -> np.ndarray | None:
        entry = entries.get(name)
        if entry is None:
            return None
        off, h, w = entry
        return data[off : off + h * w * 3].reshape(h, w, 3)

    return read


def _build_cache(images_dir: Path, blob: Path, index: Path, progress: bool) -> None:
    """Decode every image of ``images_dir`` once into one flat file plus a JSON index."""
    names = sorted(
        p.name for p in images_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    )
    reader = folder_reader(images_dir)
    entries: dict[str, list[int]] = {}
    offset = 0
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        decoded: Iterable[np.ndarray | None] = pool.map(reader, names)
        if progress:
            from rich.progress import track

            decoded = track(
                decoded, total=len(names), description="decoding images once", transient=True
            )
        with atomic_write(blob) as fh:
            for name, img in zip(names, decoded, strict=True):
                if img is None:
                    continue
                fh.write(np.ascontiguousarray(img).tobytes())
                entries[name] = [offset, int(img.shape[0]), int(img.shape[1])]
                offset += img.nbytes
    write_json(index, {"version": CACHE_VERSION, "images": entries})
    for stale in blob.parent.glob(f"{images_dir.name}-*"):  # other fingerprints / versions
        if stale not in (blob, index):
            with contextlib.suppress(OSError):
                stale.unlink()


def _cached_reader(root: Path, images_dir: Path, wanted: int, progress: bool) -> ImageReader | None:
    """A reader backed by the decoded cache, building it when worthwhile; None to decode."""
    fingerprint = _installed_fingerprint(root)
    if fingerprint is None or not images_dir.is_dir():
        return None
    blob, index = _cache_files(fingerprint, images_dir.name)
    reader = _open_cache(blob, index)
    if reader is not None:
        return reader
    n_files = sum(1 for _ in images_dir.iterdir())
    if wanted < _CACHE_MIN_SHARE * n_files:
        return None
    try:
        _build_cache(images_dir, blob, index, progress)
    except OSError as exc:  # a read-only or full cache disk must not stop training
        log.warning("could not write the decoded-image cache (%s); decoding directly", exc)
        return None
    return _open_cache(blob, index)


# --------------------------------------------------------------------------- torch Dataset


class LandmarkDataset(torch.utils.data.Dataset):
    """Face crops as the landmark network sees them.

    ``[i]`` returns ``(image float32 (3, S, S) in [0, 1], keypoints float32 (68, 2) crop px)``.
    With ``augment=False`` the crop is exactly ``crop_face(image, face_box_from_keypoints(kps),
    S)``, the inference-time crop.  With augmentation, the randomness of sample ``i`` is a
    function of ``(seed, epoch, i)`` only: a resumed run sees the same samples, and DataLoader
    workers never repeat each other.

    The epoch lives in shared memory, so :meth:`set_epoch` reaches persistent DataLoader
    workers too; call it before iterating the loader for that epoch.
    """

    def __init__(
        self,
        faces: FaceSet,
        img_size: int,
        augment: bool,
        seed: int = 0,
        config: transforms.AugmentConfig | None = None,
    ) -> None:
        if img_size < 8:
            raise UsageError(f"img_size must be at least 8, not {img_size}")
        self.faces = faces
        self.img_size = int(img_size)
        self.augment = bool(augment)
        self.seed = int(seed)
        self.config = config or transforms.AugmentConfig()
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._boxes = faces.boxes()

    def __len__(self) -> int:
        return len(self.faces)

    @property
    def epoch(self) -> int:
        return int(self._epoch.item())

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(int(epoch))

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(crop uint8 (S, S, 3), keypoints (68, 2) crop px, M image->crop)`` for index."""
        image, kps = self.faces.images[index], self.faces.keypoints[index]
        if not self.augment:
            crop, M = transforms.crop_face(image, self._boxes[index], self.img_size)
            return crop, transforms.apply_affine(kps.astype(np.float64), M), M
        rng = transforms.sample_rng(self.seed, self.epoch, index)
        return transforms.augment(image, kps, self.img_size, self.config, rng)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        crop, kps, _ = self.sample(int(index))
        return transforms.to_tensor(crop), torch.from_numpy(np.asarray(kps, dtype=np.float32))
