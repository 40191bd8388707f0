"""The one table of the landmark models and face detectors facemark loads by name.

A :class:`Backend` says once which checkpoint architectures of a task it runs, the class that
runs them and the function that wraps them for ``facemark export``; an :class:`Entry` is a
name ``--model`` / ``--detector`` accept, with its backend, its bundled weights file and its
aliases.  :mod:`facemark.hub` (resolving names, :func:`~facemark.hub.load_detector`),
``facemark info`` and :func:`facemark.export.load_network` read this table, so a new detector
backend is one new module in ``detectors/`` plus one :class:`Entry` line in :data:`ENTRIES`.

Torch-free and import-light: classes and functions are named ``"package.module:attribute"``
and imported when first used, so listing names costs no torch import, and this low layer can
name the export builders above it without importing them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from facemark.config import TASKS
from facemark.lazy import resolve

#: A class or function, or its ``"package.module:attribute"`` path (imported on first use,
#: :func:`facemark.lazy.resolve`).
Ref = str | Callable[..., Any]

#: In :attr:`Backend.archs`: every arch of the task that no other backend names.
ANY_ARCH = "*"


def load(ref: Ref) -> Any:
    """The object ``ref`` names, importing its module if it is given as a path."""
    return resolve(ref) if isinstance(ref, str) else ref


@dataclass(frozen=True)
class Backend:
    """How facemark runs, and exports, the checkpoints of some architectures of one task."""

    task: str
    #: The class that runs them.  A detector's: ``from_checkpoint(data, device=, config=)``,
    #: or, for an entry without weights, ``runner(config=config)``; landmarks: Landmarker.
    runner: Ref
    #: ``(checkpoint dict, metadata, raw) -> facemark.export.Network``; None: not exportable.
    network: Ref | None = None
    #: The checkpoint ``arch`` values it runs (:data:`ANY_ARCH`: the task's own networks).
    archs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")


@dataclass(frozen=True)
class Entry:
    """A model name and what it loads; ``name`` is the one listings show."""

    name: str
    backend: Backend
    #: The bundled checkpoint (a file in ``weights/``); None: the backend needs no weights.
    weights: str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def task(self) -> str:
        return self.backend.task

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


LANDMARKS = Backend(
    "landmarks",
    runner="facemark.landmarker:Landmarker",
    network="facemark.export.network:landmark_network",
    archs=(ANY_ARCH,),
)
YUNET = Backend(
    "detector",
    runner="facemark.detectors.yunet:YuNetDetector",
    network="facemark.export.network:yunet_network",
    archs=("yunet",),
)
FACEMARK_DETECTOR = Backend(
    "detector",
    runner="facemark.detectors.facemark:FacemarkDetector",
    network="facemark.export.network:facemark_detector_network",
    archs=(ANY_ARCH,),
)

#: Every named model, in the order listings show them (``default`` is what every command
#: uses when given no model; ``default-int8`` is its int8 form for the CPU, see quantize.py).
ENTRIES: list[Entry] = [
    Entry("default", LANDMARKS, "landmarks.pt"),
    Entry("default-int8", LANDMARKS, "landmarks-int8.pt"),
    Entry("default", YUNET, "yunet_n.pt", aliases=("yunet", "yunet_n")),
    Entry("yunet_s", YUNET, "yunet_s.pt"),
    Entry("facemark", FACEMARK_DETECTOR, "detector.pt"),
]


def register(entry: Entry) -> Entry:
    """Add ``entry`` (a plug-in backend, a test's fake); none of its names may be taken."""
    taken = [name for name in entry.names if find(name, entry.task) is not None]
    if taken:
        raise ValueError(f"{entry.task} model names already registered: {', '.join(taken)}")
    ENTRIES.append(entry)
    return entry


def unregister(entry: Entry) -> None:
    """Remove an entry :func:`register` added."""
    ENTRIES.remove(entry)


def find(name: str, task: str) -> Entry | None:
    """The ``task`` entry called ``name`` (or aliased so), None if there is none."""
    return next((e for e in ENTRIES if e.task == task and name in e.names), None)


def bundled(task: str) -> dict[str, str]:
    """Every name of a bundled ``task`` model -> its file in ``weights/``, aliases together."""
    return {name: e.weights for e in ENTRIES if e.task == task and e.weights for name in e.names}


def backend_for(task: str, arch: str) -> Backend:
    """The backend that runs ``task`` checkpoints of ``arch``: the one naming ``arch``, else
    the task's own (:data:`ANY_ARCH`)."""
    backends = [e.backend for e in ENTRIES if e.task == task]
    for wanted in (arch, ANY_ARCH):
        for backend in backends:
            if wanted in backend.archs:
                return backend
    raise LookupError(f"no {task} backend runs arch {arch!r}")
