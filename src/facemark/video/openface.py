"""The per-video CSV in OpenFace's FeatureExtraction layout (landmarks and pose), so tools
made for OpenFace's output read facemark's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from facemark.pose import Pose

#: The OpenFace FeatureExtraction columns facemark writes (landmarks and pose).
CSV_COLUMNS = (
    ["frame", "face_id", "timestamp", "confidence", "success"]
    + ["pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz"]
    + [f"x_{i}" for i in range(68)]
    + [f"y_{i}" for i in range(68)]
)


def _pose_cells(pose: Pose | None) -> list[str]:
    """pose_Tx..Tz (mm) and pose_Rx..Rz (radians) as OpenFace writes them
    (:meth:`Pose.openface`); empty cells without a valid pose."""
    if pose is None or not pose.valid:
        return [""] * 6
    cells = pose.openface()
    values = [float(cells[f"pose_{k}"]) for k in ("Tx", "Ty", "Tz", "Rx", "Ry", "Rz")]
    return [f"{v:.1f}" for v in values[:3]] + [f"{v:.4f}" for v in values[3:]]


def csv_rows(record: dict[str, Any], poses: list[Pose] | None = None) -> Iterator[list[str]]:
    """The OpenFace-layout rows of one frame record: one per face, or one with
    ``success`` 0 for a frame without a face."""
    frame = str(record["frame"] + 1)  # OpenFace numbers frames from 1
    stamp = f"{record['timestamp']:.3f}"
    if not record["faces"]:
        yield [frame, "", stamp, "0", "0"] + [""] * (6 + 136)
        return
    for k, face in enumerate(record["faces"]):
        kps = face["keypoints"]
        conf = sum(face["confidence"]) / len(face["confidence"])
        yield (
            [frame, str(face["track"]), stamp, f"{conf:.4f}", "1"]
            + _pose_cells(poses[k] if poses else None)
            + [f"{p[0]:.2f}" for p in kps]
            + [f"{p[1]:.2f}" for p in kps]
        )
