"""``--detector boxes:FILE``: faces where the user says they are.

For boxes from another detector, a labelling tool or an earlier run: a JSON file mapping each
image to its boxes (``{"photos/a.jpg": [[x0, y0, x1, y1], ...]}``, an optional fifth number
being the score) or a CSV with the header ``image,x0,y0,x1,y1[,score]``.  Boxes are facemark
face boxes (brows-raised keypoint boxes, like the ``box`` of annotate's output, so an edited
``annotations.jsonl`` box can be fed back), in pixels of the image as a viewer shows it.

An image is found by the path the user gave, then by its normalised path, then by its file
name when that is unique in the file; an image the file does not list has no faces.
"""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facemark.detectors.base import Detections, Detector, DetectorConfig
from facemark.errors import DataError, UsageError
from facemark.files import sha256_file

PREFIX = "boxes:"


class BoxesDetector(Detector):
    """Reads every image's boxes from a JSON or CSV file, once."""

    name = "boxes"
    #: The boxes are in full-size pixels: the image must not be reduced first.
    accepts_reduced = False
    needs_confirmation = False

    def __init__(self, path: str | os.PathLike, config: DetectorConfig | None = None) -> None:
        super().__init__(config)
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise UsageError(f"boxes file not found: {self.path}")
        self.table = read_boxes(self.path)
        self._by_name: dict[str, list[str]] = defaultdict(list)
        for key in self.table:
            self._by_name[os.path.basename(key)].append(key)
        self._digest = sha256_file(self.path)[:12]

    @property
    def version(self) -> str:
        return f"{self.path.name}@{self._digest}"

    def lookup(self, name: str | None) -> np.ndarray:
        """The boxes ``(F, 5)`` (x0, y0, x1, y1, score) listed for image ``name``."""
        if name is None:
            raise UsageError("the boxes detector needs image paths, not bare pixel arrays")
        for key in (name, os.path.normpath(name)):
            if key in self.table:
                return self.table[key]
        keys = self._by_name.get(os.path.basename(name), [])
        return self.table[keys[0]] if len(keys) == 1 else np.zeros((0, 5), np.float32)

    def detect_batch(
        self,
        images: Sequence[np.ndarray],
        names: Sequence[str | None] | None = None,
        sizes: Sequence[tuple[int, int]] | None = None,
    ) -> list[Detections]:
        names = list(names) if names is not None else [None] * len(images)
        out = []
        for name in names:
            rows = self.lookup(name)
            found = Detections(rows[:, :4].copy(), rows[:, 4].copy())
            out.append(found.select(found.scores >= self.config.threshold).finish(self.config))
        return out


def read_boxes(path: Path) -> dict[str, np.ndarray]:
    """``{image: (F, 5) float32}`` from a boxes file; a malformed one is one DataError line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read boxes file {path}: {exc}") from None
    raw: dict[str, list] = defaultdict(list)
    if path.suffix.lower() == ".csv":
        reader = csv.reader(text.splitlines())
        header = [h.strip().lower() for h in next(reader, [])]
        if header[:5] != ["image", "x0", "y0", "x1", "y1"]:
            raise DataError(f"{path}: the CSV header must be image,x0,y0,x1,y1[,score]")
        for line, row in enumerate(reader, start=2):
            if row:
                raw[row[0]].append((line, row[1:]))
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DataError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise DataError(f"{path}: expected a JSON object mapping each image to its boxes")
        for image, boxes in data.items():
            if not isinstance(boxes, list):
                raise DataError(f"{path}: the boxes of {image!r} are not a list")
            raw[image] += [(image, b) for b in boxes]
    return {image: _rows(path, entries) for image, entries in raw.items()}


def _rows(path: Path, entries: list) -> np.ndarray:
    out = np.zeros((len(entries), 5), np.float32)
    for k, (where, values) in enumerate(entries):
        try:
            numbers = [float(v) for v in values]
        except (TypeError, ValueError):
            numbers = []
        if len(numbers) not in (4, 5) or not np.isfinite(numbers).all():
            raise DataError(f"{path}: box of {where!r} must be 4 numbers (x0, y0, x1, y1) or 5")
        x0, y0, x1, y1 = numbers[:4]
        if x1 <= x0 or y1 <= y0:
            raise DataError(f"{path}: box of {where!r} has x1 <= x0 or y1 <= y0")
        out[k] = [x0, y0, x1, y1, numbers[4] if len(numbers) == 5 else 1.0]
    return out
