"""Atomic file writing and hashing.

A crash, Ctrl-C or a full disk must never leave a half-written checkpoint, dataset or
download under its final name: everything is written to a temporary name in the same folder
and renamed into place, which is atomic on one filesystem.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "wb", errors: str | None = None
) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; rename it over ``path`` only on success.

    Text modes write UTF-8; ``errors`` is how characters UTF-8 cannot hold are written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _about(exc, path) from None
    text = {} if "b" in mode else {"encoding": "utf-8", "errors": errors}
    try:
        with os.fdopen(fd, mode, **text) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise _about(exc, path) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _about(exc: OSError, path: Path) -> OSError:
    """The same error, naming the file the user asked for rather than its temporary twin."""
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


def plain(value: Any) -> Any:
    """A result object's fields as JSON takes them: dataclasses as dicts (a field that has its
    own ``to_dict`` written by it), paths as strings, tuples as lists.  What every
    ``to_dict`` of a result built from fields returns."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _nested(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return {str(k): _nested(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nested(v) for v in value]
    return value


def _nested(value: Any) -> Any:
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) and not isinstance(value, type) else plain(value)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_write(path, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=False)
        fh.write("\n")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so large archives need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def read_jsonl(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """The image records of an annotations JSONL (each a dict with an ``image`` path); a line
    cut short by an interrupted run, or anything else that is not such a record, is skipped."""
    path = Path(path)
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and isinstance(record.get("image"), str):
                    yield record


# --------------------------------------------------------------------------- output folders

#: Written into every ``annotate`` output folder: folder scans skip folders that hold it (their
#: images are annotated copies), and it records the folders annotate ran in, where the
#: relative image paths of the folder's records start.
OUTPUT_MARKER = ".facemark-output"


def is_output_folder(folder: str | os.PathLike) -> bool:
    """Whether facemark annotate wrote ``folder`` (it holds :data:`OUTPUT_MARKER`)."""
    return os.path.isfile(os.path.join(folder, OUTPUT_MARKER))


def output_run_dirs(folder: str | os.PathLike) -> list[Path]:
    """The folders ``annotate`` ran in when it wrote ``folder`` (from its marker), newest
    last; empty for a folder without one."""
    try:
        data = json.loads(Path(folder, OUTPUT_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [Path(d) for d in data.get("ran_in", []) if isinstance(d, str)]


def mark_output(folder: str | os.PathLike, version: str) -> None:
    """Leave (or update) :data:`OUTPUT_MARKER` in an output folder, adding the current
    folder to the folders annotate ran in."""
    here = os.getcwd()
    ran_in = [str(d) for d in output_run_dirs(folder)]  # empty without a marker
    if here in ran_in:
        return
    data = {"written_by": "facemark annotate", "version": version, "ran_in": [*ran_in, here]}
    with contextlib.suppress(OSError), atomic_write(Path(folder, OUTPUT_MARKER), "w") as fh:
        fh.write(json.dumps(data) + "\n")
