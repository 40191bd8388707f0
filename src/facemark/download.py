"""``fetch-data``: download, verify and install the Udacity P1 facial keypoints dataset.

Three concerns, each usable on its own:

* :func:`download_file` — the one streaming downloader of the project (datasets here, model
  checkpoints in ``hub.py``): http(s) and ``file://``, a progress bar that also works when the
  server sends no size, timeouts, retries with exponential backoff on transient failures,
  resuming a ``.part`` file with an HTTP Range request, an atomic rename at the end and an
  optional sha256 check.
* :func:`install_dataset` — checks an archive completely *before* anything appears under
  :func:`facemark.paths.dataset_dir` (zip integrity, safe member names, both CSVs, every image
  decodable), extracts into a temporary folder next to the destination and renames it into
  place, so an error or Ctrl-C never leaves a half-installed dataset.
* :func:`fetch_dataset` — what the command does: skip when a verified install exists, else
  get the archive (``--zip``, ``file://`` or a download into the cache) and install it.

Installed layout (other modules rely on it)::

    dataset/
      training/  test/                       the frames
      training_frames_keypoints.csv           name + 136 coordinates per row, with a header
      test_frames_keypoints.csv
      LICENSE                                 the dataset's licence (MIT, Udacity)
      manifest.json                           source, sha256, counts, fingerprint, ...
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import io
import json
import math
import os
import re
import shutil
import stat
import tempfile
import time
import urllib.request
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
from PIL import Image
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from facemark import __version__, paths
from facemark.errors import DataError, FacemarkError, NetworkError, UsageError
from facemark.files import sha256_file, write_json

DEFAULT_URL = "https://github.com/udacity/P1_Facial_Keypoints/archive/refs/heads/master.zip"

TRAIN_CSV = "training_frames_keypoints.csv"
TEST_CSV = "test_frames_keypoints.csv"
MANIFEST = "manifest.json"
LICENSE = "LICENSE"
# split name -> (folder inside the archive's data/ and inside the install, its CSV)
SPLITS = {"train": ("training", TRAIN_CSV), "test": ("test", TEST_CSV)}
CSV_COLUMNS = 1 + 68 * 2
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
INSTALLED_FILES = ("training", "test", TRAIN_CSV, TEST_CSV, LICENSE, MANIFEST)

# Network behaviour. Module-level so tests (and impatient users of the library) can shorten
# the waits; ``None`` arguments below mean "use these".
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 60.0
DEFAULT_RETRIES = 5
DEFAULT_BACKOFF = 1.0  # seconds before the first retry, doubled each time
MAX_BACKOFF = 60.0
CHUNK_BYTES = 1 << 16
SPACE_MARGIN_BYTES = 16 << 20  # leave a little room for the filesystem and the manifest
# The install takes about the archive's size again (JPEGs do not compress); 1.2x leaves room,
# so a download into the same disk needs about 2.2x the archive before the first byte.
INSTALL_SPACE_RATIO = 1.2
# The default archive's size, for the space check when GitHub sends no Content-Length.
DEFAULT_ARCHIVE_BYTES = 213_000_000
DECODE_THREADS = 4  # image verification; more rarely helps, the archive is read serially

OFFLINE_HINT = (
    "if this machine is offline, download the archive elsewhere and run "
    "'facemark fetch-data --zip PATH' (or --url file:///PATH)"
)

_console = Console()

# ----------------------------------------------------------------------------------------
# Disk errors: the two a user can fix get their own one-line message.
# ----------------------------------------------------------------------------------------

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}  # EDQUOT: quota, not on Windows
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST}


@contextlib.contextmanager
def _disk_errors(where: Path) -> Iterator[None]:
    """Turn 'disk full' and 'not writable' while writing under ``where`` into one clear line."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise FacemarkError(
                f"disk full while writing to {where}; free some space or set FACEMARK_HOME "
                "to a folder on a bigger disk"
            ) from exc
        if exc.errno in _NOT_WRITABLE:
            reason = exc.strerror or "not writable"
            raise FacemarkError(
                f"cannot write to {where} ({reason.lower()}); "
                "set FACEMARK_HOME to a writable folder"
            ) from exc
        raise


def _check_free_space(folder: Path, needed: int | None) -> None:
    """Fail before writing rather than half-way, when the size is known."""
    if not needed:
        return
    free = shutil.disk_usage(folder).free
    if free < needed + SPACE_MARGIN_BYTES:
        raise FacemarkError(
            f"not enough disk space in {folder}: need {_mb(needed + SPACE_MARGIN_BYTES)}, "
            f"{_mb(free)} free; free some space or set FACEMARK_HOME to a bigger disk"
        )


def _check_download_space(
    folder: Path, remaining: int | None, total: int | None, unpack: tuple[Path, float] | None
) -> None:
    """Room for the rest of a download in ``folder`` and, with ``unpack`` (folder, ratio), for
    what it becomes when installed; folders on one disk need the sum.  One line on failure."""
    needs: list[tuple[Path, int, str]] = []
    if remaining:
        needs.append((folder, remaining, f"{_mb(remaining)} download"))
    if unpack is not None and total:
        extra = int(unpack[1] * total)
        needs.append((unpack[0], extra, f"about {_mb(extra)} unpacked in {unpack[0]}"))
    by_disk: dict[int, list[tuple[Path, int, str]]] = {}
    for need in needs:
        by_disk.setdefault(_existing_ancestor(need[0]).stat().st_dev, []).append(need)
    for group in by_disk.values():
        where = _existing_ancestor(group[0][0])
        needed = sum(n for _, n, _ in group) + SPACE_MARGIN_BYTES
        free = shutil.disk_usage(where).free
        if free < needed:
            parts = " + ".join(what for _, _, what in group)
            raise FacemarkError(
                f"not enough disk space in {group[0][0]}: need {_mb(needed)} ({parts}), "
                f"{_mb(free)} free; free some space or set FACEMARK_HOME to a bigger disk"
            )


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e3:,.1f} kB"


def _make_dir(folder: Path) -> Path:
    with _disk_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
    return folder


# ----------------------------------------------------------------------------------------
# Progress bars
# ----------------------------------------------------------------------------------------


def _byte_progress(console: Console) -> Progress:
    """Bytes, speed and ETA; with an unknown total rich shows a pulsing bar and '?'."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,  # nothing to animate in a log file
    )


def _count_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )


# ----------------------------------------------------------------------------------------
# Downloading
# ----------------------------------------------------------------------------------------


class _Transient(Exception):
    """A failure worth retrying (connection lost, timeout, HTTP 5xx/429/408)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def file_url_path(url: str) -> Path:
    """The local path of a ``file://`` URL; ``file://relative/x.zip`` is read as relative."""
    parsed = urlparse(url)
    if parsed.netloc in ("", "localhost"):
        return Path(urllib.request.url2pathname(parsed.path))
    return Path(urllib.request.url2pathname(parsed.netloc + parsed.path)).expanduser()


def _part_paths(dest: Path) -> tuple[Path, Path]:
    """The partial download and its sidecar (URL + validator), kept between runs to resume."""
    return dest.with_name(dest.name + ".part"), dest.with_name(dest.name + ".part.json")


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    expected_sha256: str | None = None,
    description: str = "Downloading",
    timeout: tuple[float, float] | None = None,
    retries: int | None = None,
    backoff: float | None = None,
    console: Console | None = None,
    sleep: Callable[[float], None] = time.sleep,
    keep_partial: bool = True,
    unpack: tuple[Path, float] | None = None,
    size_hint: int | None = None,
) -> Path:
    """Fetch ``url`` (http, https or file://) to ``dest``; return ``dest``.

    The bytes go to ``dest.part`` first and are renamed to ``dest`` only when complete (and,
    with ``expected_sha256``, verified), so ``dest`` is never a truncated file.  A ``.part``
    left by an interrupted run is resumed with an HTTP Range request when the server allows
    it (``If-Range`` guards against the file having changed in between).  Transient failures
    are retried ``retries`` times, waiting ``backoff``, 2x, 4x ... seconds (or the server's
    Retry-After).  Raises NetworkError when the download fails for good, DataError on a
    sha256 mismatch (the partial file is deleted then).

    Only a partial file a later run can resume is kept: after a network failure or Ctrl-C,
    with ``keep_partial``.  Any other failure (no space, disk error, bad hash, ...) removes
    ``dest.part`` and its sidecar.  Free space is checked from the server's size (or
    ``size_hint`` when it sends none) before the first byte is written; ``unpack`` =
    ``(folder, ratio)`` also reserves ``ratio`` x the size in ``folder`` (an archive that will
    be extracted there).
    """
    dest = Path(dest)
    console = console or _console
    scheme = urlparse(url).scheme.lower()
    part, meta = _part_paths(dest)
    if scheme not in ("file", "http", "https"):
        raise UsageError(f"unsupported URL {url!r}: use http://, https:// or file://")
    _make_dir(dest.parent)
    try:
        if scheme == "file":
            _copy_local(file_url_path(url), part, description, console)
        else:
            _http_download(
                url,
                part,
                meta,
                description=description,
                timeout=timeout or (CONNECT_TIMEOUT, READ_TIMEOUT),
                retries=DEFAULT_RETRIES if retries is None else retries,
                backoff=DEFAULT_BACKOFF if backoff is None else backoff,
                console=console,
                sleep=sleep,
                unpack=unpack,
                size_hint=size_hint,
            )
    except BaseException as exc:
        resumable = isinstance(exc, (NetworkError, KeyboardInterrupt)) and scheme != "file"
        if not (keep_partial and resumable and _can_resume(part, meta, url)):
            _discard_partial(part, meta)
        raise
    if expected_sha256:
        actual = sha256_file(part)
        if actual.lower() != expected_sha256.lower():
            part.unlink(missing_ok=True)
            meta.unlink(missing_ok=True)
            raise DataError(
                f"download of {url} is corrupt: sha256 {actual[:16]}... but expected "
                f"{expected_sha256[:16]}...; the partial file was deleted, try again"
            )
    with _disk_errors(dest.parent):
        os.replace(part, dest)
    meta.unlink(missing_ok=True)
    return dest


def _can_resume(part: Path, meta: Path, url: str) -> bool:
    """Whether ``part`` holds bytes that :func:`_resume_request` would continue."""
    try:
        return part.stat().st_size > 0 and json.loads(meta.read_text()).get("url") == url
    except (OSError, ValueError, AttributeError):
        return False


def _discard_partial(part: Path, meta: Path) -> None:
    for leftover in (part, meta):
        with contextlib.suppress(OSError):
            leftover.unlink()


def _copy_local(src: Path, part: Path, description: str, console: Console) -> None:
    if not src.is_file():
        raise UsageError(f"no such file: {src}")
    size = src.stat().st_size
    _check_free_space(part.parent, size)
    with _byte_progress(console) as progress, open(src, "rb") as fin:
        task = progress.add_task(description, total=size)
        with _disk_errors(part.parent), open(part, "wb") as fout:
            for block in iter(lambda: fin.read(1 << 20), b""):
                fout.write(block)
                progress.advance(task, len(block))


def _http_download(
    url: str,
    part: Path,
    meta: Path,
    *,
    description: str,
    timeout: tuple[float, float],
    retries: int,
    backoff: float,
    console: Console,
    sleep: Callable[[float], None],
    unpack: tuple[Path, float] | None = None,
    size_hint: int | None = None,
) -> None:
    session = requests.Session()
    session.headers["User-Agent"] = f"facemark/{__version__}"
    # Sizes and byte ranges must refer to the file itself, not a compressed transfer of it.
    session.headers["Accept-Encoding"] = "identity"
    with session, _LazyBar(console, description) as bar:
        attempt = 0
        while True:
            try:
                _http_attempt(session, url, part, meta, timeout, bar, unpack, size_hint)
                return
            except _Transient as exc:
                attempt += 1
                if attempt > retries:
                    tries = f"{attempt} attempt" + ("s" if attempt > 1 else "")
                    raise NetworkError(f"download of {url} failed: {exc} ({tries})") from exc
                delay = (
                    exc.retry_after if exc.retry_after is not None else backoff * 2 ** (attempt - 1)
                )
                delay = min(delay, MAX_BACKOFF)
                console.print(
                    f"[yellow]{exc}[/]; retrying in {delay:g} s "
                    f"(attempt {attempt + 1} of {retries + 1})",
                    highlight=False,
                )
                sleep(delay)


class _LazyBar:
    """A byte progress bar that appears with the first response, not before a failed connect."""

    def __init__(self, console: Console, description: str) -> None:
        self.progress = _byte_progress(console)
        self.description = description
        self.task: Any = None

    def __enter__(self) -> _LazyBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.progress.stop()

    def show(self, total: int | None, completed: int) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task(self.description, total=total, completed=completed)
        else:
            self.progress.update(self.task, total=total, completed=completed)

    def advance(self, n: int) -> None:
        self.progress.advance(self.task, n)


def _http_attempt(
    session: requests.Session,
    url: str,
    part: Path,
    meta: Path,
    timeout: tuple[float, float],
    bar: _LazyBar,
    unpack: tuple[Path, float] | None = None,
    size_hint: int | None = None,
) -> None:
    """One request: resume from ``part`` when possible, append what arrives."""
    offset, headers = _resume_request(url, part, meta)
    try:
        resp = session.get(url, stream=True, timeout=timeout, headers=headers, allow_redirects=True)
    except requests.RequestException as exc:
        reason, retry = _describe_request_error(exc)
        if not retry:
            raise NetworkError(f"download of {url} failed: {reason}") from exc
        raise _Transient(reason) from exc
    with resp:
        if resp.status_code == 416:  # our partial file is not a prefix the server can extend
            part.unlink(missing_ok=True)
            raise _Transient("server refused to resume the partial download", retry_after=0)
        _raise_for_status(resp, url)
        if offset and (resp.status_code != 206 or _range_start(resp) != offset):
            offset = 0  # the server sent the whole file: start over
        length = _content_length(resp)
        # Before anything is written (sidecar, bar, bytes): fail at once if it cannot fit.
        total = offset + length if length is not None else size_hint
        remaining = length if length is not None else (max(total - offset, 0) if total else None)
        _check_download_space(part.parent, remaining, total, unpack)
        if offset == 0:
            _save_validator(meta, url, resp)
        bar.show(total=offset + length if length is not None else None, completed=offset)
        received = 0
        with _disk_errors(part.parent), open(part, "ab" if offset else "wb") as fh:
            try:
                for chunk in resp.iter_content(CHUNK_BYTES):
                    fh.write(chunk)
                    received += len(chunk)
                    bar.advance(len(chunk))
            except requests.RequestException as exc:
                raise _Transient(f"connection lost after {_mb(offset + received)}") from exc
        if length is not None and received < length:
            raise _Transient(
                f"connection closed after {_mb(offset + received)} of {_mb(offset + length)}"
            )


def _resume_request(url: str, part: Path, meta: Path) -> tuple[int, dict[str, str]]:
    """Range headers to continue ``part``, or none when there is nothing (valid) to continue."""
    if not part.is_file() or part.stat().st_size == 0:
        return 0, {}
    try:
        saved = json.loads(meta.read_text())
    except (OSError, ValueError):
        saved = {}
    if saved.get("url") != url:  # a leftover from another URL: do not splice the two
        part.unlink()
        return 0, {}
    offset = part.stat().st_size
    headers = {"Range": f"bytes={offset}-"}
    if saved.get("validator"):
        headers["If-Range"] = saved["validator"]
    return offset, headers


def _save_validator(meta: Path, url: str, resp: requests.Response) -> None:
    """Remember the ETag (or Last-Modified) so a resume only continues the same file."""
    etag = resp.headers.get("ETag", "")
    validator = etag if etag and not etag.startswith("W/") else resp.headers.get("Last-Modified")
    with _disk_errors(meta.parent):
        write_json(meta, {"url": url, "validator": validator})


def _raise_for_status(resp: requests.Response, url: str) -> None:
    code = resp.status_code
    if code < 400:
        return
    message = f"HTTP {code} {resp.reason or ''}".strip()
    if code in (408, 429) or code >= 500:
        raise _Transient(message, retry_after=_retry_after(resp))
    raise NetworkError(f"download of {url} failed: {message}")


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None


def _range_start(resp: requests.Response) -> int | None:
    match = re.match(r"\s*bytes\s+(\d+)-", resp.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _content_length(resp: requests.Response) -> int | None:
    value = resp.headers.get("Content-Length", "")
    return int(value) if value.strip().isdigit() else None


def _describe_request_error(exc: requests.RequestException) -> tuple[str, bool]:
    """A short reason from the chain of wrapped urllib3/socket errors, and whether to retry.

    No name resolution or no route means no network: waiting a minute would not help, so
    those fail at once (with the offline hint from fetch_dataset).
    """
    text = str(exc)
    if isinstance(exc, requests.Timeout):
        return "timed out", True
    if "NameResolutionError" in text or "Name or service not known" in text:
        return "cannot resolve the host name (no network?)", False
    if "Network is unreachable" in text:
        return "network is unreachable", False
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS/SSL error (a proxy or a wrong system clock?)", False
    if "Connection refused" in text:
        return "connection refused", True
    return f"connection failed ({type(exc).__name__})", True


# ----------------------------------------------------------------------------------------
# Reading and checking an archive
# ----------------------------------------------------------------------------------------


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
        with Image.open(io.BytesIO(data)) as img:
            img.load()
    except Exception as exc:  # Pillow raises many kinds for truncated or foreign files
        raise DataError(f"image {where} cannot be decoded ({type(exc).__name__}: {exc})") from exc


# ----------------------------------------------------------------------------------------
# Installing
# ----------------------------------------------------------------------------------------


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


@contextlib.contextmanager
def _install_lock(console: Console) -> Iterator[None]:
    """One installer at a time per data folder; the OS releases the lock if we are killed."""
    folder = _make_dir(paths.data_dir())
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; concurrent installs are the user's call
        yield
        return
    with _disk_errors(folder):
        fd = os.open(folder / ".dataset.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            console.print("waiting for another facemark fetch-data to finish ...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _remove_leftovers(folder: Path) -> None:
    """Temporary folders of an installer that was killed (we hold the lock: none is running)."""
    for leftover in folder.glob(".dataset.*-*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)


def install_dataset(
    archive: str | os.PathLike, *, source: str, force: bool = False, console: Console | None = None
) -> dict[str, Any]:
    """Verify ``archive`` and install it at :func:`paths.dataset_dir`; return the manifest.

    An intact install is kept (and its manifest returned) unless ``force``.  Nothing changes
    under the destination unless the whole archive checks out.
    """
    console = console or _console
    with _install_lock(console):
        status = dataset_status()
        if status and status["intact"] and not force:
            return _manifest_only(status)
        return _install_locked(Path(archive), source, console)


def _install_locked(archive: Path, source: str, console: Console) -> dict[str, Any]:
    if not archive.is_file():
        raise UsageError(f"no such file: {archive}")
    if not os.access(archive, os.R_OK):
        raise UsageError(f"cannot read {archive} (permission denied)")
    if not zipfile.is_zipfile(archive):
        raise DataError(f"{archive} is not a zip archive (or it is truncated)")
    target = paths.dataset_dir()
    data_dir = _make_dir(target.parent)
    _remove_leftovers(data_dir)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{archive} is not a readable zip archive: {exc}") from exc
    with zf:
        plan = _plan_archive(zf)
        _check_free_space(data_dir, sum(i.file_size for i in plan.members()))
        archive_sha = sha256_file(archive)
        with _disk_errors(data_dir):
            tmp = Path(tempfile.mkdtemp(prefix=".dataset.tmp-", dir=data_dir))
        try:
            counts = _extract_verified(zf, plan, tmp, console)
            manifest = {
                "source": source,
                "sha256": archive_sha,
                "archive_bytes": archive.stat().st_size,
                "counts": counts,
                "installed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "facemark_version": __version__,
                "fingerprint": compute_fingerprint(tmp),
            }
            with _disk_errors(tmp.parent):
                write_json(tmp / MANIFEST, manifest)
                _apply_umask(tmp)
            _swap_into_place(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return manifest


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


def _apply_umask(folder: Path) -> None:
    """mkdtemp/mkstemp create private (0700/0600) entries; give the install normal permissions."""
    mask = os.umask(0)
    os.umask(mask)
    folder.chmod(0o777 & ~mask)
    (folder / MANIFEST).chmod(0o666 & ~mask)


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Rename the verified folder to ``target``; a previous install is removed only after."""
    old = None
    with _disk_errors(target.parent):
        if target.exists():
            old = target.with_name(f".dataset.old-{os.getpid()}")
            os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            if old is not None:
                os.replace(old, target)
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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


# ----------------------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------------------


@dataclass
class FetchResult:
    """What ``fetch-data`` did, for the CLI's summary."""

    path: Path
    manifest: dict[str, Any]
    already_installed: bool = False
    seconds: float = 0.0
    kept_archive: Path | None = None
    notes: list[str] = field(default_factory=list)


def cached_archive_path(url: str) -> Path:
    """Where a downloaded archive is kept (``--keep-zip``): one name per URL."""
    key = hashlib.sha256(url.encode()).hexdigest()[:12]
    return paths.cache_dir() / "downloads" / f"dataset-{key}.zip"


def fetch_dataset(
    url: str | None = None,
    zip_path: str | os.PathLike | None = None,
    force: bool = False,
    keep_zip: bool = False,
    *,
    console: Console | None = None,
    retries: int | None = None,
    backoff: float | None = None,
) -> FetchResult:
    """Install the dataset from ``zip_path``, a ``file://`` URL or a download of ``url``.

    A verified install is left alone unless ``force``.  A downloaded archive goes to the
    cache and is deleted after installing unless ``keep_zip``; a kept archive is reused by
    the next run for the same URL instead of downloading again.
    """
    start = time.monotonic()
    console = console or _console
    scheme = _check_source(url, zip_path)
    status = dataset_status()
    if status and status["intact"] and not force:  # fast path, no lock, works read-only
        return FetchResult(Path(status["path"]), _manifest_only(status), already_installed=True)
    result = FetchResult(paths.dataset_dir(), {})
    with _install_lock(console):
        status = dataset_status()
        if status and status["intact"] and not force:  # installed while we waited
            return FetchResult(Path(status["path"]), _manifest_only(status), already_installed=True)
        if status and not status["intact"]:
            result.notes.append(
                f"the installed dataset was damaged ({status['problem']}); reinstalled"
            )
        if zip_path is not None:
            archive = Path(zip_path).expanduser()
            result.manifest = _install_locked(archive, archive.resolve().as_uri(), console)
        elif url and scheme == "file":
            result.manifest = _install_locked(file_url_path(url), url, console)
        else:
            url = url or DEFAULT_URL
            result.manifest, result.kept_archive = _download_and_install(
                url, keep_zip, console, retries, backoff, result.notes
            )
    result.seconds = time.monotonic() - start
    return result


def _check_source(url: str | None, zip_path: str | os.PathLike | None) -> str:
    """Reject contradicting or malformed sources before any work (also when the dataset is
    installed already: a typo must not pass silently); return the URL's scheme."""
    if url and zip_path:
        raise UsageError("give either --url or --zip, not both")
    if zip_path is not None:
        archive = Path(zip_path).expanduser()
        if archive.is_dir():
            raise UsageError(f"--zip {zip_path} is a folder; give the .zip archive itself")
        if not archive.is_file():
            raise UsageError(f"no such file: {archive}")
    if not url:
        return ""
    scheme = urlparse(url).scheme.lower()
    if len(scheme) <= 1:  # a path; a one-letter scheme is a Windows drive
        raise UsageError(f"{url!r} is not a URL; for a local archive use --zip {url}")
    if scheme not in ("http", "https", "file"):
        raise UsageError(f"unsupported URL {url!r}: use http://, https:// or file://")
    return scheme


def _download_and_install(
    url: str,
    keep_zip: bool,
    console: Console,
    retries: int | None,
    backoff: float | None,
    notes: list[str],
) -> tuple[dict[str, Any], Path | None]:
    archive = cached_archive_path(url)
    if archive.is_file():
        notes.append(f"used the archive kept in the cache ({archive})")
        console.print(f"Using the archive kept in the cache: {archive}", highlight=False)
        try:
            return _install_locked(archive, url, console), archive if keep_zip else None
        except DataError:
            console.print("[yellow]The cached archive is damaged; downloading it again.[/]")
            notes[-1] = "the archive kept in the cache was damaged and was downloaded again"
        finally:
            if not keep_zip:
                archive.unlink(missing_ok=True)
    try:
        download_file(
            url,
            archive,
            description="Downloading dataset",
            retries=retries,
            backoff=backoff,
            console=console,
            unpack=(paths.data_dir(), INSTALL_SPACE_RATIO),
            size_hint=DEFAULT_ARCHIVE_BYTES if url == DEFAULT_URL else None,
        )
    except NetworkError as exc:
        raise NetworkError(f"{exc}; {OFFLINE_HINT}") from exc
    try:
        return _install_locked(archive, url, console), archive if keep_zip else None
    except DataError:
        archive.unlink(missing_ok=True)  # do not reuse a bad download next time
        raise
    finally:
        if not keep_zip:
            archive.unlink(missing_ok=True)
