"""The record of one frame: each track's reported (smoothed) points as a face, with its
head pose: what the JSONL, the CSV, the overlay and ``on_record`` all get."""

from __future__ import annotations

from typing import Any

import numpy as np

from facemark.pose import Pose, head_pose
from facemark.results import Face, ImageResult
from facemark.video.decoding import Frame
from facemark.video.tracker import Track, face_box


def _points(track: Track) -> np.ndarray:
    """The keypoints a track reports: smoothed when smoothing is on."""
    return track.smoothed if track.smoothed is not None else track.keypoints


def poses_of(tracks: list[Track], size: tuple[int, int]) -> list[Pose]:
    """The head pose of each track's reported (smoothed) points."""
    return [head_pose(np.asarray(_points(track), np.float64), size) for track in tracks]


def frame_record(
    video: str,
    frame: Frame,
    tracks: list[Track],
    detector: dict[str, Any] | None,
    poses: list[Pose] | None = None,
) -> ImageResult:
    """The result of one frame: each track's reported points as a face (its box drawn
    around the points); ``poses`` (from :func:`poses_of`) adds each face's ``pose``."""
    h, w = frame.image.shape[:2]
    faces = tuple(
        Face(
            face_box(_points(track)).astype(np.float64),
            track.score,
            np.asarray(_points(track), np.float64),
            track.confidence,
            poses[k] if poses else None,
            track.faceness,
            track.id,
        )
        for k, track in enumerate(tracks)
    )
    return ImageResult(
        video, int(w), int(h), faces, detector, frame=frame.index, timestamp=frame.timestamp
    )
