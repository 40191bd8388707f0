"""Labelled faces in memory (:class:`FaceSet`) and the ways a set is divided into parts.

Every format facemark reads ends here, so splitting, subsets and merging are written once.

The Udacity P1 set is a few thousand small frames cut from videos, so consecutive frames of one
person are near-duplicates: validation is carved out by *identity* (the ``<Person_Name>``
prefix of each file name), otherwise the validation score would mostly measure memorisation.
The split is a pure function of the names and the seed (a hash, not a random generator), so it
is the same on every machine and every numpy version.

Every face is a sample; a :class:`FaceSet` name of a label set is the image path relative to
the data's folder, with ``#k`` appended for the k-th face of an image with several.  Such sets
are split by image file (:func:`split_faces`), so the faces of one photo never straddle train
and val.

This module needs no torch: :mod:`facemark.transforms` (which imports it) is only loaded when
face boxes are asked for, so reading labels stays light.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facemark.config import SPLIT, VAL_BY
from facemark.errors import UsageError
from facemark.shape import NUM_POINTS

log = logging.getLogger(__name__)

# How a validation split groups faces (config.VAL_BY): by person (Udacity names), by photo
# (the name before a trailing ``_N``, as 300-W numbers the faces of one photo; for Udacity
# frames the same as the person) or by single frame/file.
_FRAME_SUFFIX = re.compile(r"_\d+$")

#: Coordinates beyond this (pixels, either sign) are typos, not faces: such rows are skipped
#: before float32 conversion could overflow them to inf.
MAX_COORDINATE = 1e7


@dataclass
class SkippedRow:
    """A CSV row that was not used, and why (shown to the user as a count per reason)."""

    name: str
    reason: str


@dataclass
class FaceSet:
    """Frames with one labelled face each: names, RGB uint8 images and (N, 68, 2) keypoints."""

    names: list[str]
    images: list[np.ndarray]
    keypoints: np.ndarray
    skipped: list[SkippedRow] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32).reshape(-1, NUM_POINTS, 2)
        if not (len(self.names) == len(self.images) == len(self.keypoints)):
            raise ValueError("names, images and keypoints must have the same length")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def identities(self) -> list[str]:
        """The person of each frame."""
        return [identity_of(n) for n in self.names]

    def subset(self, indices: Iterable[int]) -> FaceSet:
        idx = [int(i) for i in indices]
        return FaceSet(
            [self.names[i] for i in idx],
            [self.images[i] for i in idx],
            self.keypoints[idx] if idx else np.zeros((0, NUM_POINTS, 2), np.float32),
        )

    def boxes(self) -> np.ndarray:
        """The face box of every frame, ``(N, 4)``."""
        from facemark import transforms  # imports torch: only when boxes are needed

        return (
            transforms.face_box_from_keypoints(self.keypoints)
            if len(self)
            else np.zeros((0, 4), np.float32)
        )


def identity_of(name: str) -> str:
    """``Person_Name_12.jpg`` -> ``Person_Name`` (frames of one video share it)."""
    return _FRAME_SUFFIX.sub("", Path(name).stem)


def random_pick(n: int, limit: int | None, seed: int) -> np.ndarray | None:
    """The sorted indices of a random ``limit`` of ``n`` items (chosen by ``seed``), or None
    when ``limit`` keeps them all."""
    if limit is None or limit >= n:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=max(limit, 0), replace=False))


# --------------------------------------------------------------------------- checks


def points_inside(kps: np.ndarray, height: int, width: int) -> bool:
    """All points on the image (pixel ``i`` spans ``[i - 0.5, i + 0.5)``)."""
    x, y = kps[:, 0], kps[:, 1]
    return bool(
        (x >= -0.5).all()
        and (y >= -0.5).all()
        and (x < width - 0.5).all()
        and (y < height - 0.5).all()
    )


def points_usable(kps: np.ndarray, height: int, width: int) -> bool:
    """At least half of the points on the image, so the crop holds most of the face.

    300-W labels faces cut by the photo's border with points beyond it; the crop pads those
    with black, so such hard cases train (and validate) instead of being dropped.
    """
    x, y = kps[:, 0], kps[:, 1]
    on = (x >= -0.5) & (y >= -0.5) & (x < width - 0.5) & (y < height - 0.5)
    return bool(on.mean() >= 0.5)


def skip_counts(skipped: Sequence[SkippedRow]) -> dict[str, int]:
    """How many items were skipped for each reason, in the order the reasons first came."""
    counts: dict[str, int] = {}
    for s in skipped:
        counts[s.reason] = counts.get(s.reason, 0) + 1
    return counts


def report_skipped(source: str, skipped: Sequence[SkippedRow], what: str = "row(s)") -> None:
    """One warning line: how many rows (or items) were skipped, with a count per reason."""
    if not skipped:
        return
    counts = skip_counts(skipped)
    detail = ", ".join(
        f"{n} {reason}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1])
    )
    log.warning("%s: skipped %d %s: %s", source, len(skipped), what, detail)


# --------------------------------------------------------------------------- splits


def _hash_key(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def split_unit(val_by: str, udacity: bool) -> str:
    """What a split keeps on one side, for a source of this kind: a Udacity root splits by
    person (``identity`` and ``photo``) or by frame, other labels by photo (``photo``) or by
    image file.  Two ``val_by`` with the same unit give the same split."""
    if udacity:
        return "person" if val_by in ("identity", "photo") else "frame"
    return "photo" if val_by == "photo" else "file"


def split_indices(
    names: Sequence[str],
    val_fraction: float = SPLIT.val_fraction,
    seed: int = SPLIT.seed,
    val_by: str = SPLIT.val_by,
) -> tuple[list[int], list[int]]:
    """Deterministic (train, val) row indices of the training CSV.

    ``val_by="identity"`` puts ``round(val_fraction * persons)`` whole persons in val;
    ``"frame"`` picks frames regardless of person (optimistic: near-duplicates leak).
    """
    if val_by not in VAL_BY:
        raise UsageError(f"val_by must be one of {', '.join(VAL_BY)}, not {val_by!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise UsageError(f"val_fraction must be in [0, 1), not {val_fraction}")
    by_person = split_unit(val_by, udacity=True) == "person"
    keys = [identity_of(n) if by_person else n for n in names]
    unique = sorted(set(keys), key=lambda k: _hash_key(seed, k))
    n_val = int(round(val_fraction * len(unique)))
    if val_fraction > 0 and len(unique) > 1:
        n_val = min(max(n_val, 1), len(unique) - 1)
    val_keys = set(unique[:n_val])
    train = [i for i, k in enumerate(keys) if k not in val_keys]
    val = [i for i, k in enumerate(keys) if k in val_keys]
    return train, val


def file_keys(faces: FaceSet) -> list[str]:
    """The image file of each face (``name`` without its ``#k``)."""
    return [name.split("#", 1)[0] for name in faces.names]


def photo_key(name: str) -> str:
    """The photo a face comes from: its file without a trailing ``_N`` face number
    (300-W's ``111076519_2.jpg`` is face 2 of photo ``111076519``)."""
    file = name.split("#", 1)[0]
    path = Path(file)
    return (path.parent / identity_of(path.name)).as_posix()


def split_faces(
    faces: FaceSet, val_fraction: float, seed: int, val_by: str = "frame"
) -> tuple[FaceSet, FaceSet]:
    """(train, val) of ``faces``, split with :func:`split_indices` by image file, or by photo
    (:func:`photo_key`) with ``val_by="photo"``."""
    by_photo = split_unit(val_by, udacity=False) == "photo"
    keys = [photo_key(n) for n in faces.names] if by_photo else file_keys(faces)
    unique = sorted(set(keys))
    _, val_files = split_indices(unique, val_fraction, seed, val_by="frame")
    val_set = {unique[i] for i in val_files}
    train = [i for i, k in enumerate(keys) if k not in val_set]
    val = [i for i, k in enumerate(keys) if k in val_set]
    return faces.subset(train), faces.subset(val)


def concat_faces(sets: Sequence[FaceSet], prefixes: Sequence[str]) -> FaceSet:
    """One FaceSet of several; names become ``prefix/name`` so they stay unique (one set is
    returned as it is)."""
    if len(sets) == 1:
        return sets[0]
    names = [f"{p}/{n}" for fs, p in zip(sets, prefixes, strict=True) for n in fs.names]
    images = [im for fs in sets for im in fs.images]
    kps = [fs.keypoints for fs in sets if len(fs)]
    arr = np.concatenate(kps) if kps else np.zeros((0, NUM_POINTS, 2), np.float32)
    return FaceSet(names, images, arr)


def describe(faces: FaceSet) -> str:
    """``"120 faces in 100 images"``."""
    images = len(set(file_keys(faces)))
    return f"{len(faces)} face(s) in {images} image(s)"
