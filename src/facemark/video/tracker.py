"""Faces across frames: which detector and landmark runs a frame gets, and track ids.

The detector runs every ``detect_every`` kept frames and whenever a track was lost; in
between, each face's crop box comes from its keypoints in the previous frame
(``transforms.face_box_from_keypoints``) and only the landmark model runs.  On detection
frames, IoU matching keeps the track ids.  A track ends when the landmark model's mean
confidence falls below the detector config's ``confirm``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from facemark.boxes import box_iou
from facemark.confidence import confident
from facemark.images import Photo
from facemark.video.config import VideoConfig
from facemark.video.smoothing import OneEuro
from facemark.video.timing import Timing

if TYPE_CHECKING:
    from facemark.pipeline import FaceMarker

#: IoU a detection needs with a track's box to continue that track.
MATCH_IOU = 0.3
#: Two tracks whose boxes overlap this much follow one face: the younger one ends.
DUPLICATE_IOU = 0.6
#: A scene cut: the mean absolute difference (0-255) of two consecutive frames' 64x48
#: grayscale thumbnails above this ends every track (a new face where the old one was
#: gets a new id instead of inheriting it).  Compression noise and a 2 px/frame pan give
#: about 1, a cut between two shots 20 and more.
CUT_DIFF = 12.0


def face_box(kps: np.ndarray) -> np.ndarray:
    """``transforms.face_box_from_keypoints`` (imported late: transforms loads torch, and
    the CLI imports ``facemark.video`` for its defaults)."""
    from facemark.transforms import face_box_from_keypoints

    return face_box_from_keypoints(kps)


@dataclass
class Track:
    id: int
    keypoints: np.ndarray  #: (68, 2) raw (unsmoothed) keypoints of the last frame
    confidence: np.ndarray
    box: np.ndarray  #: crop box the last keypoints were found in
    score: float  #: detector score of the detection that started or last confirmed it
    scale: float  #: face size at the start (normalises the filter)
    #: the face check's "human face" probability at the last detection (None: not checked)
    faceness: float | None = None
    filter: OneEuro | None = None
    smoothed: np.ndarray | None = None


class Tracker:
    """Faces across frames: detection every ``detect_every`` frames or after a loss,
    landmark-only tracking in between, IoU matching for ids, One-Euro smoothing."""

    def __init__(self, marker: FaceMarker, config: VideoConfig, timing: Timing) -> None:
        self.marker, self.config, self.timing = marker, config, timing
        det = marker.detector
        checks = det is not None and det.needs_confirmation
        self.confirm = det.config.confirm if checks else 0.0
        self.least_faceness = marker.faceness_threshold if checks else 0.0
        self.tracks: list[Track] = []
        self.next_id = 0
        self.since_detect = 0
        self.lost = True  # no face yet: detect on the first frame
        self.thumb: np.ndarray | None = None

    def step(self, image: np.ndarray, t: float) -> list[Track]:
        photo = Photo.from_image(image)
        thumb = np.asarray(photo.view(0)[0].convert("L").resize((64, 48)), np.float32)
        if self.thumb is not None and np.abs(thumb - self.thumb).mean() > CUT_DIFF:
            self.tracks, self.lost = [], True  # a scene cut: whoever is here now is new
        self.thumb = thumb
        detect = self.lost or self.since_detect % self.config.detect_every == 0
        if detect:
            self._detect(photo)
            self.since_detect = 1
        else:
            self._follow(photo)
            self.since_detect += 1
        for track in self.tracks:
            track.smoothed = self._smooth(track, t)
        return list(self.tracks)

    def _detect(self, photo: Photo) -> None:
        clock = time.perf_counter()
        found = self.marker.detect([photo])[0]
        self.timing.detect += time.perf_counter() - clock
        boxes = np.asarray(found.boxes, np.float64).reshape(-1, 4)
        # which track each detection continues (greedy by IoU)
        owner: list[Track | None] = [None] * len(boxes)
        if self.tracks and len(boxes):
            prev = np.stack([face_box(t.keypoints) for t in self.tracks])
            iou = box_iou(boxes, prev)
            taken: set[int] = set()
            for flat in np.argsort(-iou, axis=None):
                d, k = np.unravel_index(flat, iou.shape)
                if iou[d, k] < MATCH_IOU:
                    break
                if owner[d] is None and k not in taken:
                    owner[d], _ = self.tracks[k], taken.add(int(k))
        owned = {id(t) for t in owner if t is not None}
        # tracks the detector missed keep being followed by the landmark model
        missed = [t for t in self.tracks if id(t) not in owned]
        # a face the detector confirms keeps its crop from its own points (the same kind of
        # box, without the detector's frame-to-frame noise): no jump on detection frames
        crop = [
            boxes[d] if owner[d] is None else face_box(owner[d].keypoints)
            for d in range(len(boxes))
        ]
        crop += [face_box(t.keypoints) for t in missed]
        marks = self._landmarks(photo, crop)
        new: list[Track] = []
        for d in range(len(boxes)):
            kps, conf = marks[0][d], marks[1][d]
            fness = None if marks[2] is None else float(marks[2][d])
            # a new face must pass the face check; a followed one passed it when it started
            if not confident(conf, self.confirm) or (
                owner[d] is None and fness is not None and fness < self.least_faceness
            ):
                continue
            track = owner[d]
            if track is None:
                track = self._start(kps, conf, boxes[d], float(found.scores[d]))
            else:
                track.keypoints, track.confidence, track.box = kps, conf, crop[d]
                track.score = float(found.scores[d])
            track.faceness = fness
            new.append(track)
        for j, track in enumerate(missed):
            kps, conf = marks[0][len(boxes) + j], marks[1][len(boxes) + j]
            if confident(conf, self.confirm):
                track.keypoints, track.confidence, track.box = kps, conf, crop[len(boxes) + j]
                new.append(track)
        kept = self._dedupe(new)
        limit = self.marker.max_faces  # --max-faces: the best-scored faces, as for photos
        if limit is not None and len(kept) > limit:
            best = sorted(kept, key=lambda t: -t.score)[:limit]
            kept = [t for t in kept if t in best]
        self.tracks = kept
        self.lost = False

    def _follow(self, photo: Photo) -> None:
        crop = [face_box(t.keypoints) for t in self.tracks]
        kps, conf, _ = self._landmarks(photo, crop, faceness=False)
        kept = []
        for k, track in enumerate(self.tracks):
            if not confident(conf[k], self.confirm):
                self.lost = True  # detect on the next frame to find it again
                continue
            track.keypoints, track.confidence, track.box = kps[k], conf[k], crop[k]
            kept.append(track)
        self.tracks = self._dedupe(kept)
        if not self.tracks:
            self.lost = True

    def _landmarks(
        self, photo: Photo, boxes: list[np.ndarray], faceness: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Keypoints, confidences and faceness per box (None without a faceness head, or when
        not asked for: followed faces passed the check when their track started)."""
        if not boxes:
            return np.zeros((0, 68, 2)), np.zeros((0, 68)), None
        clock = time.perf_counter()
        arr = np.asarray(boxes, np.float32).reshape(-1, 4)
        if faceness:
            kps, conf, human = self.marker.marks([photo], [arr])[0]
        else:
            (kps, conf), human = self.marker.landmarks([photo], [arr])[0], None
        self.timing.landmarks += time.perf_counter() - clock
        return np.asarray(kps, np.float64), np.asarray(conf, np.float64), human

    def _start(self, kps: np.ndarray, conf: np.ndarray, box: np.ndarray, score: float) -> Track:
        face = face_box(kps)
        scale = float(max(face[2] - face[0], face[3] - face[1], 1.0))
        track = Track(self.next_id, kps, conf, box, score, scale)
        self.next_id += 1
        return track

    @staticmethod
    def _dedupe(tracks: list[Track]) -> list[Track]:
        """Two tracks on one face (after a detection): the older one stays."""
        tracks = sorted(tracks, key=lambda t: t.id)
        kept: list[Track] = []
        for track in tracks:
            box = face_box(track.keypoints)
            if kept:
                others = np.stack([face_box(k.keypoints) for k in kept])
                if box_iou(box[None], others).max() >= DUPLICATE_IOU:
                    continue
            kept.append(track)
        return kept

    def _smooth(self, track: Track, t: float) -> np.ndarray:
        if not self.config.smooth:
            return track.keypoints
        if track.filter is None:
            track.filter = OneEuro(self.config.smooth_min_cutoff, self.config.smooth_beta)
        return track.filter(track.keypoints / track.scale, t) * track.scale
