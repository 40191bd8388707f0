""":func:`install_dataset`: install a dataset archive safely, all or nothing.

It checks an archive completely *before* anything appears under
:func:`facemark.paths.dataset_dir` (zip integrity, safe member names, both CSVs, every image
decodable), extracts into a temporary folder next to the destination and renames it into
place, so an error or Ctrl-C never leaves a half-installed dataset.  One installer runs at a
time per data folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console

from facemark import __version__, paths
from facemark.download.archive import _extract_verified, _plan_archive
from facemark.download.disk import _check_free_space, _disk_errors, _make_dir
from facemark.download.layout import MANIFEST, _manifest_only, compute_fingerprint, dataset_status
from facemark.download.progress import _console
from facemark.errors import DataError, UsageError
from facemark.files import sha256_file, write_json


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
