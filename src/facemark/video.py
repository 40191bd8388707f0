"""Videos: decoding (PyAV), face tracking and One-Euro smoothing, per-frame outputs.

``facemark annotate clip.mp4`` routes each video here (see :func:`annotate_video`); photos
keep their own path through ``annotator``.  How a video is marked:

* Frames are decoded with PyAV as RGB arrays, with real timestamps (``pts * time_base``, so
  variable frame rates are right) and the rotation of phone videos applied (coordinates are
  in the orientation a player shows).  ``stride`` keeps every Nth frame, ``start``/``end``
  (seconds) a span; a file cut short keeps the frames before the cut, with a warning.
* Tracking: the detector runs every ``detect_every`` kept frames and whenever a track was
  lost; in between, each face's crop box comes from its keypoints in the previous frame
  (``transforms.face_box_from_keypoints``) and only the landmark model runs.  On detection
  frames, IoU matching keeps the track ids.  A track ends when the landmark model's mean
  confidence falls below the detector config's ``confirm``.
* Smoothing: a One-Euro filter per point (driven by the timestamps), reset for every new
  track; it works in units of the face's size, so its parameters do not depend on the
  video's resolution.

Outputs (with ``--out``), next to the photos' ``annotations.jsonl``: ``<out>/<video>.jsonl``
(one record per kept frame) and, with ``--csv``, ``<out>/<video>.csv`` in OpenFace's
FeatureExtraction layout.  Both are written under a ``.partial`` name and renamed when the
video is done, so ``--skip-existing`` skips finished videos and redoes interrupted ones.
PyAV is optional: ``pip install 'facemark[video]'``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facemark.boxes import box_iou
from facemark.confidence import confident
from facemark.errors import DataError, UsageError, option
from facemark.images import Photo
from facemark.pose import Pose, head_pose
from facemark.results import Face, ImageResult

if TYPE_CHECKING:
    from facemark.pipeline import FaceMarker

#: What a folder scan picks up as a video (case-insensitive); files named explicitly are
#: probed whatever their suffix.
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm")

INSTALL_HINT = "video input needs PyAV: pip install 'facemark[video]'"

#: The OpenFace FeatureExtraction columns facemark writes (landmarks and pose).
CSV_COLUMNS = (
    ["frame", "face_id", "timestamp", "confidence", "success"]
    + ["pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz"]
    + [f"x_{i}" for i in range(68)]
    + [f"y_{i}" for i in range(68)]
)

#: IoU a detection needs with a track's box to continue that track.
MATCH_IOU = 0.3
#: Two tracks whose boxes overlap this much follow one face: the younger one ends.
DUPLICATE_IOU = 0.6
#: A scene cut: the mean absolute difference (0-255) of two consecutive frames' 64x48
#: grayscale thumbnails above this ends every track (a new face where the old one was
#: gets a new id instead of inheriting it).  Compression noise and a 2 px/frame pan give
#: about 1, a cut between two shots 20 and more.
CUT_DIFF = 12.0


@dataclass(frozen=True)
class VideoConfig:
    """Options of video inputs, declared once (``facemark annotate --help`` shows these)."""

    #: Annotate every Nth frame.
    video_stride: int = 1
    #: Start of the span to annotate, in seconds.
    start: float = 0.0
    #: End of the span to annotate, in seconds (None: to the end).
    end: float | None = None
    #: Run the detector every N annotated frames (and whenever a face was lost); in
    #: between, faces are tracked by the landmark model alone.  1: detect on every frame.
    detect_every: int = 10
    #: Smooth the keypoints over time (One-Euro filter per point).
    smooth: bool = True
    #: One-Euro minimum cutoff (Hz): lower is steadier when the face is still.
    smooth_min_cutoff: float = 0.3
    #: One-Euro speed coefficient (per face size per second): higher follows fast motion
    #: with less lag.
    smooth_beta: float = 12.0

    def check(self) -> None:
        if self.video_stride < 1:
            raise UsageError(f"{option('video_stride')} must be >= 1 (got {self.video_stride})")
        if self.detect_every < 1:
            raise UsageError(f"{option('detect_every')} must be >= 1 (got {self.detect_every})")
        if self.start < 0:
            raise UsageError(f"{option('start')} must be >= 0 seconds (got {self.start})")
        if self.end is not None and self.end <= self.start:
            raise UsageError(f"--end ({self.end}) must be after --start ({self.start})")
        if self.smooth_min_cutoff <= 0 or self.smooth_beta < 0:
            raise UsageError("--smooth-min-cutoff must be > 0 and --smooth-beta >= 0")


# --------------------------------------------------------------------------- probing


def has_video_suffix(name: str) -> bool:
    return name.lower().endswith(VIDEO_SUFFIXES)


def _av() -> Any:
    """The ``av`` module, or the one-line install hint."""
    try:
        import av
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return av


def require_av() -> None:
    """Raise the one-line install hint when PyAV is not installed."""
    _av()


def frames_to_read(path: str | os.PathLike, config: VideoConfig) -> int | None:
    """About how many frames a run over this video will annotate (for a progress bar's
    total): from the container's frame count or duration, the span and the stride; None
    when the container does not say."""
    try:
        with _av().open(os.fspath(path)) as container:
            stream = container.streams.video[0]
            rate = float(stream.average_rate or stream.guessed_rate or 0)
            seconds = (
                float(stream.duration * stream.time_base)
                if stream.duration is not None and stream.time_base
                else (container.duration / 1e6 if container.duration else None)
            )
            frames = stream.frames or (round(seconds * rate) if seconds and rate else 0)
    except Exception:
        return None
    if not frames:
        return None
    if seconds and rate:
        end = min(config.end, seconds) if config.end is not None else seconds
        frames = max(0, round((end - config.start) * rate))
    return max(1, -(-frames // config.video_stride))


def is_video(path: str | os.PathLike) -> bool:
    """A video by its suffix; any other file that Pillow cannot read is probed with PyAV."""
    if has_video_suffix(os.fspath(path)):
        return True
    from PIL import Image

    try:
        with Image.open(path):
            return False
    except Exception:
        pass
    try:
        import av
    except ImportError:
        return False
    try:
        with av.open(os.fspath(path)) as container:
            return bool(container.streams.video)
    except Exception:
        return False


# --------------------------------------------------------------------------- decoding


@dataclass
class Frame:
    index: int  #: 0-based index among all decoded frames of the video
    timestamp: float  #: seconds (pts * time_base)
    image: np.ndarray  #: (H, W, 3) uint8 RGB, rotation applied


@dataclass
class Decoded:
    """What decoding found out besides the frames (filled while iterating)."""

    cut: str | None = None  #: why the video ended early, when it did
    seconds: float = 0.0
    rate: float = 25.0  #: average frame rate


def _rotation(frame: Any, stream: Any) -> int:
    """Counter-clockwise degrees the stored picture must turn to be shown upright."""
    rot = getattr(frame, "rotation", None)
    if rot is None:
        rot = 0
        with contextlib.suppress(Exception):
            rot = int(float(stream.metadata.get("rotate", 0)))
            rot = -rot  # the old 'rotate' tag is clockwise
    return int(round(rot / 90.0)) * 90 % 360


def decode(path: str | os.PathLike, config: VideoConfig, info: Decoded) -> Iterator[Frame]:
    """The kept frames of a video (stride, span), RGB and upright; raises DataError for a
    file that is not a video or has no video stream.  A cut-short file ends early and says
    why in ``info.cut``."""
    av = _av()
    name = os.fspath(path)
    try:
        container = av.open(name)
    except FileNotFoundError:
        raise DataError(f"cannot read {name}: file not found") from None
    except Exception as exc:
        raise DataError(f"cannot read {name}: not a video PyAV can read ({_reason(exc)})") from None
    with container:
        if not container.streams.video:
            raise DataError(f"cannot read {name}: no video stream (audio only?)")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        base = stream.time_base or Fraction(1, 1)
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        info.rate = rate
        expected = None
        if stream.duration is not None:
            expected = float(stream.duration * base) + _start_time(stream, base)
        elif container.duration is not None:
            expected = container.duration / 1e6
        index, kept, last_t = -1, 0, None
        clock = time.perf_counter()
        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    index += 1
                    t = float(frame.pts * base) if frame.pts is not None else index / rate
                    last_t = t
                    if t < config.start - 1e-6:
                        continue
                    if config.end is not None and t > config.end + 1e-6:
                        return
                    if kept % config.video_stride == 0:
                        image = frame.to_ndarray(format="rgb24")
                        k = _rotation(frame, stream) // 90
                        if k:
                            image = np.ascontiguousarray(np.rot90(image, k))
                        info.seconds += time.perf_counter() - clock
                        yield Frame(index, t, image)
                        clock = time.perf_counter()
                    kept += 1
        except av.error.FFmpegError as exc:
            info.cut = f"cut short after {index + 1} frames: {_reason(exc)}"
            return
        finally:
            info.seconds += time.perf_counter() - clock
        if expected is not None and (last_t is None or last_t + 1.5 / rate < expected - 0.5 / rate):
            got = "no frame" if last_t is None else f"{last_t + 1 / rate:.2f} s"
            info.cut = f"cut short: {got} of {expected:.2f} s decoded"


def _start_time(stream: Any, base: Fraction) -> float:
    return float(stream.start_time * base) if stream.start_time is not None else 0.0


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).splitlines()[0]


# --------------------------------------------------------------------------- smoothing


class OneEuro:
    """The One-Euro filter (Casiez et al., CHI 2012) over an array of values, vectorised.

    ``min_cutoff`` (Hz) sets the smoothing of slow motion; ``beta`` raises the cutoff with
    speed, so fast motion is followed with little lag.  Timestamps (seconds) drive it, so a
    variable frame rate is handled.
    """

    def __init__(self, min_cutoff: float, beta: float, d_cutoff: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None
        self.t = 0.0

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.x is None or self.dx is None:
            self.x, self.dx, self.t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self.t
        if dt <= 0:  # a repeated timestamp: nothing new to filter on
            dt = 1e-3
        dx = (x - self.x) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        self.dx = a_d * dx + (1 - a_d) * self.dx
        cutoff = self.min_cutoff + self.beta * np.abs(self.dx)
        a = self._alpha(cutoff, dt)
        self.x = a * x + (1 - a) * self.x
        self.t = t
        return self.x.copy()


# --------------------------------------------------------------------------- tracking


def _face_box(kps: np.ndarray) -> np.ndarray:
    """``transforms.face_box_from_keypoints`` (imported late: transforms loads torch, and
    the CLI imports this module for its defaults)."""
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


@dataclass
class Timing:
    decode: float = 0.0
    detect: float = 0.0
    landmarks: float = 0.0
    write: float = 0.0
    frames: int = 0

    def add(self, other: Timing) -> None:
        for name in ("decode", "detect", "landmarks", "write", "frames"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def seconds(self) -> float:
        return self.decode + self.detect + self.landmarks + self.write

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "frames": self.frames,
            "fps": round(self.fps, 2),
            **{k: round(getattr(self, k), 3) for k in ("decode", "detect", "landmarks", "write")},
        }


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
            prev = np.stack([_face_box(t.keypoints) for t in self.tracks])
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
            boxes[d] if owner[d] is None else _face_box(owner[d].keypoints)
            for d in range(len(boxes))
        ]
        crop += [_face_box(t.keypoints) for t in missed]
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
        crop = [_face_box(t.keypoints) for t in self.tracks]
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
        face = _face_box(kps)
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
            box = _face_box(track.keypoints)
            if kept:
                others = np.stack([_face_box(k.keypoints) for k in kept])
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


# --------------------------------------------------------------------------- outputs


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
            _face_box(_points(track)).astype(np.float64),
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


def output_paths(out: Path, rel: os.PathLike | str) -> tuple[Path, Path]:
    """``<out>/<video rel path>.jsonl`` and ``.csv``."""
    base = out / rel
    return base.with_name(base.name + ".jsonl"), base.with_name(base.name + ".csv")


@dataclass
class VideoResult:
    frames: int = 0
    faces: int = 0
    tracks: int = 0
    dropped: int = 0  #: faces left out of the records by ``min_confidence``
    cut: str | None = None
    timing: Timing = field(default_factory=Timing)


def annotate_video(
    path: Path,
    name: str,
    marker: FaceMarker,
    config: VideoConfig,
    *,
    jsonl: Path | None = None,
    csv_path: Path | None = None,
    overlay: Path | None = None,
    boxes: bool = False,
    on_record: Callable[[ImageResult], None] | None = None,
    min_confidence: float | None = None,
) -> VideoResult:
    """Track and mark the faces of one video; records go to ``on_record`` and, when given,
    to ``jsonl`` / ``csv_path`` / an annotated copy ``overlay`` (each written under a
    ``.partial`` name and renamed once the video is done, the JSONL last: it marks the video
    as done for ``--skip-existing``).  A face whose mean confidence is below
    ``min_confidence`` is left out of its frame's record (and counted) but still tracked.
    Raises DataError for a file that is not a readable video."""
    result = VideoResult()
    info = Decoded()
    tracker = Tracker(marker, config, result.timing)
    detector = marker.detector.describe() if marker.detector else None
    finals = [p for p in (overlay, csv_path, jsonl) if p is not None]  # the JSONL last
    partial = [p.with_name(p.name + ".partial") for p in (jsonl, csv_path) if p is not None]
    with contextlib.ExitStack() as stack:
        out_jsonl = out_csv = None
        frames = decode(path, config, info)
        first = next(frames, None)  # a bad file fails here, before any output is opened
        if first is None:
            span = f"between {config.start:g} s and " + (
                f"{config.end:g} s" if config.end is not None else "the end"
            )
            raise DataError(f"no video frame {span} (nothing written)")
        drawer = None
        if overlay is not None:
            overlay.parent.mkdir(parents=True, exist_ok=True)
            drawer = stack.enter_context(_Overlay(overlay, info.rate / config.video_stride, boxes))
        if jsonl is not None:
            jsonl.parent.mkdir(parents=True, exist_ok=True)
            out_jsonl = stack.enter_context(open(partial[0], "w", encoding="utf-8"))
        if csv_path is not None:
            out_csv = csv.writer(
                stack.enter_context(open(partial[-1], "w", encoding="utf-8", newline="")),
                lineterminator="\n",
            )
            out_csv.writerow(CSV_COLUMNS)
        seen: set[int] = set()
        for frame in _chain(first, frames):
            tracked = tracker.step(frame.image, frame.timestamp)
            tracks = [t for t in tracked if confident(t.confidence, min_confidence)]
            result.dropped += len(tracked) - len(tracks)
            clock = time.perf_counter()
            h, w = frame.image.shape[:2]
            poses = poses_of(tracks, (w, h))
            marked = frame_record(name, frame, tracks, detector, poses)
            record = marked.to_dict()
            if out_jsonl is not None:
                out_jsonl.write(json.dumps(record, ensure_ascii=False) + "\n")
            if out_csv is not None:
                out_csv.writerows(csv_rows(record, poses))
            if drawer is not None:
                drawer.write(frame, record)
            if on_record is not None:
                on_record(marked)
            result.timing.write += time.perf_counter() - clock
            result.frames += 1
            result.faces += len(tracks)
            seen.update(t.id for t in tracks)
    result.timing.decode = info.seconds
    result.timing.frames = result.frames
    result.tracks = len(seen)
    result.cut = info.cut
    for final in finals:
        os.replace(final.with_name(final.name + ".partial"), final)
    return result


def overlay_path(out: Path, rel: os.PathLike | str, stem: str) -> Path:
    """The annotated copy of a video: ``<out>/<folder>/<stem>.annotated.mp4``."""
    return out / Path(rel).parent / f"{stem}.annotated.mp4"


class _Overlay:
    """The annotated copy: each kept frame with its points drawn, H.264 (libx264 when
    FFmpeg has it, else MPEG-4) in an MP4, at the frames' own timestamps."""

    def __init__(self, path: Path, rate: float, boxes: bool) -> None:
        self.av = _av()
        self.path, self.boxes = path, boxes
        self.rate = Fraction(rate).limit_denominator(1001) if rate > 0 else Fraction(25)
        self.partial = path.with_name(path.name + ".partial")
        self.container: Any = None
        self.stream: Any = None
        self.t0: float | None = None
        self.last_pts = -1

    def __enter__(self) -> _Overlay:
        return self

    def _open(self, width: int, height: int) -> None:
        av = self.av
        self.container = av.open(str(self.partial), "w", format="mp4")
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        options = {"preset": "veryfast", "crf": "20"} if codec == "libx264" else {}
        self.stream = self.container.add_stream(codec, rate=self.rate, options=options)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        self.stream.codec_context.time_base = Fraction(1, 1000)

    def write(self, frame: Frame, record: dict[str, Any]) -> None:
        from facemark import draw

        image = frame.image[: frame.image.shape[0] // 2 * 2, : frame.image.shape[1] // 2 * 2]
        if self.container is None:
            self._open(image.shape[1], image.shape[0])
            self.t0 = frame.timestamp
        faces = record["faces"]
        picture = draw.to_pil(image)
        if faces and self.boxes:
            picture = draw.draw_boxes(
                picture, np.array([f["box"] for f in faces]), [f["score"] for f in faces]
            )
        if faces:
            picture = draw.draw_keypoints(picture, np.array([f["keypoints"] for f in faces]))
        out = self.av.VideoFrame.from_image(picture)
        pts = max(round((frame.timestamp - (self.t0 or 0.0)) * 1000), self.last_pts + 1)
        out.pts, out.time_base, self.last_pts = pts, Fraction(1, 1000), pts
        for packet in self.stream.encode(out):
            self.container.mux(packet)

    def __exit__(self, *exc: object) -> None:
        if self.container is None:
            return
        try:
            if exc[0] is None:
                for packet in self.stream.encode():
                    self.container.mux(packet)
        finally:
            self.container.close()


def _chain(first: Frame | None, rest: Iterator[Frame]) -> Iterator[Frame]:
    if first is not None:
        yield first
        yield from rest
