"""Disk space and disk errors while downloading and installing.

Every writer in this package checks for room *before* the first byte (a download, what it
unpacks to, an install) and turns 'disk full' and 'not writable' into one line that says what
to do, instead of a traceback half-way through.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
from collections.abc import Iterator
from pathlib import Path

from facemark.errors import FacemarkError

SPACE_MARGIN_BYTES = 16 << 20  # leave a little room for the filesystem and the manifest


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
