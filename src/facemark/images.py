"""Reading photos: the one place that turns files, arrays and Pillow images into pixels.

Every command and the API decode through here, so EXIF orientation, 16-bit and transparent
images, truncated files and decompression bombs are handled the same way everywhere.

A :class:`Photo` is an image that may be needed at several resolutions: the detector only
needs about 1,000-2,000 pixels on the longer side, the landmark crops need the face at full
detail, an annotated copy needs every pixel.  Every input is decoded in full once and the
smaller views are box-averaged from those pixels (``Image.reduce``), each made at most once
and kept as a Pillow image, the fast source for crops (converting a 12 MP array to Pillow for
every face costs ~60 ms a face).  JPEGs could be decoded smaller for less (Pillow's
``draft``), but then a path and the decoded array of the same photo would reach the detector
as different pixels and get different points: one decoding path keeps every input type
exact, for about 70 ms more on a 12 MP JPEG.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps

from facemark.errors import DataError, UsageError

#: Reductions a view can be made at (Image.reduce averages factor x factor blocks).
REDUCE_FACTORS = (8, 4, 2, 1)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Decode a photo as RGB uint8 ``(H, W, 3)``, oriented as a viewer shows it.

    Accepts what users' photo folders hold: EXIF rotations, 16-bit grayscale/colour (scaled,
    not clipped), palette and transparent images (composited on white, as a viewer would
    show them).  A truncated file raises instead of being padded with grey.  Every failure is
    a :class:`DataError` naming the file.
    """
    return np.asarray(_decode(path))


def check_decodes(source: str | os.PathLike | bytes) -> None:
    """Decode ``source`` (a file or its bytes) without converting it: fails as every later
    read would (an :class:`ImageReadError`), for checking files before they are installed."""
    encoded = _EncodedImage(source) if isinstance(source, (bytes, bytearray)) else source
    with _reading(encoded), Image.open(_source(encoded)) as im:
        im.load()


def _decode(path: str | os.PathLike | _EncodedImage) -> Image.Image:
    """The oriented RGB Pillow image of ``path`` (a file or an in-memory file)."""
    with _reading(path), Image.open(_source(path)) as im:
        im.load()  # decode fully now: truncation must fail here, not while drawing
        return to_rgb_image(_oriented(im))


class ImageReadError(DataError):
    """An image that could not be read; ``reason`` is the message without the file's name
    (for records that name the file themselves)."""

    def __init__(self, source: object, reason: str) -> None:
        super().__init__(f"cannot read {source}: {reason}")
        self.reason = reason


def read_failure(exc: Exception) -> str:
    """Why an input could not be used, without its name when the error carries one."""
    return exc.reason if isinstance(exc, ImageReadError) else str(exc)


@contextlib.contextmanager
def _reading(path: str | os.PathLike) -> Iterator[None]:
    """Every way reading an image can fail, as one :class:`DataError` naming the file."""
    try:
        yield
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except IsADirectoryError:
        raise ImageReadError(path, "a folder, not an image") from None
    except Image.DecompressionBombError:
        raise ImageReadError(path, "image too large (decompression bomb guard)") from None
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, struct.error...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, Image.UnidentifiedImageError):
            reason = "not an image Pillow can read"
        raise ImageReadError(path, reason) from None


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
        rgba = im if im.mode == "RGBA" else im.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] < 255:  # some transparency: composite
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
    """One image at the resolutions it is needed at, each made once from the full pixels.

    Coordinates are always those of the full-size oriented image; :meth:`view` returns a
    Pillow image together with the matrix from full-size pixels to its pixels.
    """

    def __init__(self, full: Image.Image, name: str | None = None) -> None:
        self._views: dict[int, Image.Image] = {1: full}
        self.size: tuple[int, int] = full.size  #: (width, height) of the oriented image
        self.name = name  #: the file's path (or name), None for pixels given in memory

    @classmethod
    def open(cls, source: str | os.PathLike | bytes | BinaryIO) -> Photo:
        """Decode a file, the bytes of one, or a binary file object: the three decode alike,
        so a photo gives the same result whichever way it is passed."""
        if isinstance(source, (bytes, bytearray, memoryview)) or hasattr(source, "read"):
            encoded = _EncodedImage(source)
            name = encoded.name if isinstance(encoded.name, str) else None
            return cls(_decode(encoded), name)
        return cls(_decode(source), os.fspath(source))

    @classmethod
    def from_image(cls, image: Any) -> Photo:
        """A photo from an array or a Pillow image already in memory (converted once; a
        Pillow image is turned upright by its EXIF orientation, as a file would be)."""
        if isinstance(image, Image.Image):
            name = getattr(image, "filename", "") or None
            with _reading(name or "<Pillow image>"):
                image.load()  # Image.open is lazy: a truncated file fails here
            return cls(to_rgb_image(_oriented(image)), name)
        return cls(Image.fromarray(as_rgb_array(image), "RGB"))

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    def factor_for(self, min_side: int) -> int:
        """The strongest reduction that keeps at least ``min_side`` px on the longer side."""
        long_side = max(self.size)
        for f in REDUCE_FACTORS:
            if f == 1 or -(-long_side // f) >= min_side:
                return f
        return 1

    def view(self, min_side: int = 0) -> tuple[Image.Image, np.ndarray]:
        """The coarsest view keeping at least ``min_side`` px on the longer side (0: full
        size), and the matrix from full-size pixels to that view's pixels."""
        factor = self.factor_for(min_side) if min_side > 0 else 1
        if factor not in self._views:
            self._views[factor] = self._views[1].reduce(factor)
        return self._views[factor], self._matrix(factor)

    def _matrix(self, factor: int) -> np.ndarray:
        """Full-size pixels -> pixels of the view reduced ``factor`` times.  ``Image.reduce``
        averages ``factor`` x ``factor`` blocks (the last one partial), so the scale is
        exactly ``1 / factor``, not the ratio of the rounded-up sizes."""
        k = 1.0 / factor
        return np.array([[k, 0.0, 0.5 * k - 0.5], [0.0, k, 0.5 * k - 0.5]])

    def array(self) -> np.ndarray:
        """Full-size RGB uint8 pixels."""
        return np.asarray(self._views[1])


class _EncodedImage:
    """An image file held in memory (bytes or a file object's content): opened like a path
    and named in messages by its file object's name or as ``<N bytes>``."""

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
