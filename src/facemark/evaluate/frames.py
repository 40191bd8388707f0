"""Which frames a model is scored on: a labelled folder, a label set or a dataset split.

Every source but ``split="val"`` is one set for all models; ``val`` depends on each model's
training config (the persons it held out), so the choice is made per model and each distinct
set is loaded once (:class:`_FrameSource`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facemark.config import SPLIT
from facemark.errors import DataError, UsageError
from facemark.shape import NUM_POINTS

if TYPE_CHECKING:
    from facemark.data import FaceSet

SPLITS = ("val", "test")
#: Training defaults for the validation split, used when a model carries no training config.
VAL_DEFAULTS = SPLIT.to_dict()


def load_labeled(images_dir: str | Path, labels_csv: str | Path, progress: bool = False) -> FaceSet:
    """A labelled folder for evaluation, strictly checked.

    Training may skip a bad row; an evaluation silently run on fewer images than the user gave
    would report figures for a different set, so wrong column counts and missing images stop
    it with one line that says how many and which one first.
    """
    from facemark import data

    images_dir, labels_csv = Path(images_dir), Path(labels_csv)
    if not images_dir.is_dir():
        raise DataError(f"image folder not found: {images_dir}")
    names, _, skipped = data.read_keypoints_csv(labels_csv)
    bad = [s for s in skipped if "values instead of" in s.reason]
    if bad:
        raise DataError(
            f"{labels_csv}: {len(bad)} row(s) do not have 1 + {2 * NUM_POINTS} columns "
            f"(name,x0,y0,...,x67,y67); first: '{bad[0].name}' has {bad[0].reason}"
        )
    missing = [n for n in names if not (images_dir / n).is_file()]
    if missing:
        raise DataError(
            f"{len(missing)} of {len(names)} image(s) listed in {labels_csv.name} are missing "
            f"from {images_dir} (first: {missing[0]})"
        )
    return data.load_labeled_folder(images_dir, labels_csv, progress=progress)


def load_split(
    split: str,
    split_settings: dict[str, Any] | None = None,
    root: str | Path | None = None,
    limit: int | None = None,
    progress: bool = False,
) -> FaceSet:
    """The ``val`` or ``test`` frames of the installed dataset (``val`` per ``split_settings``)."""
    from facemark import data

    if split not in SPLITS:
        raise UsageError(f"--split must be one of {', '.join(SPLITS)}, not '{split}'")
    settings = {**VAL_DEFAULTS, **(split_settings or {})}
    return data.load_split(split, root=root, progress=progress, limit=limit, **settings)


def split_settings_from_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """The validation-split settings a model was trained with (empty when unknown).

    A run's held-out persons depend on ``val_fraction``, ``seed`` and ``val_by``; evaluating
    its ``val`` figures on any other split would mix in frames it trained on.
    """
    config = config or {}
    out: dict[str, Any] = {}
    for key in VAL_DEFAULTS:
        if config.get(key) is not None:
            out[key] = config[key]
    return out


class _FrameSource:
    """The frames each model is scored on, each set loaded once.

    Only ``split="val"`` can differ between models (their training configs may hold out
    different persons); everything else is one set for all.
    """

    def __init__(
        self, faces, images, labels, split, root, limit, explicit, progress, data=None
    ) -> None:
        self.faces, self.images, self.labels, self.data = faces, images, labels, data
        self.split, self.root, self.limit, self.progress = split, root, limit, progress
        self.explicit = {k: v for k, v in explicit.items() if v is not None}
        self._sets: dict[tuple, Any] = {}

    def preload(self) -> None:
        """Load the frames now when they do not depend on a model's training config."""
        if self.faces is None and (
            self.images is not None or self.data is not None or self.split != "val"
        ):
            self.frames_for({})

    def frames_for(self, config: dict[str, Any]) -> tuple[Any, str, dict[str, Any] | None]:
        """(FaceSet, split label, val-split settings or None) for a model's training config."""
        if self.faces is not None:
            return self.faces, "custom", None
        if self.images is not None:
            if "folder" not in self._sets:
                self._sets["folder"] = load_labeled(
                    self.images, self.labels, progress=self.progress
                )
            return self._sets["folder"], f"folder:{self.images}", None
        if self.data is not None:
            if "data" not in self._sets:
                from facemark.data import open_labels

                labels = open_labels(self.data, progress=self.progress)
                self._sets["data"] = labels.faces(limit=self.limit)
            return self._sets["data"], f"data:{self.data}", None
        settings = None
        if self.split == "val":
            settings = {**VAL_DEFAULTS, **split_settings_from_config(config), **self.explicit}
        key = (self.split, tuple(sorted((settings or {}).items())))
        if key not in self._sets:
            self._sets[key] = load_split(
                self.split, settings, root=self.root, limit=self.limit, progress=self.progress
            )
        return self._sets[key], self.split, settings


def check_inputs(
    split: str | None,
    images: Any = None,
    labels: Any = None,
    data: Sequence[Any] = (),
) -> None:
    """The ways of naming frames that exclude each other (``split`` None: not given)."""
    if (images is None) != (labels is None):
        raise UsageError("--images and --labels go together: a folder of images and its CSV")
    if images is not None and split is not None:
        raise UsageError("use either --split or --images/--labels, not both")
    if images is not None and data:
        raise UsageError("use either --data or --images/--labels, not both")
