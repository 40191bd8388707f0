"""The one streaming downloader of the project: :func:`download_file`.

Used for datasets here and for model checkpoints in ``hub.py``: http(s) and ``file://``, a
progress bar that also works when the server sends no size, timeouts, retries with
exponential backoff on transient failures, resuming a ``.part`` file with an HTTP Range
request, an atomic rename at the end and an optional sha256 check.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import requests
from rich.console import Console

from facemark import __version__
from facemark.download.disk import (
    _check_download_space,
    _check_free_space,
    _disk_errors,
    _make_dir,
    _mb,
)
from facemark.download.progress import _byte_progress, _console, _LazyBar
from facemark.errors import DataError, NetworkError, UsageError
from facemark.files import sha256_file, write_json

# Network behaviour. Module-level so tests (and impatient users of the library) can shorten
# the waits; ``None`` arguments below mean "use these".
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 60.0
DEFAULT_RETRIES = 5
DEFAULT_BACKOFF = 1.0  # seconds before the first retry, doubled each time
MAX_BACKOFF = 60.0
CHUNK_BYTES = 1 << 16


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
