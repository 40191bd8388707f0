"""COCO keypoints JSON with the 68 iBUG points: the writer (from an annotate JSONL) and the reader.

The layout, one category for the 68-point face::

    {"images": [{"id": 1, "file_name": "photos/a.jpg", "width": 640, "height": 480}],
     "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                      "bbox": [x, y, w, h], "keypoints": [x0, y0, v0, ... x67, y67, v67],
                      "num_keypoints": 68, "score": 0.98}],
     "categories": [{"id": 1, "name": "face", "supercategory": "person",
                     "keypoints": [68 names], "skeleton": [[i, j], ...]}]}

``v`` is COCO's visibility flag: 2 visible, 1 labelled but not visible, 0 not labelled.  The
skeleton's indices are 1-based, as in COCO.

**Coordinates.** COCO keypoints are 0-based pixel coordinates in which the integer ``i`` is
the centre of pixel ``i`` (detectron2, for one, adds 0.5 to them to get continuous
coordinates).  That is exactly facemark's own convention, so keypoints are written and read
as they are, with no :data:`facemark.shape.LABEL_ORIGIN` shift (unlike ``.pts`` and the CSV,
which are 1-based).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facemark.draw import CONTOURS
from facemark.errors import DataError
from facemark.files import atomic_write, read_jsonl
from facemark.shape import NUM_POINTS

COCO_NAME = "annotations.coco.json"
CATEGORY_ID = 1


def _names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}_{i}" for i in range(1, count + 1)]


#: The iBUG 300-W point names (left/right of the subject, as in the markup's definition).
POINT_NAMES: list[str] = (
    _names("jaw", 17)
    + _names("right_eyebrow", 5)
    + _names("left_eyebrow", 5)
    + _names("nose_bridge", 4)
    + _names("nose_base", 5)
    + _names("right_eye", 6)
    + _names("left_eye", 6)
    + _names("outer_lip", 12)
    + _names("inner_lip", 8)
)


def _skeleton() -> list[list[int]]:
    """Edges of the lines facemark draws through the points, 1-based like COCO's."""
    edges: list[list[int]] = []
    for start, stop, closed in CONTOURS:
        edges += [[i + 1, i + 2] for i in range(start, stop - 1)]
        if closed:
            edges.append([stop, start + 1])
    return edges


SKELETON: list[list[int]] = _skeleton()


def category() -> dict[str, Any]:
    """The one COCO category of a facemark file."""
    return {
        "id": CATEGORY_ID,
        "name": "face",
        "supercategory": "person",
        "keypoints": list(POINT_NAMES),
        "skeleton": [list(e) for e in SKELETON],
    }


# --------------------------------------------------------------------------- writing


def _round(value: float) -> float:
    return round(float(value), 2)


def write_coco(jsonl_path: Path, out_path: Path) -> int:
    """Write a COCO keypoints JSON (``annotations.coco.json``) from an annotate JSONL.

    Built from the JSONL rather than alongside it, like the CSV, so it always agrees with it,
    also after a resumed run.  Every image of the JSONL is listed (those without faces too);
    each face is one annotation: ``bbox`` (and ``area``) from its ``box``, all 68 points with
    ``v = 2``, its ``score``, ``iscrowd`` 0.  ``file_name`` is the image path as the JSONL
    records it.  Written atomically; returns the number of annotations.
    """
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for record in read_jsonl(jsonl_path):
        image_id = len(images) + 1
        images.append(
            {
                "id": image_id,
                "file_name": record["image"],
                "width": int(record.get("width") or 0),
                "height": int(record.get("height") or 0),
            }
        )
        for face in record.get("faces") or []:
            x0, y0, x1, y1 = (float(v) for v in face["box"])
            keypoints: list[float] = []
            for x, y in face["keypoints"]:
                keypoints += [_round(x), _round(y), 2]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": CATEGORY_ID,
                    "bbox": [_round(x0), _round(y0), _round(x1 - x0), _round(y1 - y0)],
                    # what COCOeval's keypoint OKS needs besides the points
                    "area": _round((x1 - x0) * (y1 - y0)),
                    "iscrowd": 0,
                    "keypoints": keypoints,
                    "num_keypoints": len(face["keypoints"]),
                    "score": round(float(face.get("score", 1.0)), 4),
                }
            )
    document = {"images": images, "annotations": annotations, "categories": [category()]}
    # Undecodable file names (lone surrogates) as \\u escapes, exactly as in the JSONL.
    with atomic_write(out_path, "w", errors="backslashreplace") as fh:
        json.dump(document, fh, ensure_ascii=False)
        fh.write("\n")
    return len(annotations)


# --------------------------------------------------------------------------- reading


@dataclass
class CocoFace:
    """One usable annotation: its image as the file names it, and (68, 2) 0-based keypoints."""

    file_name: str
    keypoints: np.ndarray
    annotation_id: Any = None


@dataclass
class CocoLabels:
    faces: list[CocoFace]
    #: (name, reason) of each annotation that was not usable.
    skipped: list[tuple[str, str]] = field(default_factory=list)


def looks_like_coco(document: Any) -> bool:
    """A COCO document: a JSON object with ``images`` and ``annotations`` lists."""
    return (
        isinstance(document, dict)
        and isinstance(document.get("images"), list)
        and isinstance(document.get("annotations"), list)
    )


def _face_category(path: Path, document: dict[str, Any]) -> set[Any]:
    """The ids of the 68-point categories; a DataError when the file has none."""
    categories = document.get("categories")
    if not isinstance(categories, list) or not categories:
        raise DataError(f"{path}: a COCO keypoints file needs a 'categories' entry")
    ids: set[Any] = set()
    counts: list[str] = []
    for cat in categories:
        if not isinstance(cat, dict):
            continue
        names = cat.get("keypoints")
        n = len(names) if isinstance(names, list) else 0
        if n == NUM_POINTS:
            ids.add(cat.get("id"))
        else:
            counts.append(f"'{cat.get('name', cat.get('id'))}' has {n}")
    if not ids:
        raise DataError(
            f"{path}: no COCO category with {NUM_POINTS} keypoints "
            f"({', '.join(counts) or 'none has keypoints'}); facemark reads the 68-point markup"
        )
    return ids


def read_coco(path: str | os.PathLike) -> CocoLabels:
    """The 68-point faces of a COCO keypoints JSON (see the module docstring).

    Annotations of other categories are ignored; one whose keypoints are not 68 triples,
    are not numbers, or has a point not labelled (``v = 0``) is skipped with its reason.
    Points labelled but not visible (``v = 1``) are used.  Raises :class:`DataError` for a
    file that is not COCO JSON or has no 68-point category.
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise DataError(f"{path} is not valid JSON: {exc}") from None
    if not looks_like_coco(document):
        raise DataError(f"{path}: not a COCO keypoints file (no 'images' and 'annotations')")
    face_ids = _face_category(path, document)
    files: dict[Any, str] = {}
    for image in document["images"]:
        if isinstance(image, dict) and isinstance(image.get("file_name"), str):
            files[image.get("id")] = image["file_name"]
    faces: list[CocoFace] = []
    skipped: list[tuple[str, str]] = []
    for ann in document["annotations"]:
        if not isinstance(ann, dict) or ann.get("category_id") not in face_ids:
            continue
        name = files.get(ann.get("image_id"))
        label = name or f"annotation {ann.get('id')}"
        if name is None:
            skipped.append((label, "annotation of an image not in 'images'"))
            continue
        values = ann.get("keypoints")
        if not isinstance(values, list) or len(values) != 3 * NUM_POINTS:
            n = len(values) // 3 if isinstance(values, list) else 0
            skipped.append((label, f"{n} keypoints instead of {NUM_POINTS}"))
            continue
        try:
            triples = np.array(values, dtype=np.float64).reshape(NUM_POINTS, 3)
        except (TypeError, ValueError):
            skipped.append((label, "non-numeric keypoint"))
            continue
        if (triples[:, 2] == 0).any():
            skipped.append((label, "keypoints not labelled (v=0)"))
            continue
        if not all(math.isfinite(v) for v in triples[:, :2].ravel()):
            skipped.append((label, "missing or NaN keypoints"))
            continue
        faces.append(CocoFace(name, triples[:, :2].astype(np.float32), ann.get("id")))
    return CocoLabels(faces, skipped)
