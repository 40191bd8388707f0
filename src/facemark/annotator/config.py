"""Every option of an annotate run, declared once, and the FaceMarker it loads (cached, so
repeated calls and batch engines load the models once)."""

from __future__ import annotations

import functools
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facemark.annotator.inputs import parse_shard
from facemark.confidence import check_minimum
from facemark.detectors.base import Detector, DetectorConfig
from facemark.errors import UsageError, option
from facemark.video import VideoConfig

if TYPE_CHECKING:  # the pipeline imports torch: loaded when a run starts, not with the CLI
    from facemark.pipeline import FaceMarker


@dataclass(frozen=True)
class AnnotateConfig:
    """Every option of an annotate run, declared once (``facemark annotate --help`` shows
    these defaults).  Detector options (threshold, min_face, max_faces, det_size) are in
    ``detection``."""

    #: Landmark model: ``default``, a run, a checkpoint, an https URL, or a loaded Landmarker.
    model: Any = "default"
    #: Face detector: ``default``, ``yunet_s``, ``facemark``, ``boxes:FILE``, a run, a
    #: checkpoint, an https URL, or a loaded Detector.
    detector: Any = "default"
    #: cpu, cuda, cuda:N or auto.
    device: str = "cpu"
    #: Also search the folders' subfolders.
    recursive: bool = False
    #: Images per network call.
    batch_size: int = 8
    #: Average with the mirrored image's keypoints (slower, a bit more accurate).
    flip: bool = False
    #: Write an annotated copy of each image.
    draw: bool = True
    #: Also draw each face's box and score on the copies.
    boxes: bool = False
    #: Also write annotations.csv (dataset format, one row per face).
    csv: bool = False
    #: Also write annotations.coco.json (COCO keypoints, for labelling tools).
    coco: bool = False
    #: Also write one iBUG .pts file per face.
    pts: bool = False
    #: Resume: skip images already in the output's annotations*.jsonl.
    skip_existing: bool = False
    #: Process only shard I of N (1-based) of the inputs, e.g. "2/4".
    shard: str | tuple[int, int] | None = None
    #: Drop the faces whose mean point confidence is below this (None: keep them all; each
    #: face's ``low_confidence`` flag uses facemark.confidence.LOW_CONFIDENCE).
    min_confidence: float | None = None
    detection: DetectorConfig = field(default_factory=DetectorConfig)
    #: Options of video inputs (stride, span, tracking, smoothing): see facemark.video.
    video: VideoConfig = field(default_factory=VideoConfig)
    #: CPU threads: torch's (process-wide) and at most this many decoding threads; None
    #: leaves torch's own choice and decodes with up to 4 threads of the CPUs this process
    #: may use (:func:`available_cpus`).
    threads: int | None = None
    #: Also write annotations.parquet (one row per image, faces nested; needs pyarrow).
    parquet: bool = False

    def check(self) -> None:
        self.detection.check()
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"{option('threads')} must be >= 1 (got {self.threads})")
        self.video.check()
        if self.batch_size < 1:
            raise UsageError(f"{option('batch_size')} must be >= 1 (got {self.batch_size})")
        check_minimum(self.min_confidence)
        parse_shard(self.shard)

    @classmethod
    def from_options(cls, config: AnnotateConfig | None = None, **options: Any) -> AnnotateConfig:
        """``config`` (or the defaults) with ``options`` replaced: any field of this class or
        of :class:`DetectorConfig`; an unknown name is a UsageError."""
        config = config or cls()
        own = {f.name for f in fields(cls)}
        det = {f.name for f in fields(DetectorConfig)}
        vid = {f.name for f in fields(VideoConfig)}
        unknown = sorted(set(options) - own - det - vid)
        if unknown:
            raise UsageError(f"unknown annotate option(s): {', '.join(unknown)}")
        detection = replace(config.detection, **{k: v for k, v in options.items() if k in det})
        video = replace(config.video, **{k: v for k, v in options.items() if k in vid})
        return replace(
            config,
            detection=detection,
            video=video,
            **{k: v for k, v in options.items() if k in own},
        )


def load_marker(config: AnnotateConfig) -> FaceMarker:
    """The FaceMarker of a run's settings (threads applied); loaded ones are reused across
    calls (see :func:`_cached`), so a batch engine calling per block loads them once."""
    from facemark.devices import set_threads
    from facemark.pipeline import FaceMarker

    set_threads(config.threads)

    specs = (config.detector, config.model)
    if all(isinstance(s, (str, os.PathLike)) for s in specs):
        keys = tuple(
            _file_key(s, task) for s, task in zip(specs, ("detector", "landmarks"), strict=True)
        )
        return _cached(keys, config.device, config.flip, config.detection)
    # a loaded detector keeps its own options unless the run sets others
    default = config.detection == DetectorConfig()
    options = {} if default and isinstance(config.detector, Detector) else asdict(config.detection)
    return FaceMarker(config.detector, config.model, config.device, config.flip, **options)


def _file_key(spec: str | os.PathLike, task: str) -> tuple[str, int]:
    """(file, mtime) a spec resolves to: a file that changed since (a run that saved a
    better best.pt) is loaded again."""
    from facemark import hub
    from facemark.detectors.boxes import PREFIX

    text = os.fspath(spec)
    if task == "detector" and (text.startswith(PREFIX) or text.lower().endswith((".json", ".csv"))):
        path = Path(text.removeprefix(PREFIX))
        return f"{PREFIX}{path.resolve()}", path.stat().st_mtime_ns if path.is_file() else 0
    path = hub.resolve_model(spec, task)
    return str(path.resolve()), path.stat().st_mtime_ns


@functools.lru_cache(maxsize=4)
def _cached(
    keys: tuple[tuple[str, int], tuple[str, int]],
    device: str,
    flip: bool,
    detection: DetectorConfig,
) -> FaceMarker:
    from facemark.pipeline import FaceMarker

    (detector, _), (model, _) = keys
    return FaceMarker(detector, Path(model), device, flip, **asdict(detection))
