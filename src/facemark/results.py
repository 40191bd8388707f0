"""What facemark finds, as objects that write themselves out.

A :class:`Face` is one face; an :class:`ImageResult` is one image (or one video frame) with
its faces, or with the ``error`` that kept it from being read.  ``to_dict()`` gives exactly
the line ``facemark annotate`` writes to annotations.jsonl, so the JSONL, the Python API and
the Ray/Dask recipes all produce the same records.  :func:`arrow_schema` is the table form
of those records (one row per image, faces nested), for Parquet and dataframe engines;
Arrow's type inference alone cannot read them reliably (``faces: []`` and an all-null
``pose`` column have no type to infer).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from facemark.confidence import low_confidence
from facemark.errors import UsageError
from facemark.pose import Pose


@dataclass(frozen=True)
class Face:
    """One face: where it is, how sure the detector is, its 68 points and their confidence,
    and its head pose (:func:`facemark.pose.head_pose`; ``None`` when not computed)."""

    box: np.ndarray  #: (4,) x0, y0, x1, y1 in image pixels (facemark face box)
    score: float  #: the detector's calibrated score in [0, 1]
    keypoints: np.ndarray  #: (68, 2) x, y in image pixels, 0-based pixel centres
    confidence: np.ndarray  #: (68,) the landmark model's confidence in [0, 1]
    pose: Pose | None = None  #: yaw, pitch, roll (degrees), rvec, tvec; see facemark.pose
    #: probability that this is a human face (:mod:`facemark.faceness`); None: not checked
    faceness: float | None = None
    #: the video track this face belongs to (None in photos)
    track: int | None = None

    @property
    def low_confidence(self) -> bool:
        """Whether the mean point confidence is below :data:`facemark.confidence.LOW_CONFIDENCE`
        (the points are less likely to be right)."""
        return low_confidence(self.confidence)

    def to_dict(self) -> dict[str, Any]:
        """The face's JSONL record (coordinates to 2 decimals, scores to 4; ``track`` first
        in videos, ``pose`` last, each only when set)."""
        record: dict[str, Any] = {} if self.track is None else {"track": int(self.track)}
        record |= {
            "box": np.round(np.asarray(self.box, np.float64), 2).tolist(),
            "score": round(float(self.score), 4),
            "keypoints": np.round(np.asarray(self.keypoints, np.float64), 2).tolist(),
            "confidence": np.round(np.asarray(self.confidence, np.float64), 4).tolist(),
            "low_confidence": self.low_confidence,
        }
        if self.faceness is not None:
            record["faceness"] = round(float(self.faceness), 4)
        if self.pose is not None:
            record["pose"] = self.pose.to_dict()
        return record


@dataclass(frozen=True)
class ImageResult:
    """One image's faces, or why it could not be read (``error``; then no size, no faces).

    ``source`` is the image as it was given (a path; a name, or None for pixels given in
    memory), or the video for a frame (``frame`` and ``timestamp`` set).
    """

    source: str | None
    width: int | None = None
    height: int | None = None
    faces: tuple[Face, ...] = ()
    detector: Mapping[str, Any] | None = None  #: name and version of what found the faces
    error: str | None = None
    frame: int | None = None  #: video frame index (None for photos)
    timestamp: float | None = None  #: seconds from the video's start

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The annotations.jsonl line: ``image`` (or ``video``, ``frame``, ``timestamp``),
        ``width``, ``height``, ``detector`` when known, ``faces``; a failed image is
        ``{"image", "error"}``."""
        if self.frame is not None:
            record: dict[str, Any] = {
                "video": self.source,
                "frame": int(self.frame),
                "timestamp": round(float(self.timestamp or 0.0), 6),
            }
        else:
            record = {"image": self.source}
        if self.error is not None:
            return record | {"error": self.error}
        record |= {"width": int(self.width or 0), "height": int(self.height or 0)}
        if self.detector is not None:
            record["detector"] = dict(self.detector)
        record["faces"] = [face.to_dict() for face in self.faces]
        return record


# --------------------------------------------------------------------------- Arrow


def require_pyarrow() -> Any:
    """pyarrow, or one line naming the extra (checked before a run that will need it)."""
    try:
        import pyarrow
    except ImportError:
        raise UsageError(
            "Parquet and Arrow output need pyarrow: pip install 'facemark[parquet]'"
        ) from None
    return pyarrow


def arrow_schema() -> Any:
    """The Arrow schema of annotation records: one row per image or video frame, faces
    nested.  Fields a record lacks (``video`` for a photo, ``error`` for a good image,
    ``pose`` when not computed) are null."""
    pa = require_pyarrow()
    floats = pa.list_(pa.float64())
    pose = pa.struct(
        [
            ("yaw", pa.float64()),
            ("pitch", pa.float64()),
            ("roll", pa.float64()),
            ("rvec", floats),
            ("tvec", floats),
        ]
    )
    face = pa.struct(
        [
            ("track", pa.int64()),
            ("box", floats),
            ("score", pa.float64()),
            ("keypoints", pa.list_(floats)),
            ("confidence", floats),
            ("low_confidence", pa.bool_()),
            ("faceness", pa.float64()),
            ("pose", pose),
        ]
    )
    detector = pa.struct([("name", pa.string()), ("version", pa.string())])
    return pa.schema(
        [
            ("image", pa.string()),
            ("video", pa.string()),
            ("frame", pa.int64()),
            ("timestamp", pa.float64()),
            ("width", pa.int64()),
            ("height", pa.int64()),
            ("detector", detector),
            ("faces", pa.list_(face)),
            ("error", pa.string()),
        ]
    )


def to_arrow(records: Iterable[Mapping[str, Any] | ImageResult]) -> Any:
    """A ``pyarrow.Table`` of records (dicts as in annotations.jsonl, or ImageResults) in
    :func:`arrow_schema`."""
    pa = require_pyarrow()
    rows = [r.to_dict() if isinstance(r, ImageResult) else r for r in records]
    return pa.Table.from_pylist(rows, schema=arrow_schema())


def write_parquet(records: Iterable[Mapping[str, Any] | ImageResult], path: Any) -> int:
    """Write records as Parquet in :func:`arrow_schema` (atomically: a temporary name,
    renamed when complete); returns the number of rows."""
    from facemark.files import atomic_write

    table = to_arrow(records)
    import pyarrow.parquet as pq

    with atomic_write(path) as fh:
        pq.write_table(table, fh)
    return table.num_rows
