"""The decoded-pixel cache of the installed dataset: every image decoded once, memory-mapped
by later loads.

The first full load decodes every image of the CSV once into one flat file under the cache
folder, later ones take well under a second and share pages between processes.  Only an
installed dataset is cached: its manifest fingerprints the images, so a cache can never hold
another copy's pixels.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

import numpy as np

from facemark import paths
from facemark.data.decoding import ImageReader, decode_all, folder_reader
from facemark.files import atomic_write, write_json

log = logging.getLogger(__name__)

#: Bump when the cached layout or the decoding (EXIF, colour conversion) changes.
#: 2: decoded by facemark.images (transparent images composited on white, 16-bit scaled).
CACHE_VERSION = 2
#: Build the cache only for loads that need at least this share of a CSV's images anyway, so
#: a 16-frame preview never pays for decoding the whole set.
_CACHE_MIN_SHARE = 0.5


def installed_fingerprint(root: Path) -> str | None:
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
    entries: dict[str, list[int]] = {}
    offset = 0
    reader = folder_reader(images_dir)
    with (
        decode_all(reader, names, progress=progress, description="decoding images once") as decoded,
        atomic_write(blob) as fh,
    ):
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


def cached_reader(root: Path, images_dir: Path, wanted: int, progress: bool) -> ImageReader | None:
    """A reader backed by the decoded cache, building it when worthwhile; None to decode."""
    fingerprint = installed_fingerprint(root)
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
