"""The ``jsonl`` and ``coco`` formats: label files that name their images.

``jsonl`` is facemark's ``annotations.jsonl`` as ``facemark annotate`` writes it (0-based),
every face of a record one sample; ``coco`` is a COCO keypoints JSON with the 68-point
category (see :mod:`facemark.coco`).  Both record image paths relative to somewhere else, so
both resolve them the same way (:func:`facemark.data.labels.resolve_image`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from facemark import coco
from facemark.data.faces import SkippedRow
from facemark.data.labels import Label, Labels, check_points, resolve_image
from facemark.errors import DataError
from facemark.shape import NUM_POINTS


def _faces_to_labels(
    entries: Iterable[tuple[str, Sequence[np.ndarray]]], base: Path, files: list[Path]
) -> Labels:
    """Labels from ``(recorded image name, [keypoints per face])``; a name seen before is
    skipped (first kept)."""
    labels: list[Label] = []
    skipped: list[SkippedRow] = []
    seen: set[str] = set()
    for name, faces in entries:
        if name in seen:
            skipped.append(SkippedRow(name, "duplicate image (first kept)"))
            continue
        seen.add(name)
        image = resolve_image(name, base)
        for k, kps in enumerate(faces):
            label = name if len(faces) == 1 else f"{name}#{k}"
            labels.append(Label(label, image, kps, name))
    return Labels(labels, skipped, files)


def read_jsonl_files(paths: Sequence[Path]) -> Labels:
    """Faces of facemark ``annotations*.jsonl`` files (0-based keypoints)."""
    entries: list[tuple[str, list[np.ndarray]]] = []
    skipped: list[SkippedRow] = []
    for path in paths:
        try:
            fh = open(path, encoding="utf-8")
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
        with fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{path.name}:{lineno}"
                try:
                    record = json.loads(line)
                except ValueError:
                    skipped.append(SkippedRow(where, "line is not JSON"))
                    continue
                if not isinstance(record, dict) or not isinstance(record.get("image"), str):
                    skipped.append(SkippedRow(where, "line is not an image record"))
                    continue
                faces: list[np.ndarray] = []
                raw_faces = record.get("faces")
                if not isinstance(raw_faces, list) or not raw_faces:
                    skipped.append(SkippedRow(record["image"], "image with no face"))
                    continue
                bad = None
                for face in raw_faces:
                    try:
                        kps = np.array(face["keypoints"], dtype=np.float64)
                    except (TypeError, KeyError, ValueError):
                        bad = "face without keypoints"
                        break
                    if kps.shape != (NUM_POINTS, 2):
                        n = kps.shape[0] if kps.ndim else 0
                        bad = f"{n} points instead of {NUM_POINTS}"
                        break
                    bad = check_points(kps)
                    if bad:
                        break
                    faces.append(kps.astype(np.float32))
                if bad:  # one bad face: drop the record, or the image's other faces shift
                    skipped.append(SkippedRow(record["image"], bad))
                    continue
                entries.append((record["image"], faces))
    labels = _faces_to_labels(entries, paths[0].parent, list(paths))
    labels.skipped[:0] = skipped
    return labels


def read_coco_file(path: Path) -> Labels:
    """Faces of a COCO keypoints JSON (see :mod:`facemark.coco`; 0-based keypoints)."""
    read = coco.read_coco(path)
    grouped: dict[str, list[np.ndarray]] = {}
    skipped = [SkippedRow(name, reason) for name, reason in read.skipped]
    for face in read.faces:
        reason = check_points(face.keypoints)
        if reason:
            skipped.append(SkippedRow(face.file_name, reason))
            continue
        grouped.setdefault(face.file_name, []).append(face.keypoints)
    labels = _faces_to_labels(grouped.items(), path.parent, [path])
    labels.skipped[:0] = skipped
    return labels
