"""Turning a model spec (a name, a run, a file or a URL) into a checkpoint on disk.

Every command that takes ``--model`` or ``--detector`` accepts the same four kinds of spec, so
users learn one rule:

* ``default`` (or another bundled name): a checkpoint shipped inside the package;
* a training run's name: ``<runs dir>/<name>/best.pt``;
* a path to a checkpoint file (or to a run folder holding ``best.pt``);
* an ``https://`` URL, optionally pinned with ``#sha256=<hex>``: downloaded once into the
  user cache and verified on every use.

Downloads go to a temporary name and are renamed into the cache only after the file's hash
(when pinned) and its checkpoint header check out, so a failed, partial or wrong download
never poisons the cache; a cached file whose hash no longer matches is fetched again.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import hashlib
import ipaddress
import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from facemark import paths, registry
from facemark.config import TASKS
from facemark.errors import CheckpointError, DataError, UsageError, quiet_warnings
from facemark.files import sha256_file, write_json

if TYPE_CHECKING:
    from facemark.detectors.base import Detector, DetectorConfig
    from facemark.landmarker import Landmarker


#: Metrics shown by ``facemark models``, most preferred first (lower is better for all).
_METRIC_PREFERENCE = ("nme_io", "val_nme_io", "miss_rate", "val_loss", "loss")

_SHA256 = re.compile(r"[0-9a-f]{64}")


# --------------------------------------------------------------------------- resolution


def resolve_model(spec: str | os.PathLike, task: str = "landmarks") -> Path:
    """The checkpoint file that ``spec`` names, downloading it first when it is a URL.

    Raises a one-line :class:`UsageError` for a spec that names nothing, listing what exists.
    The checkpoint's task is checked when it is loaded, not here.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if isinstance(spec, os.PathLike):
        return _existing_checkpoint(Path(spec), str(spec))
    spec = str(spec).strip()
    if not spec:
        raise UsageError(f"empty {task} model spec; {_available_hint(task)}")
    if spec.lower().startswith("file://"):
        from facemark.download import file_url_path

        return _existing_checkpoint(file_url_path(spec), spec)
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", spec):
        return fetch_url(spec)
    entry = registry.find(spec, task)
    if entry is not None and entry.weights is not None:
        return _bundled(entry.weights, task)
    path = Path(spec).expanduser()
    if path.is_file() or (path.is_dir() and (path / "best.pt").exists()):
        return _existing_checkpoint(path, spec)
    bundled = paths.bundled_weights_dir() / f"{spec}.pt"
    if _is_plain_name(spec) and bundled.is_file():
        return bundled
    run = paths.runs_dir() / spec
    if _is_plain_name(spec) and run.is_dir():
        best = run / "best.pt"
        if not best.is_file():
            raise UsageError(
                f"run '{spec}' has no best.pt yet (it saves one after its first validation); "
                f"pass a checkpoint file from {run} instead"
            )
        return best
    if not _is_plain_name(spec) or spec.endswith(".pt"):
        raise UsageError(f"checkpoint not found: {spec}")
    raise UsageError(f"unknown {task} model '{spec}'; {_available_hint(task)}")


def _is_plain_name(spec: str) -> bool:
    """A bundled or run name: no folder separators, nothing a path could mean instead."""
    return bool(spec) and "/" not in spec and "\\" not in spec and spec not in (".", "..")


def _existing_checkpoint(path: Path, spec: str) -> Path:
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise UsageError(f"checkpoint not found: {spec}")
    return path


def _bundled(filename: str, task: str) -> Path:
    path = paths.bundled_weights_dir() / filename
    if not path.is_file():
        raise UsageError(
            f"the bundled {task} model is not installed ({path} is missing); pass a run name, "
            f"a checkpoint file or an https URL instead ({_available_hint(task, bundled=False)})"
        )
    return path


def _available_hint(task: str, bundled: bool = True) -> str:
    names = [
        m["name"]
        for m in list_models()
        if m["task"] == task and not m.get("damaged") and (bundled or m["source"] != "bundled")
    ]
    if names:
        return f"available {task} models: {', '.join(names)}"
    return f"no {task} models found (train one with `facemark train`); `facemark models` lists them"


# --------------------------------------------------------------------------- URLs


def parse_url_spec(spec: str) -> tuple[str, str | None]:
    """Split ``https://host/file.pt#sha256=<hex>`` into the URL and the expected hash."""
    url, _, fragment = spec.partition("#")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise UsageError(f"model URLs must start with https:// (got {spec})")
    expected = None
    if fragment:
        key, _, value = fragment.partition("=")
        value = value.strip().lower()
        if key.strip().lower() != "sha256" or not _SHA256.fullmatch(value):
            raise UsageError(f"URL fragment must be #sha256=<64 hex digits> (got #{fragment})")
        expected = value
    if parts.scheme == "http" and expected is None and not _is_loopback(parts.hostname or ""):
        raise UsageError(
            f"refusing plain http without a pinned hash: use https, or append "
            f"#sha256=<hex> to {url}"
        )
    return url, expected


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cached_path(url: str) -> Path:
    """Where ``url`` is cached: named by the URL's hash, readable by its file name."""
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).strip("._") or "model.pt"
    return paths.models_cache_dir() / f"{digest}-{name[:80]}"


def _record_path(cached: Path) -> Path:
    return cached.with_name(cached.name + ".json")


def _cache_hit(cached: Path, expected: str | None) -> bool:
    """True when the cached file is complete and still has the hash it was stored with."""
    record_path = _record_path(cached)
    if not (cached.is_file() and record_path.is_file()):
        return False
    try:
        recorded = json.loads(record_path.read_text()).get("sha256")
    except (OSError, ValueError, AttributeError):
        return False
    if expected is not None and recorded != expected:
        return False
    return recorded is not None and sha256_file(cached) == recorded


def fetch_url(spec: str) -> Path:
    """The cached checkpoint for a URL spec, downloading (and verifying) it when needed."""
    url, expected = parse_url_spec(spec)
    cached = cached_path(url)
    if _cache_hit(cached, expected):
        return cached
    from facemark import download  # the project's one downloader: retries, resume, progress

    cached.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_downloads(cached)
    # A per-process temporary name: shards started together must not write the same file.
    tmp = cached.with_name(f".{cached.name}.{os.getpid()}.download")
    try:
        # keep_partial=False: the name is this process's, so no later run could resume it.
        download.download_file(
            url,
            tmp,
            expected_sha256=expected,
            description=f"Downloading {url.rsplit('/', 1)[-1]}",
            keep_partial=False,
        )
        actual = sha256_file(tmp)
        if expected is not None and actual != expected:
            raise DataError(f"{url} has sha256 {actual}, expected {expected}")
        _check_header(tmp, url)
        os.replace(tmp, cached)
        write_json(
            _record_path(cached),
            {"url": url, "sha256": actual, "size": cached.stat().st_size, "downloaded": _now()},
        )
    finally:
        for leftover in tmp.parent.glob(f"{tmp.name}*"):
            with contextlib.suppress(OSError):
                leftover.unlink()
    return cached


_LEFTOVER = re.compile(r"^\..+\.(\d+)\.download(\.part(\.json)?)?$")


def _remove_stale_downloads(cached: Path, max_age_s: float = 86400.0) -> None:
    """Leftovers of downloads killed so hard their cleanup never ran (SIGTERM, SIGKILL, a
    closed terminal), for any URL of the cache: those of a process that no longer runs, and
    any a day old or more (its pid may have been reused)."""
    now = time.time()
    for leftover in cached.parent.glob(".*.download*"):
        match = _LEFTOVER.match(leftover.name)
        if match is None:
            continue
        pid = int(match.group(1))
        with contextlib.suppress(OSError):
            if pid != os.getpid() and (
                not _process_alive(pid) or now - leftover.stat().st_mtime > max_age_s
            ):
                leftover.unlink()


def _process_alive(pid: int) -> bool:
    """Whether ``pid`` runs; True where that cannot be told (then only age removes files)."""
    if os.name != "posix":  # os.kill(pid, 0) is not a harmless probe on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it runs, as another user
        return True
    return True


def _check_header(path: Path, url: str) -> None:
    """Refuse to cache a file that is not a facemark checkpoint (an HTML error page, say)."""
    from facemark.checkpoint import load_checkpoint

    try:
        load_checkpoint(path)
    except CheckpointError as exc:
        raise CheckpointError(f"{url} did not deliver a facemark checkpoint") from exc


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- loading


def load_model(spec: Any = "default", device: str | None = "cpu") -> Landmarker:
    """A :class:`Landmarker` for ``spec``: a name, run, path, URL or checkpoint dict.

    An already loaded Landmarker is returned as it is.
    """
    from facemark.devices import resolve_device
    from facemark.landmarker import Landmarker

    if isinstance(spec, Landmarker):
        return spec
    if not isinstance(spec, (str, os.PathLike, Mapping)):
        raise UsageError(
            f"expected a model spec (name, run, path, URL), a checkpoint dict or a Landmarker, "
            f"got {type(spec).__name__}"
        )
    source = spec if isinstance(spec, Mapping) else resolve_model(spec, "landmarks")
    return Landmarker.from_checkpoint(source, device=resolve_device(device))


def load_detector(
    spec: Any = "default",
    device: str | None = "cpu",
    config: DetectorConfig | None = None,
) -> Detector:
    """The detector ``spec`` names, loaded on ``device`` with ``config``'s options.

    ``--detector`` (and ``FaceMarker(detector=...)``) accepts:

    * ``default`` or ``yunet``: YuNet (``yunet_n``), trained on WIDER FACE, bundled;
      ``yunet_s`` is its smaller sibling;
    * ``facemark``: facemark's own detector network (trainable: ``train --task detector``);
    * ``boxes:FILE``: boxes the user supplies (a JSON or CSV file, see
      :mod:`facemark.detectors.boxes`);
    * a training run's name, a checkpoint path or an ``https://`` URL, as for ``--model``.

    The names, and which backend runs a checkpoint of which arch, come from
    :mod:`facemark.registry`.  A loaded :class:`Detector` is returned as it is, or, given a
    different ``config``, as a copy that uses it.
    """
    from facemark.detectors.base import Detector

    if isinstance(spec, Detector):
        if config is None or config == spec.config:
            return spec
        config.check()
        other = copy.copy(spec)
        other.config = config
        return other
    from facemark.detectors.boxes import PREFIX, BoxesDetector

    if isinstance(spec, str) and spec.startswith(PREFIX):
        return BoxesDetector(spec[len(PREFIX) :], config)
    if isinstance(spec, (str, Path)) and Path(spec).suffix.lower() in (".json", ".csv"):
        return BoxesDetector(spec, config)
    entry = registry.find(spec, "detector") if isinstance(spec, str) else None
    if entry is not None and entry.weights is None:  # a backend that needs no checkpoint
        return registry.load(entry.backend.runner)(config=config)
    from facemark import checkpoint
    from facemark.devices import resolve_device

    device = resolve_device(device)
    data = checkpoint.read(
        spec if isinstance(spec, Mapping) else resolve_model(spec, "detector"), "detector"
    )
    runner = registry.load(registry.backend_for("detector", data["arch"]).runner)
    return runner.from_checkpoint(data, device=device, config=config)


# --------------------------------------------------------------------------- listing


def list_models() -> list[dict[str, Any]]:
    """The bundled models and the user's training runs, bundled first, then runs by date.

    Each entry: ``name`` (what ``--model`` accepts), ``task``, ``source`` (bundled/run),
    ``arch``, ``date`` (ISO), ``metric`` (name) and ``value`` (validation, lower is better,
    or None), ``epoch``, ``path`` and ``damaged`` (None, or what is wrong with the file).  A
    run whose best.pt cannot be read (it crashed mid-save, a truncated copy) is listed with
    ``damaged`` set, arch and metric None: a listing must neither fail nor hide it.
    """
    entries: list[dict[str, Any]] = []
    weights = paths.bundled_weights_dir()
    for path in sorted(weights.glob("*.pt")) if weights.is_dir() else []:
        info = _describe(path)
        if info is None:
            continue
        aliases = [a for a, f in registry.bundled(info["task"]).items() if f == path.name]
        name = aliases[0] if aliases else path.stem
        entries.append({"name": name, "source": "bundled", **info})
    runs = []
    root = paths.runs_dir()
    for run in sorted(root.iterdir()) if root.is_dir() else []:
        best = run / "best.pt"
        if run.is_dir() and _is_plain_name(run.name) and best.is_file():
            info = _describe(best) or _damaged(best, _run_task(run))
            if info is not None:
                runs.append({"name": run.name, "source": "run", **info})
    runs.sort(key=lambda e: e["date"], reverse=True)
    return entries + runs


def models_table(entries: list[dict[str, Any]]) -> Any:
    """The rich table ``facemark models`` prints."""
    from rich.table import Table

    table = Table(title="facemark models", title_justify="left")
    for column in ("name", "task", "source", "arch", "date", "val metric", "path"):
        table.add_column(
            column, overflow="fold", justify="right" if column == "val metric" else "left"
        )
    for e in entries:
        metric = f"{e['metric']} {e['value']:.4f}" if e["value"] is not None else "-"
        if e.get("damaged"):
            metric = f"[red]damaged: {e['damaged']}[/]"
        table.add_row(
            e["name"],
            e["task"] or "-",
            e["source"],
            e["arch"] or "-",
            e["date"][:16].replace("T", " ") or "-",
            metric,
            _tilde(e["path"]),
        )
    return table


def _tilde(path: str) -> str:
    home = str(Path.home())
    return "~" + path[len(home) :] if path.startswith(home + os.sep) else path


def no_models_message() -> str:
    return (
        f"no models yet: the bundled ones belong in {paths.bundled_weights_dir()}, and "
        f"`facemark train` saves runs in {paths.runs_dir()}"
    )


def _describe(path: Path) -> dict[str, Any] | None:
    payload = _read_payload(path)
    if payload is None or payload.get("task") not in TASKS:
        return None
    metric, value = _val_metric(payload)
    date = payload.get("created") or (payload.get("config") or {}).get("created")
    if not date and path.parent != paths.bundled_weights_dir():
        # a run's file was written when it was made; a bundled file's time is the install's
        date = _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.timezone.utc).isoformat(
            timespec="seconds"
        )
    return {
        "task": payload["task"],
        "arch": payload.get("arch"),
        "date": str(date or ""),
        "metric": metric,
        "value": value,
        "epoch": payload.get("epoch"),
        "path": str(path),
        "damaged": None,
    }


def _damaged(path: Path, task: str | None) -> dict[str, Any] | None:
    """The listing entry of a run whose best.pt cannot be read (None if it has vanished)."""
    try:
        mtime = _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.timezone.utc)
    except OSError:
        return None
    return {
        "task": task,
        "arch": None,
        "date": mtime.isoformat(timespec="seconds"),
        "metric": None,
        "value": None,
        "epoch": None,
        "path": str(path),
        "damaged": f"unreadable {path.name}",
    }


def _run_task(run: Path) -> str | None:
    """The task a run's config.json names, to label a run whose best.pt is damaged."""
    try:
        task = json.loads((run / "config.json").read_text()).get("task")
    except (OSError, ValueError, AttributeError):
        return None
    return task if task in TASKS else None


def _read_payload(path: Path) -> dict[str, Any] | None:
    """The checkpoint's metadata, None when unreadable; memory-mapped so listing many runs
    stays quick.  torch's warnings about foreign pickles do not belong in a listing."""
    import torch

    try:
        with quiet_warnings():
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # truncated, foreign or unreadable: the caller decides what to show
        return None
    return data if isinstance(data, dict) else None


def _val_metric(payload: dict[str, Any]) -> tuple[str | None, float | None]:
    metrics = payload.get("metrics") or {}
    if not isinstance(metrics, dict):
        return None, None
    named = payload.get("metric_name") or (payload.get("config") or {}).get("metric_name")
    for key in ([named] if named else []) + list(_METRIC_PREFERENCE):
        for candidate in (key, f"val_{key}", f"val/{key}"):
            value = metrics.get(candidate)
            if isinstance(value, (int, float)):
                return key, float(value)
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(key), float(value)
    return None, None


__all__ = [
    "cached_path",
    "fetch_url",
    "list_models",
    "load_detector",
    "load_model",
    "parse_url_spec",
    "resolve_model",
]
