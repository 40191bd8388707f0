"""The one interface every face detector implements, and the options they all share.

A detector turns images into :class:`Detections`: boxes in facemark's face-box convention
(``transforms.face_box_from_keypoints``: the 68 points' bounding box raised by the forehead
margin), so that whichever backend found a face, the landmark crop made from its box is the
crop the landmark model was trained on.  Backends whose network predicts another kind of box
map it to this one before returning.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from facemark.boxes import map_boxes
from facemark.errors import UsageError, option

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class DetectorConfig:
    """Options of every detector, declared once: the CLI and the API read their defaults here."""

    #: Score a face must reach (each detector's scores are calibrated so 0.5 is its
    #: operating point).
    threshold: float = 0.5
    #: Smallest face kept: box width in image pixels.
    min_face: float = 10.0
    #: Keep at most this many faces per image (the best-scored); None keeps all.
    max_faces: int | None = None
    #: Longer side, in pixels, the image is resized to for detection; None chooses it from
    #: the image (see each detector).
    det_size: int | None = None
    #: A detection counts as a face only when the landmark model's mean per-point
    #: confidence on it reaches this (a second opinion on the detector's; 0 turns it off).
    #: Measured: true faces of the photo set and the val frames score 0.47 and more, some
    #: detector false positives on face-free photos 0.33-0.39.
    confirm: float = 0.4
    #: A detection counts as a face only when the landmark model's faceness head
    #: (:mod:`facemark.faceness`) scores it at least this "human face" probability: the
    #: detector fires on animal faces too.  None: the model's own threshold, chosen on
    #: validation when its head was fitted (docs/faceness.md); 0 turns the check off.
    faceness: float | None = None

    def check(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise UsageError(
                f"{option('threshold')} must be between 0 and 1 (got {self.threshold})"
            )
        if self.min_face < 0:
            raise UsageError(f"{option('min_face')} must be >= 0 pixels (got {self.min_face})")
        if self.max_faces is not None and self.max_faces < 1:
            raise UsageError(f"{option('max_faces')} must be >= 1 (got {self.max_faces})")
        if not 0.0 <= self.confirm <= 1.0:
            raise UsageError(f"{option('confirm')} must be between 0 and 1 (got {self.confirm})")
        if self.faceness is not None and not 0.0 <= self.faceness <= 1.0:
            raise UsageError(f"{option('faceness')} must be between 0 and 1 (got {self.faceness})")
        if self.det_size is not None and (self.det_size < 32 or self.det_size % 32):
            raise UsageError(
                f"--det-size must be a multiple of 32, at least 32 (got {self.det_size})"
            )


@dataclass(frozen=True)
class Detections:
    """The faces found in one image, best score first; no face gives empty arrays."""

    boxes: np.ndarray  #: (F, 4) float32, x0 y0 x1 y1, facemark face boxes in image pixels
    scores: np.ndarray  #: (F,) float32 in [0, 1]
    #: (F, 5, 2) float32 five points (right eye, left eye, nose tip, right and left mouth
    #: corner, as seen by the subject) where the detector predicts them, else None.
    points: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls, with_points: bool = False) -> Detections:
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros((0, 5, 2), np.float32) if with_points else None,
        )

    def select(self, keep: np.ndarray) -> Detections:
        """The detections at the indices (or mask) ``keep``."""
        return Detections(
            self.boxes[keep], self.scores[keep], None if self.points is None else self.points[keep]
        )

    def mapped(self, M: np.ndarray) -> Detections:
        """These detections back in the pixels of the image ``M`` maps onto theirs.

        ``M``: the 2x3 image -> canvas (or full image -> reduced view) matrix; boxes and
        points go through its inverse, scores are kept.
        """
        from facemark import transforms  # imports torch: only once a detector has run

        back = transforms.invert_affine(M)
        points = None
        if self.points is not None:
            points = transforms.apply_affine(self.points.astype(np.float64), back)
            points = points.astype(np.float32)
        return Detections(map_boxes(self.boxes, back), self.scores, points)

    def finish(self, config: DetectorConfig, scale: float = 1.0) -> Detections:
        """Apply the options every detector shares: size filter, then the best ``max_faces``.

        ``scale``: how many full-size pixels one pixel of these boxes is (a reduced view of a
        big photo), so ``min_face`` is always in full-size pixels.
        """
        order = np.argsort(-self.scores, kind="stable")
        widths = (self.boxes[order, 2] - self.boxes[order, 0]) * scale
        order = order[widths >= config.min_face]
        if config.max_faces is not None:
            order = order[: config.max_faces]
        return self.select(order)


def input_tensor(canvases: np.ndarray, device: torch.device) -> torch.Tensor:
    """A network's input, RGB in [0, 1] ``(B, 3, H, W)``, from a ``(B, H, W, 3)`` uint8 batch.

    The tensor keeps NHWC memory (a permuted view): on CPU, depthwise convs run about twice as
    fast from this layout as from NCHW; on CUDA it is made ``channels_last`` explicitly.
    """
    import torch

    x = torch.from_numpy(np.ascontiguousarray(canvases)).to(device)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


class Detector(ABC):
    """A face detector: ``detect(image)`` -> :class:`Detections`.

    ``images`` are RGB uint8 arrays ``(H, W, 3)``, as :func:`facemark.images.load_image`
    gives them.  ``names`` (the images' paths, when known) lets a detector that reads boxes
    from a file find them; the others ignore it.  ``sizes``: the ``(width, height)`` of the
    full-size photo each array is a reduced view of (None: the arrays are full size); the
    resolution a detector chooses and ``min_face`` then follow the full-size photo, while
    boxes stay in the array's pixels.  The same image gives the same detections whether it is
    passed alone or in a batch.
    """

    #: The backend's name, as ``--detector`` accepts it.
    name: ClassVar[str] = "?"
    #: Whether a reduced copy of a big photo will do (it is cheaper to decode); a detector
    #: that reads boxes in full-size pixels says no.
    accepts_reduced: ClassVar[bool] = True
    #: Whether its detections need the landmark model's confirmation (``confirm``); boxes
    #: a user supplied are faces by their word.
    needs_confirmation: ClassVar[bool] = True

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        self.config.check()

    @property
    def version(self) -> str:
        """What identifies the weights (a short hash, a run name): recorded with each output."""
        return ""

    @staticmethod
    def scales(
        images: Sequence[np.ndarray], sizes: Sequence[tuple[int, int]] | None
    ) -> list[float]:
        """Full-size pixels per array pixel, per image (1 without ``sizes``)."""
        if sizes is None:
            return [1.0] * len(images)
        return [max(size) / max(np.shape(im)[:2]) for im, size in zip(images, sizes, strict=True)]

    def detection_side(self, width: int, height: int) -> int:
        """How many pixels of an image this big the detector looks at on its longer side, so
        the image can be decoded no larger than that (0: all of them)."""
        return int(self.config.det_size or 0)

    def describe(self) -> dict[str, Any]:
        """``{"name", "version"}``, written into annotate's outputs."""
        return {"name": self.name, "version": self.version}

    @abstractmethod
    def detect_batch(
        self,
        images: Sequence[np.ndarray],
        names: Sequence[str | None] | None = None,
        sizes: Sequence[tuple[int, int]] | None = None,
    ) -> list[Detections]:
        """Detections for each image (one forward pass where the backend can batch)."""

    def detect(
        self, image: np.ndarray, name: str | None = None, size: tuple[int, int] | None = None
    ) -> Detections:
        return self.detect_batch([image], [name], None if size is None else [size])[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"
