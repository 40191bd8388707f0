"""One entry point for labelled faces: :func:`open_labels` reads any ``--data`` path (a Udacity
root, a ``.pts`` folder, an annotations JSONL, a COCO JSON, a keypoints CSV) or the installed
dataset, and its :class:`LabelSet` gives the train/val/test parts and the torch view.

Callers no longer ask which format they hold before choosing a loader: the format is found
once (:func:`facemark.data.formats.detect_format`), and each part is made as training has
always made it: a Udacity root by its identity split, any other format by image file (or by
photo with ``val_by="photo"``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facemark.config import SPLIT, SplitConfig
from facemark.data.faces import FaceSet, random_pick, split_faces
from facemark.data.formats import detect_format, fingerprint, load_format
from facemark.data.udacity import SPLITS, load_split
from facemark.errors import UsageError

if TYPE_CHECKING:
    from facemark.data.torch_view import LandmarkDataset
    from facemark.transforms import AugmentConfig


def _split_config(config: SplitConfig | Mapping[str, Any] | None) -> SplitConfig:
    if config is None:
        return SPLIT
    return config if isinstance(config, SplitConfig) else SplitConfig(**config)


class LabelSet:
    """Labelled faces in one place, whatever their format (made by :func:`open_labels`).

    ``path`` is None for the installed dataset; ``format`` is one of
    :data:`facemark.data.formats.FORMATS`.  Every face of a format other than ``udacity`` is
    decoded once, however many parts are asked for.
    """

    def __init__(
        self,
        path: Path | None,
        fmt: str,
        *,
        images: str | os.PathLike | None = None,
        progress: bool = False,
    ) -> None:
        self.path = path
        self.format = fmt
        self.images = images  #: a CSV's image folder (default: found beside the CSV)
        self.progress = progress
        self._all: FaceSet | None = None

    def __repr__(self) -> str:
        return f"LabelSet({str(self.path) if self.path else 'installed dataset'}, {self.format})"

    @property
    def is_udacity(self) -> bool:
        """A Udacity dataset root (or the installed dataset): it has its own test split."""
        return self.format == "udacity"

    def faces(self, *, limit: int | None = None, limit_seed: int = 0) -> FaceSet:
        """Every usable face (of a Udacity root: its training CSV, ``trainval``); ``limit``
        keeps a random ``limit`` of them (by ``limit_seed``) before any image is decoded."""
        if self.is_udacity:
            return self.split("trainval", limit=limit, limit_seed=limit_seed)
        if limit is not None:
            return self._load(limit, limit_seed)
        if self._all is None:
            self._all = self._load(None, 0)
        return self._all

    def _load(self, limit: int | None, limit_seed: int) -> FaceSet:
        assert self.path is not None  # only the installed dataset has no path, and it is udacity
        return load_format(
            self.path,
            self.format,
            images=self.images,
            progress=self.progress,
            limit=limit,
            limit_seed=limit_seed,
        )

    def split(
        self,
        name: str,
        split_config: SplitConfig | Mapping[str, Any] | None = None,
        *,
        limit: int | None = None,
        limit_seed: int = 0,
    ) -> FaceSet:
        """The ``train``, ``val``, ``trainval`` or ``test`` faces, held out as ``split_config``
        (:data:`facemark.config.SPLIT` by default, or a mapping of its fields) says.

        A Udacity root: :func:`facemark.data.udacity.load_split` (by identity, and its own
        test CSV).  Any other format: ``train``/``val`` split by image file, or by photo with
        ``val_by="photo"`` (:func:`facemark.data.faces.split_faces`); it has no test part of
        its own, so ``test`` and ``trainval`` are all of its faces (as ``--val-data`` reads
        it).  ``limit`` keeps a random ``limit`` of the part (by ``limit_seed``).
        """
        cfg = _split_config(split_config)
        if self.is_udacity:
            return load_split(
                name,
                self.path,
                cfg.val_fraction,
                cfg.seed,
                cfg.val_by,
                progress=self.progress,
                limit=limit,
                limit_seed=limit_seed,
            )
        if name not in SPLITS:
            raise UsageError(f"split must be one of {', '.join(SPLITS)}, not {name!r}")
        if name in ("trainval", "test"):
            return self.faces(limit=limit, limit_seed=limit_seed)
        train, val = split_faces(self.faces(), cfg.val_fraction, cfg.seed, cfg.val_by)
        part = train if name == "train" else val
        pick = random_pick(len(part), limit, limit_seed)
        return part if pick is None else part.subset(pick)

    def landmark_dataset(
        self,
        name: str,
        img_size: int,
        *,
        augment: bool,
        split_config: SplitConfig | Mapping[str, Any] | None = None,
        seed: int = 0,
        config: AugmentConfig | None = None,
        limit: int | None = None,
        limit_seed: int = 0,
    ) -> LandmarkDataset:
        """The torch view of :meth:`split` ``name``: face crops of ``img_size`` as the
        landmark network sees them (:class:`facemark.data.torch_view.LandmarkDataset`)."""
        from facemark.data.torch_view import LandmarkDataset  # torch: only for this view

        faces = self.split(name, split_config, limit=limit, limit_seed=limit_seed)
        return LandmarkDataset(faces, img_size, augment, seed=seed, config=config)

    def fingerprint(self) -> str:
        """A sha256 that changes when these labels do (:func:`.formats.fingerprint`)."""
        return fingerprint(self.path)


def open_labels(
    path: str | os.PathLike | None = None,
    *,
    images: str | os.PathLike | None = None,
    progress: bool = False,
) -> LabelSet:
    """The labelled faces of ``path`` in any format ``--data`` reads (None: the installed
    dataset).  The format is detected now (a :class:`~facemark.errors.DataError` when ``path``
    holds none, with a note when a folder holds several); images are decoded when a part is
    asked for.  ``images``: where a CSV's images are; ``progress``: show bars while decoding.
    """
    if path is None:
        return LabelSet(None, "udacity", progress=progress)
    path = Path(path).expanduser()
    return LabelSet(path, detect_format(path, warn=True), images=images, progress=progress)
