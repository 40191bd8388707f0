"""``FaceMarker``: pixels in, faces with 68 keypoints out — the one inference path.

``annotate``, ``evaluate --boxes detect``, the Python API and the benchmarks all go through
here, so they find the same faces and place the same points::

    import facemark

    marker = facemark.FaceMarker()                  # bundled detector and landmark model
    for face in marker("photo.jpg"):                # a path, an RGB array or a Pillow image
        print(face.box, face.score, face.keypoints.shape)   # (4,), float, (68, 2)

How an image travels: it becomes a :class:`~facemark.images.Photo` once (decoded in full,
whatever form it came in, so a path, its bytes and its decoded array give the same faces);
the detector sees the smallest view of it that holds what it looks at (a 12 MP photo
reduced to 1/2 or 1/4); the landmark model crops each face from the coarsest view that still
holds the face at the network's resolution; every coordinate is reported in full-size pixels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from facemark.confidence import check_minimum, confident
from facemark.detectors import Detections, Detector, DetectorConfig
from facemark.errors import DataError, UsageError
from facemark.hub import load_detector
from facemark.images import Photo, read_failure
from facemark.landmarker import Landmarker
from facemark.pose import head_pose
from facemark.results import Face, ImageResult

__all__ = ["Face", "FaceMarker", "ImageResult", "as_photo", "source_name"]


def as_photo(image: Any) -> Photo:
    """A :class:`Photo` from a path, an image file's bytes or a binary file object (all three
    decoded alike), an array, a Pillow image (EXIF orientation applied) or a Photo."""
    if isinstance(image, Photo):
        return image
    if isinstance(image, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(
        image, "read"
    ):
        return Photo.open(image)
    return Photo.from_image(image)


def source_name(image: Any) -> str | None:
    """What a result calls its image: the path, a file object's or Pillow image's file name,
    None for bytes and arrays."""
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    if isinstance(image, Photo):
        return image.name
    name = getattr(image, "name", None) if hasattr(image, "read") else None
    name = name or getattr(image, "filename", None)
    return name if isinstance(name, str) and name else None


class FaceMarker:
    """A face detector and a landmark model, loaded once, used together.

    ``detector`` and ``model`` take what ``--detector`` and ``--model`` take (a bundled name,
    a run, a checkpoint path or URL, ``boxes:FILE`` for the detector) or loaded objects;
    ``threads`` sets torch's CPU threads (process-wide; None leaves them);
    ``detector_options`` are the fields of :class:`DetectorConfig` (``threshold``,
    ``min_face``, ``max_faces``, ``det_size``, ``confirm``: the landmark confidence a
    detection needs to count as a face, see :meth:`mark`).  ``detector=None`` gives a landmark-only
    marker (for boxes you already have: :meth:`landmarks`).
    """

    def __init__(
        self,
        detector: Any = "default",
        model: Any = "default",
        device: str | None = "cpu",
        flip: bool = False,
        threads: int | None = None,
        **detector_options: Any,
    ) -> None:
        from facemark import hub
        from facemark.devices import resolve_device, set_threads

        set_threads(threads)  # torch's threads are per process: this sets them for all

        try:
            config = DetectorConfig(**detector_options) if detector_options else None
        except TypeError as exc:
            raise UsageError(f"unknown detector option: {exc}") from None
        if config is not None:
            config.check()
        self.device = resolve_device(device)
        self.detector: Detector | None = None
        #: ``max_faces`` is applied after the landmark check (:meth:`mark`), so a rejected
        #: best detection does not cost a real face its place.
        self.max_faces: int | None = None
        if detector is not None:
            det = load_detector(detector, self.device, config)
            if det.needs_confirmation and det.config.max_faces is not None:
                self.max_faces = det.config.max_faces
                det = load_detector(det, self.device, replace(det.config, max_faces=None))
            self.detector = det
        self.landmarker: Landmarker = hub.load_model(model, self.device)
        self.flip = bool(flip)

    def __call__(self, image: Any) -> list[Face]:
        """The faces in one image (a path, the bytes of an image file, a binary file object,
        an RGB uint8 array, a Pillow image or a Photo)."""
        return self.batch([image])[0]

    def batch(
        self, images: Sequence[Any], names: Sequence[str | None] | None = None
    ) -> list[list[Face]]:
        """The faces of several images: one detector pass and one landmark pass for all.

        ``names`` (defaulting to the paths, for path inputs) lets a ``boxes:FILE``
        detector find each image's boxes.
        """
        return self.mark(images, names)[0]

    def annotate(
        self,
        images: Sequence[Any],
        names: Sequence[str | None] | None = None,
        min_confidence: float | None = None,
    ) -> list[ImageResult]:
        """One :class:`ImageResult` per image, in order; an image that cannot be read (or
        is not an image) gets its ``error`` set instead of failing the batch, so a batch
        engine never retries a whole block for one bad file.  ``names`` name the results
        (default: the paths, for path inputs); ``min_confidence`` as in :meth:`mark`."""
        if names is None:
            names = [source_name(im) for im in images]
        photos: list[Photo | None] = []
        errors: list[str | None] = []
        for image in images:
            try:
                photos.append(as_photo(image))
                errors.append(None)
            except (DataError, UsageError) as exc:
                photos.append(None)
                errors.append(read_failure(exc))
        good = [k for k, photo in enumerate(photos) if photo is not None]
        found = (
            self.mark([photos[k] for k in good], [names[k] for k in good], min_confidence)[0]
            if good
            else []
        )
        faces = dict(zip(good, found, strict=True))
        detector = self.detector.describe() if self.detector is not None else None
        return [
            ImageResult(names[k], error=errors[k])
            if photos[k] is None
            else ImageResult(names[k], photos[k].width, photos[k].height, tuple(faces[k]), detector)
            for k in range(len(images))
        ]

    def mark(
        self,
        images: Sequence[Any],
        names: Sequence[str | None] | None = None,
        min_confidence: float | None = None,
    ) -> tuple[list[list[Face]], list[int], list[int]]:
        """:meth:`batch`, with counts: ``(faces, rejected detections, dropped faces)`` per
        image.

        A detection is kept as a face only when the face check scores it at least the
        detector config's ``faceness`` (the detector alone fires on animal faces too) and the
        landmark model's mean confidence on it reaches ``confirm`` (patterns and skin regions
        the detector takes for faces).  Faces whose mean point
        confidence is below ``min_confidence`` (None: none are) are then dropped, before
        ``max_faces`` is applied.  Each kept face gets its head pose (a fraction of a
        millisecond).
        """
        check_minimum(min_confidence)
        photos = [as_photo(im) for im in images]
        if names is None:
            names = [source_name(im) for im in images]
        found = self.detect(photos, names)
        marks = self.marks(photos, [d.boxes for d in found])
        assert self.detector is not None  # detect() said so otherwise
        checks = self.detector.needs_confirmation
        confirm = self.detector.config.confirm if checks else 0.0
        least = self.faceness_threshold if checks else 0.0
        faces, rejected, dropped = [], [], []
        for photo, det, (kps, conf, fness) in zip(photos, found, marks, strict=True):
            size = (photo.width, photo.height)
            real = [
                k
                for k in range(len(det))
                if confident(conf[k], confirm) and (fness is None or fness[k] >= least)
            ]
            sure = [k for k in real if confident(conf[k], min_confidence)]
            kept = [
                Face(
                    det.boxes[k],
                    float(det.scores[k]),
                    kps[k],
                    conf[k],
                    head_pose(kps[k], size),
                    None if fness is None else float(fness[k]),
                )
                for k in sure
            ]
            rejected.append(len(det) - len(real))
            dropped.append(len(real) - len(sure))
            faces.append(kept[: self.max_faces])
        return faces, rejected, dropped

    @property
    def faceness_threshold(self) -> float:
        """The faceness a detection needs: the detector config's, else the landmark model's
        own (0 when neither says: a model without a head checks nothing)."""
        chosen = self.detector.config.faceness if self.detector is not None else None
        if chosen is not None:
            return float(chosen)
        head = self.landmarker.faceness
        return head.threshold if head is not None else 0.0

    def detection_side(self, width: int, height: int) -> int:
        """How many pixels of a photo this big detection looks at (0: all of them)."""
        det = self.detector
        return det.detection_side(width, height) if det and det.accepts_reduced else 0

    def detect(
        self, photos: Sequence[Photo], names: Sequence[str | None] | None = None
    ) -> list[Detections]:
        """Detections per photo, in full-size pixels."""
        if self.detector is None:
            raise UsageError("this FaceMarker has no detector (detector=None)")
        views = [photo.view(self.detection_side(photo.width, photo.height)) for photo in photos]
        found = self.detector.detect_batch(
            [np.asarray(v) for v, _ in views], names, [photo.size for photo in photos]
        )
        return [d.mapped(M) for d, (_, M) in zip(found, views, strict=True)]

    def landmarks(
        self, photos: Sequence[Any], boxes: Sequence[np.ndarray]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(keypoints (F, 68, 2), confidence (F, 68))`` per image for the given boxes (no
        faceness: :meth:`marks` when it is wanted)."""
        return self.landmarker.predict_photos([as_photo(p) for p in photos], boxes, self.flip)

    def marks(
        self, photos: Sequence[Any], boxes: Sequence[np.ndarray]
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """:meth:`landmarks` with each face's ``faceness`` (None per image when the landmark
        model has no faceness head; see :mod:`facemark.faceness`)."""
        return self.landmarker.mark_photos([as_photo(p) for p in photos], boxes, self.flip)

    def describe(self) -> dict[str, Any]:
        """What produced the output: detector and landmark model, for output headers."""
        info = self.landmarker.info
        model = {"arch": info.get("arch"), "run_name": info.get("run_name")}
        if info.get("quantized"):  # an int8 model says so; float headers stay as they were
            model["quantized"] = info["quantized"]
        return {
            "detector": None if self.detector is None else self.detector.describe(),
            "model": model,
        }

    def __repr__(self) -> str:
        return f"FaceMarker(detector={self.detector!r}, model={self.landmarker!r})"
