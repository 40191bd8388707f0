"""``--detector facemark``: facemark's own detector network, trained on the dataset's frames.

Kept because it is trainable here (``facemark train --task detector``) and small; the default
is YuNet, which saw far more varied faces.  The network, decoding and training targets are in
:mod:`facemark.detection`.  Its boxes are facemark face boxes by construction: it was trained
on exactly ``transforms.face_box_from_keypoints``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from facemark import checkpoint
from facemark.boxes import letterbox, letterbox_shape, nms, pad_multiple
from facemark.detection import DEFAULT_INPUT_SIZE, SIZE_MULTIPLE, STRIDE, build_detector, decode
from facemark.detectors.base import Detections, Detector, DetectorConfig, input_tensor
from facemark.errors import CheckpointError, UsageError, first_line
from facemark.images import as_rgb_array


class FacemarkDetector(Detector):
    """The network of :mod:`facemark.detection`, letterboxed to its input size."""

    name = "facemark"

    def __init__(
        self,
        model: nn.Module,
        input_size: int = DEFAULT_INPUT_SIZE,
        device: str | torch.device = "cpu",
        info: dict[str, Any] | None = None,
        score_offset: float = 0.0,
        config: DetectorConfig | None = None,
    ) -> None:
        super().__init__(config)
        if input_size % SIZE_MULTIPLE:
            raise UsageError(
                f"detector input size must be a multiple of {SIZE_MULTIPLE}, got {input_size}"
            )
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.input_size = int(input_size)
        self.stride = int(getattr(model, "stride", STRIDE))
        self.info = dict(info or {})
        self.score_offset = float(score_offset)

    @classmethod
    def from_checkpoint(
        cls,
        source: str | Any | Mapping[str, Any],
        device: str | torch.device = "cpu",
        config: DetectorConfig | None = None,
    ) -> FacemarkDetector:
        """Rebuild the network a checkpoint describes; a landmark checkpoint is refused clearly."""
        data = checkpoint.read(source, task="detector")
        try:
            model = build_detector(data["arch"], **dict(data["arch_kwargs"]))
            model.load_state_dict(data["state_dict"])
        except (UsageError, RuntimeError) as exc:
            raise CheckpointError(
                f"detector weights do not fit arch {data['arch']!r}: {first_line(exc)}"
            ) from None
        info = {
            k: data.get(k)
            for k in ("arch", "arch_kwargs", "img_size", "epoch", "metrics", "facemark_version")
        }
        info["run_name"] = data.get("run_name")
        metrics = data.get("metrics") or {}
        offset = float(metrics.get("score_offset", 0.0)) if isinstance(metrics, dict) else 0.0
        size = int(data.get("img_size") or DEFAULT_INPUT_SIZE)
        return cls(model, size, device, info, offset if math.isfinite(offset) else 0.0, config)

    @property
    def version(self) -> str:
        return str(self.info.get("run_name") or f"epoch {self.info.get('epoch')}")

    def detection_side(self, width: int, height: int) -> int:
        """The network looks at its letterbox only: no more pixels are needed."""
        return int(self.config.det_size or self.input_size)

    @torch.inference_mode()
    def detect_batch(
        self,
        images: Sequence[np.ndarray],
        names: Sequence[str | None] | None = None,
        sizes: Sequence[tuple[int, int]] | None = None,
    ) -> list[Detections]:
        """One forward pass per group of images with the same letterbox shape.

        Images of other shapes are never padded onto one canvas: the padding would change
        the scores near the border (by up to 0.04), and so whether a borderline face is
        found would depend on what else was in the batch.
        """
        size = int(self.config.det_size or self.input_size)
        rgb = [as_rgb_array(im) for im in images]
        scales = self.scales(rgb, sizes)
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, im in enumerate(rgb):
            h, w = letterbox_shape(im.shape[0], im.shape[1], size)
            groups[(pad_multiple(h, SIZE_MULTIPLE), pad_multiple(w, SIZE_MULTIPLE))].append(i)
        results: list[Detections | None] = [None] * len(rgb)
        for shape, members in groups.items():
            boxed = [letterbox(rgb[i], size, pad_to=shape) for i in members]
            heat, box = self.model(input_tensor(np.stack([c for c, _ in boxed]), self.device))
            decoded = decode(
                heat, box, self.config.threshold, self.stride, score_offset=self.score_offset
            )
            for i, (boxes, scores), (_, M) in zip(members, decoded, boxed, strict=True):
                keep = nms(boxes, scores)
                found = Detections(boxes[keep], scores[keep]).mapped(M)
                results[i] = found.finish(self.config, scales[i])
        return [r if r is not None else Detections.empty() for r in results]
