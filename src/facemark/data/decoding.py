"""Decoding the images of labelled faces: many files at once, each through the project's one
decoder (:func:`facemark.images.load_image`).

Every label format reads its images here, so a face is decoded exactly as ``annotate`` and the
API decode the same file (EXIF orientation, 16-bit and transparent images), and the thread
pool that makes loading a few thousand frames fast is written once.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

from facemark.errors import DataError
from facemark.images import load_image

T = TypeVar("T")
R = TypeVar("R")

ImageReader = Callable[[str], "np.ndarray | None"]


def read_if_present(path: Path) -> np.ndarray | None:
    """Decode ``path`` as RGB uint8 with its EXIF orientation applied; ``None`` when the file
    does not exist.  Any other failure is the :class:`DataError` naming the file."""
    try:
        return load_image(path)
    except DataError:
        if not path.exists():
            return None
        raise


def folder_reader(images_dir: Path) -> ImageReader:
    """Decode ``images_dir / name``; ``None`` when the file does not exist."""

    def read(name: str) -> np.ndarray | None:
        return read_if_present(images_dir / name)

    return read


@contextlib.contextmanager
def decode_all(
    read: Callable[[T], R], items: Sequence[T], *, progress: bool, description: str
) -> Iterator[Iterable[R]]:
    """``read(item)`` of every item, in order, decoded on a thread pool that lives as long as
    the ``with`` block; ``progress`` shows a transient bar named ``description``."""
    # Pillow releases the GIL while decoding, so threads use every core.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        results: Iterable[R] = pool.map(read, items)
        if progress:
            from rich.progress import track

            results = track(results, total=len(items), description=description, transient=True)
        yield results
