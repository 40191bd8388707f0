"""The labelled sources of a training run: ``--data`` (one path or several) and ``--val-data``
as (train, val) face sets, with their names, draw weights and the fingerprint a run records.

Each source is opened with :func:`facemark.data.labelset.open_labels` and split on its own (a
Udacity root by person, others by file or photo), so no person or photo straddles train and
val.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facemark.config import SPLIT, SplitConfig
from facemark.data.faces import FaceSet
from facemark.data.formats import fingerprint, is_udacity
from facemark.data.labelset import open_labels
from facemark.errors import DataError


def training_sets(
    data: str | os.PathLike | None,
    val_data: str | os.PathLike | None = None,
    *,
    val_fraction: float = SPLIT.val_fraction,
    seed: int = SPLIT.seed,
    val_by: str = SPLIT.val_by,
    progress: bool = False,
) -> tuple[FaceSet, FaceSet]:
    """(train, val) faces of a training run.

    ``data`` None or a Udacity root: its identity (or frame) split, exactly as
    :func:`facemark.data.udacity.load_split`.  Any other format: split by image file (by photo
    with ``val_by="photo"``) with the run's seed and ``val_fraction``.  With ``val_data`` all
    of ``data`` trains and ``val_data`` validates (a Udacity root as ``val_data`` gives its
    test frames).
    """
    labels = open_labels(data, progress=progress)
    if val_data is not None:
        train = labels.split("trainval")
        return train, open_labels(val_data, progress=progress).split("test")
    split = SplitConfig(val_fraction=val_fraction, seed=seed, val_by=val_by)
    train, val = labels.split("train", split), labels.split("val", split)
    if not labels.is_udacity and not len(train):
        raise DataError(f"{data}: no training faces are left after holding out val")
    return train, val


@dataclass
class Source:
    """One labelled source of a training run: its short name and its two splits."""

    name: str
    train: FaceSet
    val: FaceSet


def as_sources(data: str | os.PathLike | Sequence[str | os.PathLike] | None) -> list[str | None]:
    """``--data`` as a list: one source (None = the installed dataset) or several."""
    if data is None or isinstance(data, str | os.PathLike):
        return [None if data is None else os.fspath(data)]
    items = [os.fspath(d) for d in data]
    return items or [None]


def source_names(data: Sequence[str | None]) -> list[str]:
    """Short, unique names for the sources of a run (``udacity``, a folder's name, ...), as
    the epoch table, the run record and ``evaluate`` label them."""
    names = []
    for item in data:
        if item is None or is_udacity(item):
            base = "udacity"
        else:
            path = Path(item).expanduser()
            base = path.name if path.is_dir() else path.stem
            base = base or "data"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def training_sources(
    data: str | os.PathLike | Sequence[str | os.PathLike] | None,
    val_data: str | os.PathLike | None = None,
    *,
    val_fraction: float = SPLIT.val_fraction,
    seed: int = SPLIT.seed,
    val_by: str = SPLIT.val_by,
    progress: bool = False,
) -> list[Source]:
    """Each ``--data`` source with its own (train, val) split, by :func:`training_sets`.

    Each source is split on its own (a Udacity root by person, others by file or photo), so
    no person or photo straddles train and val.  With ``val_data`` every source trains in
    full and ``val_data`` is the one validation source.
    """
    items = as_sources(data)
    names = source_names(items)
    if len(items) == 1:
        train, val = training_sets(
            items[0],
            val_data,
            val_fraction=val_fraction,
            seed=seed,
            val_by=val_by,
            progress=progress,
        )
        return [Source(names[0], train, val)]
    split = {"val_fraction": val_fraction, "seed": seed, "val_by": val_by, "progress": progress}
    sources = []
    for name, item in zip(names, items, strict=True):
        if val_data is None:
            train, val = training_sets(item, **split)
        else:
            train, val = training_sets(item, val_fraction=0.0, seed=seed, progress=progress)
        sources.append(Source(name, train, val))
    if val_data is not None:
        sources.append(
            Source(
                source_names([os.fspath(val_data)])[0],
                sources[0].train.subset([]),
                open_labels(val_data, progress=progress).split("test"),
            )
        )
    return sources


def source_weights(sources: Sequence[Source], shares: Sequence[float] | None) -> np.ndarray | None:
    """Per-training-face draw weights that give each source ``shares[k]`` of an epoch
    (normalised), or None (plain shuffling: each source in proportion to its size)."""
    if not shares:
        return None
    total = float(sum(shares))  # one per source, >= 0, not all 0: train.resolve_config checks
    parts = [
        np.full(len(s.train), w / total / len(s.train))
        for s, w in zip(sources, shares, strict=False)
    ]
    weights = np.concatenate(parts)
    return weights / weights.sum()


def training_fingerprint(
    data: str | os.PathLike | Sequence[str | os.PathLike] | None,
    val_data: str | os.PathLike | None = None,
) -> str:
    """The fingerprint a run records: of ``data`` (each source, in order), and of
    ``val_data`` when there is one."""
    items = as_sources(data)
    if len(items) == 1:
        own = fingerprint(items[0])
    else:
        parts = "\0".join(fingerprint(item) for item in items)
        own = hashlib.sha256(f"sources:{parts}".encode()).hexdigest()
    if val_data is None:
        return own
    return hashlib.sha256(f"train:{own}\0val:{fingerprint(val_data)}".encode()).hexdigest()
