""":func:`fetch_dataset` — what ``fetch-data`` does.

Skip when a verified install exists, else get the archive (``--zip``, ``file://`` or a
download into the cache) and install it.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rich.console import Console

from facemark import paths
from facemark.download.downloader import download_file, file_url_path
from facemark.download.install import _install_lock, _install_locked
from facemark.download.layout import _manifest_only, dataset_status
from facemark.download.progress import _console
from facemark.errors import DataError, NetworkError, UsageError
from facemark.files import plain

DEFAULT_URL = "https://github.com/udacity/P1_Facial_Keypoints/archive/refs/heads/master.zip"

# The install takes about the archive's size again (JPEGs do not compress); 1.2x leaves room,
# so a download into the same disk needs about 2.2x the archive before the first byte.
INSTALL_SPACE_RATIO = 1.2
# The default archive's size, for the space check when GitHub sends no Content-Length.
DEFAULT_ARCHIVE_BYTES = 213_000_000

OFFLINE_HINT = (
    "if this machine is offline, download the archive elsewhere and run "
    "'facemark fetch-data --zip PATH' (or --url file:///PATH)"
)


@dataclass
class FetchResult:
    """What ``fetch-data`` did, for the CLI's summary."""

    path: Path
    manifest: dict[str, Any]
    already_installed: bool = False
    seconds: float = 0.0
    kept_archive: Path | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return plain(self)


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
