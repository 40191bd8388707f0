"""Reading photos: the one place that turns files, arrays and Pillow images into pixels.

Every command and the API decode through here, so EXIF orientation, 16-bit and transparent
images, truncated files and decompression bombs are handled the same way everywhere.

A :class:`Photo` is an image that may be needed at several resolutions: the detector only
needs about 1,000-2,000 pixels on the longer side, the landmark crops need the face at full
detail, an annotated copy needs every pixel.  JPEGs can be decoded at 1/2, 1/4 or 1/8 size
for a fraction of the cost (Pillow's ``draft``), so a 12 MP photo is decoded small for
detection and again at full size only when a face is too small to crop from the small one.
Each resolution is decoded at most once and kept as a Pillow image, the fast source for
crops (converting a 12 MP array to Pillow for every face costs ~60 ms a face).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps

from facemark.boxes import resize_matrix
from facemark.errors import DataError, UsageError

#: Draft (DCT-domain) reductions JPEG decoding offers.
DRAFT_FACTORS = (8, 4, 2, 1)
#: Pillow formats that decode at reduced size (MPO: the JPEG many cameras write).
DRAFTABLE = ("JPEG", "MPO")


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Decode a photo as RGB uint8 ``(H, W, 3)``, oriented as a viewer shows it.

    Accepts what users' photo folders hold: EXIF rotations, 16-bit grayscale/colour (scaled,
    not clipped), palette and transparent images (composited on white, as a viewer would
    show them).  A truncated file raises instead of being padded with grey.  Every failure is
    a :class:`DataError` naming the file.
    """
    return np.asarray(_decode(path))


def _decode(path: str | os.PathLike, reduce: int = 1) -> Image.Image:
    """The oriented RGB Pillow image of ``path``, JPEGs decoded at 1/``reduce`` size."""
    with _reading(path), Image.open(_source(path)) as im:
        if reduce > 1 and im.format in DRAFTABLE:
            # Pillow picks the strongest reduction that stays at least this size
            im.draft("RGB", (max(1, im.width // reduce), max(1, im.height // reduce)))
        im.load()  # decode fully now: truncation must fail here, not while drawing
        return to_rgb_image(_oriented(im))


@contextlib.contextmanager
def _reading(path: str | os.PathLike) -> Iterator[None]:
    """Every way reading an image can fail, as one :class:`DataError` naming the file."""
    try:
        yield
    except FileNotFoundError:
        raise DataError(f"cannot read {path}: file not found") from None
    except Image.DecompressionBombError:
        raise DataError(f"cannot read {path}: image too large (decompression bomb guard)") from None
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, struct.error...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, Image.UnidentifiedImageError):
            reason = "not an image Pillow can read"
        raise DataError(f"cannot read {path}: {reason}") from None


def _oriented(im: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a malformed EXIF block leaves the pixels as stored."""
    try:
        return ImageOps.exif_transpose(im)
    except Exception:  # broken metadata is no reason to lose the photo
        return im


def to_rgb_image(im: Image.Image) -> Image.Image:
    """Any Pillow image as 8-bit RGB, the way a viewer shows it."""
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # Pillow's own conversion clips 16-bit values at 255, turning a photo white.
        gray = np.asarray(im).astype(np.float64)
        peak = 65535.0 if im.mode.startswith("I;16") else float(gray.max(initial=0.0))
        scale = 1.0 if peak <= 255.0 else 65535.0 if peak <= 65535.0 else peak
        if im.mode == "F" and 0.0 < peak <= 1.0:
            scale = 1.0 / 255.0
        gray8 = np.clip(np.rint(gray * (255.0 / scale)), 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(gray8[:, :, None], 3, axis=2), "RGB")
    if "A" in im.mode or "a" in im.mode or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        if rgba.getextrema()[3][0] < 255:
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            rgba = Image.alpha_composite(white, rgba)
        return rgba.convert("RGB")
    return im.convert("RGB")


def as_rgb_array(image: Any) -> np.ndarray:
    """An RGB uint8 ``(H, W, 3)`` array from an array (RGB, RGBA, gray) or a Pillow image."""
    if isinstance(image, Image.Image):
        return np.asarray(to_rgb_image(image))
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise UsageError(f"expected a uint8 image, got {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise UsageError(f"expected an (H, W, 3) image, got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise UsageError(f"empty image of shape {arr.shape}")
    return arr


class Photo:
    """One image at the resolutions it is needed at, each decoded once.

    Coordinates are always those of the full-size oriented image; :meth:`view` returns a
    Pillow image together with the matrix from full-size pixels to its pixels.
    """

    def __init__(
        self, full: Image.Image | None, size: tuple[int, int], path: Path | _EncodedImage | None
    ) -> None:
        self._views: dict[int, Image.Image] = {} if full is None else {1: full}
        self.size = size  #: (width, height) of the full-size oriented image
        self.path = path

    @classmethod
    def open(
        cls,
        path: str | os.PathLike | bytes | BinaryIO,
        min_side: int | Callable[[int, int], int] = 0,
    ) -> Photo:
        """Decode ``path`` in full (``min_side`` 0), or, for a JPEG, only as small as keeps
        ``min_side`` pixels on the longer side (a number, or a function of the full width and
        height: what a detector looks at of an image that big); finer views are decoded when
        asked for.  ``path`` may also be the file's bytes or a binary file object: they are
        decoded exactly as the file would be, so a photo gives the same result either way."""
        if isinstance(path, (bytes, bytearray, memoryview)) or hasattr(path, "read"):
            path = _EncodedImage(path)
        else:
            path = Path(path)
        if min_side != 0:
            with _reading(path):
                with Image.open(_source(path)) as header:
                    size, is_jpeg = _oriented_size(header), header.format in DRAFTABLE
            side = min_side(*size) if callable(min_side) else int(min_side)
            if is_jpeg and side > 0:
                photo = cls(None, size, path)
                factor = photo._factor_for(side)
                photo._views[factor] = _decode(path, factor)
                return photo
        im = _decode(path)
        return cls(im, im.size, path)

    @classmethod
    def from_image(cls, image: Any) -> Photo:
        """A photo from an array or a Pillow image already in memory (converted once; a
        Pillow image is turned upright by its EXIF orientation, as a file would be)."""
        if isinstance(image, Image.Image):
            im = to_rgb_image(_oriented(image))
        else:
            im = Image.fromarray(as_rgb_array(image), "RGB")
        return cls(im, im.size, None)

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    def _factor_for(self, min_side: int) -> int:
        long_side = max(self.size)
        for f in DRAFT_FACTORS:
            if f == 1 or -(-long_side // f) >= min_side:
                return f
        return 1

    def view(self, min_side: int = 0) -> tuple[Image.Image, np.ndarray]:
        """The coarsest view keeping at least ``min_side`` px on the longer side (0: full
        size), and the matrix from full-size pixels to that view's pixels."""
        want = self._factor_for(min_side) if min_side > 0 else 1
        if want not in self._views:
            finer = [f for f in self._views if f < want]
            if 1 in self._views:  # reducing decoded pixels beats decoding again
                self._views[want] = self._views[1].reduce(want)
            elif finer:
                want = max(finer)
            else:
                assert self.path is not None  # in-memory photos always hold the full view
                self._views[want] = _decode(self.path, want)
        return self._views[want], self._matrix(want)

    def _matrix(self, factor: int) -> np.ndarray:
        """Full-size pixels -> pixels of the view reduced ``factor`` times.  A JPEG draft and
        ``Image.reduce`` both average ``factor`` x ``factor`` blocks (the last one partial), so
        the scale is exactly ``1 / factor``, not the ratio of the rounded-up sizes."""
        im = self._views[factor]
        if (-(-self.width // factor), -(-self.height // factor)) != im.size:
            return resize_matrix(self.width, self.height, im.width, im.height)
        k = 1.0 / factor
        return np.array([[k, 0.0, 0.5 * k - 0.5], [0.0, k, 0.5 * k - 0.5]])

    def array(self) -> np.ndarray:
        """Full-size RGB uint8 pixels (decoding them now if only a smaller view exists)."""
        return np.asarray(self.view(0)[0])


class _EncodedImage:
    """An image file held in memory (bytes or a file object's content): opened like a path,
    as often as a finer view needs decoding, and named ``<bytes>`` in messages."""

    def __init__(self, data: bytes | bytearray | memoryview | BinaryIO) -> None:
        raw = data.read() if hasattr(data, "read") else data
        if not isinstance(raw, (bytes, bytearray, memoryview)):
            raise UsageError("a file object must be opened in binary mode ('rb')")
        self.data = bytes(raw)
        self.name = getattr(data, "name", None)

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data)

    def __str__(self) -> str:
        return str(self.name) if isinstance(self.name, str) else f"<{len(self.data)} bytes>"


def _source(path: Any) -> Any:
    """What ``Image.open`` takes for a path or an in-memory file."""
    return path.open() if isinstance(path, _EncodedImage) else path


def _oriented_size(im: Image.Image) -> tuple[int, int]:
    """(width, height) after EXIF orientation, from the header alone."""
    try:
        orientation = im.getexif().get(0x0112, 1)
    except Exception:
        orientation = 1
    return (im.height, im.width) if orientation in (5, 6, 7, 8) else (im.width, im.height)
