"""What to annotate: files, folders, globs and images in memory, de-duplicated, each with
its planned output names, and the shard each belongs to."""

from __future__ import annotations

import glob
import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import numpy as np

from facemark.errors import UsageError, option
from facemark.files import OUTPUT_MARKER, is_output_folder
from facemark.video import has_video_suffix

if TYPE_CHECKING:  # the pipeline imports torch: loaded when a run starts, not with the CLI
    pass


#: their suffix: Pillow recognises formats by content.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class InputImage:
    """One image to annotate and where its outputs go.

    ``image`` is the path as the user gave it (or the given folder joined with the file's
    path inside it): it is what the JSONL records.  ``rel`` is the path relative to the
    common folder of all inputs, mirrored under ``--out``; ``stem`` names its ``.pts`` files.
    """

    path: Path
    image: str | None
    real: str
    rel: PurePath = PurePath()
    stem: str = ""
    #: an image given in memory (bytes, a file object, a Pillow image or an array): decoded
    #: from here instead of ``path``
    data: Any = None


def has_image_suffix(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _scan_folder(
    folder: Path, recursive: bool, exclude: str | None, outputs: list[Path] | None = None
) -> list[Path]:
    """Image files in ``folder`` (sorted), skipping hidden entries, the ``exclude`` folder and
    facemark output folders (their images are added to ``outputs``)."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        if OUTPUT_MARKER in files:
            if outputs is not None:
                outputs += [
                    Path(r) / f
                    for r, _, fs in os.walk(root_path)
                    for f in fs
                    if has_image_suffix(f) or has_video_suffix(f)
                ]
            dirs[:] = []
            continue
        dirs[:] = sorted(
            d
            for d in dirs
            if recursive and not d.startswith(".") and not _inside(root_path / d, exclude)
        )
        found += [
            root_path / f
            for f in sorted(files)
            if not f.startswith(".") and (has_image_suffix(f) or has_video_suffix(f))
        ]
    return found


def _inside(path: str | os.PathLike, folder: str | None) -> bool:
    """``path`` is ``folder`` or lies under it (``folder`` already a realpath)."""
    if folder is None:
        return False
    real = os.path.realpath(path)
    return real == folder or real.startswith(folder.rstrip(os.sep) + os.sep)


def collect_inputs(
    inputs: Iterable[str | os.PathLike],
    recursive: bool = False,
    exclude: str | os.PathLike | None = None,
    outputs: list[Path] | None = None,
) -> tuple[list[InputImage], list[tuple[str, str]]]:
    """Expand files, folders and glob patterns into a de-duplicated list of images.

    Returns the images (in the order given, folders sorted) with their output names planned,
    and ``(input, reason)`` for each input that named nothing usable.  ``exclude`` (the
    output folder) is never scanned, nor is any facemark output folder (annotated copies
    found there are added to ``outputs``), so annotating ``.`` twice does not annotate the
    copies, wherever the earlier output went.
    """
    exclude_real = os.path.realpath(exclude) if exclude is not None else None
    found: list[tuple[Path, str]] = []
    problems: list[tuple[str, str]] = []

    def add_folder(folder: Path, given: str) -> None:
        if is_output_folder(folder):
            problems.append((given, "a facemark output folder (its images are annotated copies)"))
            return
        files = _scan_folder(folder, recursive, exclude_real, outputs)
        if not files:
            hint = "" if recursive else " (add --recursive to search its subfolders)"
            problems.append((given, f"no images in this folder{hint}"))
        found.extend((f, os.path.join(given, f.relative_to(folder).as_posix())) for f in files)

    for raw in inputs:
        given = os.fspath(raw)
        path = Path(given).expanduser()
        if path.is_dir():
            add_folder(path, given)
        elif path.is_file():
            found.append((path, given))
        elif glob.has_magic(given):
            matches = sorted(glob.glob(os.path.expanduser(given), recursive=True))
            if not matches:
                problems.append((given, "no file matches this pattern"))
            for match in matches:
                if _inside(match, exclude_real) or is_output_folder(os.path.dirname(match)):
                    continue  # '**/*.jpg' must not pick up earlier annotated copies
                if Path(match).is_dir():
                    add_folder(Path(match), match)
                elif (has_image_suffix(match) or has_video_suffix(match)) and not Path(
                    match
                ).name.startswith("."):
                    found.append((Path(match), match))
        else:
            problems.append((given, "no such file or folder"))

    seen: set[str] = set()
    images: list[InputImage] = []
    for path, given in found:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            images.append(InputImage(path=path, image=given, real=real))
    return plan_output_names(images), problems


def plan_output_names(images: Sequence[InputImage]) -> list[InputImage]:
    """Give each image a unique mirrored path (``rel``) and a unique ``.pts`` stem.

    Paths are taken relative to the deepest folder holding all inputs, so one folder of
    photos maps to ``out/<name>`` while two ``a.jpg`` from different folders stay apart.
    """
    if not images:
        return []
    absolute = [Path(os.path.abspath(im.path)) for im in images]
    try:
        common = Path(os.path.commonpath([str(p.parent) for p in absolute]))
        rels = [p.relative_to(common) for p in absolute]
    except ValueError:  # different drives (Windows): keep the drive as the first folder
        rels = [PurePath(p.drive.rstrip(":\\/") or "root", *p.parts[1:]) for p in absolute]
    # a.jpg and a.png in one folder would both want a.pts: those keep their suffix in the stem
    stems = Counter((rel.parent, rel.stem.lower()) for rel in rels)
    return [
        replace(
            im, rel=rel, stem=rel.stem if stems[(rel.parent, rel.stem.lower())] == 1 else rel.name
        )
        for im, rel in zip(images, rels, strict=True)
    ]


def parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"2/4"`` -> ``(2, 4)``: the second of four shards (1-based)."""
    if shard is None or shard == "":
        return None
    if isinstance(shard, str):
        index, sep, count = shard.partition("/")
        try:
            value = (int(index), int(count))
        except ValueError:
            value = None
        if not sep or value is None:
            raise UsageError(f"{option('shard')} must look like i/n, e.g. 1/4 (got '{shard}')")
    else:
        value = (int(shard[0]), int(shard[1]))
    index, count = value
    if count < 1 or not 1 <= index <= count:
        raise UsageError(f"--shard {index}/{count}: i must be between 1 and n")
    return index, count


def shard_of(item: InputImage, count: int) -> int:
    """The 1-based shard an image belongs to: a hash of its mirrored path.

    Hashing (rather than counting) keeps an image in the same shard when files are added to
    the collection, and does not depend on where the collection is mounted.
    """
    digest = hashlib.sha1(item.rel.as_posix().encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def select_shard(items: Sequence[InputImage], shard: tuple[int, int] | None) -> list[InputImage]:
    if shard is None:
        return list(items)
    index, count = shard
    return [item for item in items if shard_of(item, count) == index]


def _is_single(inputs: Any) -> bool:
    """One input rather than a list of them (a path, bytes, a file object, an image)."""
    from PIL import Image as PILImage

    return isinstance(
        inputs, (str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, PILImage.Image)
    ) or hasattr(inputs, "read")


def _in_memory(images: Sequence[Any]) -> list[InputImage]:
    """Images given in memory.  Their outputs (annotated copy, ``.pts``) are
    ``memory/<hash>.png`` under the output folder, named by a hash of their content, which is
    also what their record calls them unless they have a file name: so annotating the same
    image again replaces its record instead of adding one, as for files."""
    from facemark.pipeline import source_name

    items = []
    for data in images:
        name = source_name(data)
        if hasattr(data, "read"):  # read once: hashing must not use up the file object
            raw = data.read()
            data = raw if isinstance(raw, (bytes, bytearray)) else data
        rel = PurePath("memory", f"{_content_hash(data)}.png")
        items.append(InputImage(Path(name or "-"), name or rel.as_posix(), "", rel, rel.stem, data))
    return items


def _content_hash(data: Any) -> str:
    """12 hex digits of a SHA-1 over the image's bytes (pixels and shape for arrays)."""
    digest = hashlib.sha1()
    if isinstance(data, (bytes, bytearray, memoryview)):
        digest.update(bytes(data))
    elif hasattr(data, "mode") and hasattr(data, "tobytes"):  # a Pillow image
        digest.update(f"{data.mode}{data.size}".encode())
        digest.update(data.tobytes())
    else:
        arr = np.ascontiguousarray(np.asarray(data))
        digest.update(f"{arr.dtype}{arr.shape}".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()[:12]
