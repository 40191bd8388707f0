"""Reading, checking and extracting the dataset archive (a GitHub zip of the repository).

Nothing is trusted: member names are checked for zip-slip, both CSVs for their shape and
values, every image is decoded, and each member's CRC is checked as it is read.  Extraction
writes into a folder the caller chose (a temporary one, see ``install.py``).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import stat
import zipfile
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from facemark.download.disk import _disk_errors
from facemark.download.layout import (
    CSV_COLUMNS,
    IMAGE_SUFFIXES,
    LICENSE,
    SPLITS,
    TRAIN_CSV,
)
from facemark.download.progress import _count_progress
from facemark.errors import DataError
from facemark.images import check_decodes, read_failure

DECODE_THREADS = 4  # image verification; more rarely helps, the archive is read serially


@dataclass
class _Plan:
    """What to take from an archive: its members, already checked for safety."""

    prefix: str
    csvs: dict[str, zipfile.ZipInfo]  # split -> CSV member
    images: dict[str, dict[str, zipfile.ZipInfo]]  # split -> file name -> member
    license: zipfile.ZipInfo | None

    def members(self) -> list[zipfile.ZipInfo]:
        found = [*self.csvs.values(), *(m for imgs in self.images.values() for m in imgs.values())]
        return found + ([self.license] if self.license else [])


def _unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    """Why extracting this member could write outside the destination (zip-slip), or None."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if ".." in name.split("/"):
        return "'..' in path"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    return None


def _plan_archive(zf: zipfile.ZipFile) -> _Plan:
    infos = zf.infolist()
    for info in infos:
        reason = _unsafe_reason(info)
        if reason:
            raise DataError(
                f"archive entry {info.filename!r} is unsafe ({reason}); refusing to install"
            )
    by_name = {i.filename: i for i in infos if not i.is_dir()}
    anchor = f"data/{TRAIN_CSV}"
    prefixes = sorted(n[: -len(anchor)] for n in by_name if n == anchor or n.endswith("/" + anchor))
    prefixes = [p for p in prefixes if "__MACOSX" not in p]
    if not prefixes:
        raise DataError(
            f"archive does not contain the dataset (no data/{TRAIN_CSV}); expected the GitHub "
            "archive of udacity/P1_Facial_Keypoints"
        )
    if len(prefixes) > 1:
        raise DataError(
            f"archive holds several copies of the dataset: {', '.join(p or '/' for p in prefixes)}"
        )
    prefix = prefixes[0]
    csvs, images = {}, {}
    for split, (folder, csv_name) in SPLITS.items():
        member = by_name.get(f"{prefix}data/{csv_name}")
        if member is None:
            raise DataError(f"archive is missing data/{csv_name}")
        csvs[split] = member
        inside = f"{prefix}data/{folder}/"
        images[split] = {
            n[len(inside) :]: i
            for n, i in by_name.items()
            if n.startswith(inside)
            and "/" not in n[len(inside) :]
            and n.lower().endswith(IMAGE_SUFFIXES)
        }
        if not images[split]:
            raise DataError(f"archive has no images in data/{folder}/")
    plan = _Plan(prefix, csvs, images, by_name.get(f"{prefix}{LICENSE}"))
    for info in plan.members():
        if info.flag_bits & 0x1:
            raise DataError(f"archive entry {info.filename!r} is encrypted")
    return plan


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The member's bytes, CRC-checked by zipfile; every kind of damage becomes a DataError."""
    try:
        return zf.read(info)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise DataError(f"archive is corrupt: {info.filename}: {exc}") from exc
    except NotImplementedError as exc:
        raise DataError(f"archive entry {info.filename} uses an unsupported compression") from exc


def _parse_csv(data: bytes, csv_name: str) -> list[str]:
    """The image names of a keypoint CSV; checks shape, names and that coordinates are finite."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{csv_name} is not UTF-8 text") from exc
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if not rows:
        raise DataError(f"{csv_name} is empty")
    names: list[str] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=1):
        if len(row) != CSV_COLUMNS:
            raise DataError(
                f"{csv_name} row {line}: {len(row)} columns, expected {CSV_COLUMNS} "
                "(image name + 68 x,y pairs)"
            )
        if line == 1:
            continue  # header: ",0,1,...,135"
        name = row[0].strip()
        if not name or "/" in name or "\\" in name:
            raise DataError(f"{csv_name} row {line}: bad image name {row[0]!r}")
        if name in seen:
            raise DataError(f"{csv_name} row {line}: image {name} is listed twice")
        try:
            coords = [float(v) for v in row[1:]]
        except ValueError as exc:
            raise DataError(f"{csv_name} row {line}: a coordinate is not a number") from exc
        if not all(math.isfinite(v) for v in coords):
            raise DataError(f"{csv_name} row {line}: a coordinate is not finite")
        seen.add(name)
        names.append(name)
    if not names:
        raise DataError(f"{csv_name} has a header but no rows")
    return names


def _check_image(data: bytes, where: str) -> None:
    try:
        check_decodes(data)  # the decoder every later read uses (facemark.images)
    except DataError as exc:
        raise DataError(f"image {where} cannot be decoded ({read_failure(exc)})") from None


def _extract_verified(
    zf: zipfile.ZipFile, plan: _Plan, tmp: Path, console: Console
) -> dict[str, int]:
    """Write the needed members under ``tmp`` in the installed layout, checking each one."""
    labeled: dict[str, list[str]] = {}
    with _disk_errors(tmp.parent):
        for split, info in plan.csvs.items():
            folder, csv_name = SPLITS[split]
            data = _read_member(zf, info)
            labeled[split] = _parse_csv(data, csv_name)
            missing = [n for n in labeled[split] if n not in plan.images[split]]
            if missing:
                more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
                raise DataError(f"{csv_name} lists {missing[0]}{more}, not found in data/{folder}/")
            (tmp / csv_name).write_bytes(data)
            (tmp / folder).mkdir()
        (tmp / LICENSE).write_bytes(
            _read_member(zf, plan.license) if plan.license else _LICENSE_NOTE
        )
        _extract_images(zf, plan, tmp, console)
    return {
        "train": len(labeled["train"]),
        "test_labeled": len(labeled["test"]),
        "test_unlabeled": len(set(plan.images["test"]) - set(labeled["test"])),
    }


def _extract_images(zf: zipfile.ZipFile, plan: _Plan, tmp: Path, console: Console) -> None:
    """Decode every image (in a few threads: Pillow decodes without the GIL), then write it.

    Members are read and written in order by this thread, so the first bad image in sorted
    order is the one reported, and only a bounded number of images is held in memory.
    """
    jobs = [
        (SPLITS[split][0], name, info)
        for split, images in plan.images.items()
        for name, info in sorted(images.items())
    ]
    workers = max(1, min(DECODE_THREADS, os.cpu_count() or 1))
    with _count_progress(console) as progress, ThreadPoolExecutor(workers) as pool:
        task = progress.add_task("Verifying images", total=len(jobs))
        pending: deque[tuple[Path, bytes, Future[None]]] = deque()

        def finish_oldest() -> None:
            target, data, checked = pending.popleft()
            checked.result()  # re-raises the DataError (or Ctrl-C) of that image
            target.write_bytes(data)
            progress.advance(task)

        for folder, name, info in jobs:
            data = _read_member(zf, info)
            check = pool.submit(_check_image, data, f"data/{folder}/{name}")
            pending.append((tmp / folder / name, data, check))
            if len(pending) > 4 * workers:
                finish_oldest()
        while pending:
            finish_oldest()


_LICENSE_NOTE = (
    b"This copy of the Udacity P1_Facial_Keypoints dataset was installed from an archive\n"
    b"without its licence file. The dataset is published under the MIT licence:\n"
    b"https://github.com/udacity/P1_Facial_Keypoints/blob/master/LICENSE\n"
)
