"""The network to export: the model a spec names, loaded as facemark runs it (a landmark model
with its ``decode`` in one module unless ``raw``), with the metadata every exported file
carries and the inputs it is traced and checked on."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facemark import registry
from facemark.config import TASKS
from facemark.errors import UsageError
from facemark.export.options import DETECTOR_CHECK_HW, INPUT_NAME

if TYPE_CHECKING:
    from torch import nn


@dataclass
class Network:
    """A network ready to trace, and everything an export of it needs to say."""

    module: nn.Module
    task: str
    arch: str
    #: Input shapes ``(B, 3, H, W)`` of the parity check; the first one is also timed.
    checks: tuple[tuple[int, int, int, int], ...]
    output_names: tuple[str, ...]
    #: Per output, its dynamic axes (ONNX ``dynamic_axes``).
    output_axes: dict[str, dict[int, str]]
    dynamic_hw: bool
    metadata: dict[str, str]
    #: What one timed item is: "face" (landmarks) or "image" (detectors).
    unit: str
    source: Path | None = None


def _decoded_module(model: nn.Module) -> nn.Module:
    """``model.decode(model(x))`` as one module: keypoints and confidence in one graph."""
    from torch import nn

    class Decoded(nn.Module):
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: Any) -> Any:
            return self.net.decode(self.net(x))

    # eval() on the wrapper too: the ONNX exporter sets every submodule to the top's mode
    return Decoded(model).eval()


def resolve(spec: Any, task: str | None = None) -> tuple[Path, dict[str, Any]]:
    """The checkpoint ``spec`` names and its contents.

    ``task`` None takes the checkpoint's own task; a bundled name only detectors have
    (``yunet``, ``yunet_s``, ``facemark``) is looked up among the detectors, every other name
    (``default`` included) among the landmark models.
    """
    from facemark import checkpoint, hub

    if task is not None and task not in TASKS:
        raise UsageError(f"--task must be one of {', '.join(TASKS)} (got '{task}')")
    lookup = task
    if lookup is None:
        text = os.fspath(spec) if isinstance(spec, (str, os.PathLike)) else ""
        bundled = {t: registry.bundled(t) for t in TASKS}
        only_detector = text in bundled["detector"] and text not in bundled["landmarks"]
        lookup = "detector" if only_detector else "landmarks"
    path = hub.resolve_model(spec, lookup)
    return path, checkpoint.load_checkpoint(path, task)


def load_network(spec: Any, task: str | None = None, raw: bool = False) -> Network:
    """The network ``spec`` names, as facemark runs it (eval mode, BatchNorm folded where
    facemark folds it), wrapped for export, with its metadata.  The builder is the one the
    registry's backend for the checkpoint's task and arch names (:mod:`facemark.registry`)."""
    from facemark import __version__
    from facemark.files import sha256_file

    path, data = resolve(spec, task)
    if data.get("quantized"):
        raise UsageError(
            f"{spec} is an int8 checkpoint ({data['quantized']}): export the float model it "
            "was made from to ONNX or TorchScript"
        )
    base = {
        "facemark_version": __version__,
        "task": str(data["task"]),
        "arch": str(data["arch"]),
        "arch_kwargs": json.dumps(dict(data.get("arch_kwargs") or {}), sort_keys=True),
        "input": INPUT_NAME,
        "input_format": "float32 (B, 3, H, W), RGB, values in [0, 1]; the normalisation is "
        "inside the graph",
        "source": path.name,
        "source_sha256": sha256_file(path),
        "run_name": str(data.get("run_name") or ""),
    }
    backend = registry.backend_for(data["task"], data["arch"])
    if backend.network is None:
        raise UsageError(f"{spec}: {data['task']} arch {data['arch']!r} cannot be exported")
    net = registry.load(backend.network)(data, base, raw)
    net.source = path
    return net


def landmark_network(data: dict[str, Any], meta: dict[str, str], raw: bool = False) -> Network:
    """A landmark model with its ``decode`` (or its raw outputs, ``raw``)."""
    from facemark import transforms
    from facemark.landmarker import Landmarker

    lm = Landmarker.from_checkpoint(data)
    s = lm.img_size
    module = lm.model if raw else _decoded_module(lm.model)
    names = ("outputs",) if raw else ("keypoints", "confidence")
    meta |= {
        "input_size": f"{s}x{s}",
        "img_size": str(s),
        "outputs": ",".join(names),
        "decoded": "false" if raw else "true",
        "crop": "a square around the face box centre, side max(w, h) * crop_scale, resized to "
        "img_size (facemark.transforms.crop_matrix); the face box is the keypoints' box raised "
        "by forehead * its height",
        "crop_scale": str(transforms.CROP_SCALE),
        "forehead": str(transforms.FOREHEAD),
        "metrics": json.dumps(data.get("metrics") or {}, default=str, sort_keys=True),
    }
    if raw:
        meta["output_layout"] = (
            f"the raw outputs of the {data['arch']} network; facemark.models decodes them "
            "(model.decode) into keypoints and confidence"
        )
    else:
        meta["output_layout"] = (
            "keypoints: (B, 68, 2) x, y in crop pixels (the integer i is the centre of pixel i); "
            "confidence: (B, 68) in [0, 1]"
        )
    return Network(
        module=module,
        task="landmarks",
        arch=str(data["arch"]),
        checks=((1, 3, s, s), (3, 3, s, s)),
        output_names=names,
        output_axes={n: {0: "batch"} for n in names},
        dynamic_hw=False,
        metadata=meta,
        unit="face",
    )


def yunet_network(data: dict[str, Any], meta: dict[str, str], raw: bool = False) -> Network:
    """YuNet's raw outputs (``raw`` is for landmark models: a detector's outputs are raw)."""
    from facemark.detectors import yunet

    det = yunet.YuNetDetector.from_checkpoint(data)
    box_map = data.get("box_map")
    meta |= {
        "input_size": "dynamic: H and W multiples of 32",
        "variant": det.variant,
        "outputs": ",".join(yunet.OUTPUT_NAMES),
        "output_layout": "per stride s in 8, 16, 32: (B, N_s, C) with N_s = (H/s) * (W/s) cells "
        "in row-major order; cls and obj (C=1) are sigmoids, bbox (C=4) is the centre offset and "
        "log size in units of s from the cell corner (col*s, row*s), kps (C=10) five x, y offsets",
        "strides": ",".join(str(s) for s in yunet.STRIDES),
        "score": "raw = sqrt(cls * obj); calibrated = sigmoid(logit(raw) - logit(score_threshold)) "
        "so that 0.5 is the operating point",
        "score_threshold": str(det.score_threshold),
        "decode_floor": str(yunet.DECODE_FLOOR),
        "nms_iou": str(yunet.NMS_IOU),
        "box_map": json.dumps(
            None if box_map is None else [[float(v) for v in row] for row in box_map]
        ),
        "box_map_doc": "face box edges (x0, y0, x1, y1) in units of the YuNet box around its "
        "centre = [1, five points in the same units] @ box_map (facemark.detectors.yunet."
        "YuNetDetector.face_boxes); null: YuNet's own boxes",
        "decoding": "not in the graph: facemark.detectors.yunet.decode_outputs, calibrate_scores, "
        "NMS, YuNetDetector.face_boxes",
    }
    names = yunet.OUTPUT_NAMES
    return Network(
        module=det.net,
        task="detector",
        arch="yunet",
        checks=((1, 3, *DETECTOR_CHECK_HW), (2, 3, 320, 320)),
        output_names=names,
        output_axes={n: {0: "batch", 1: f"cells_{n.rsplit('_', 1)[1]}"} for n in names},
        dynamic_hw=True,
        metadata=meta,
        unit="image",
    )


def facemark_detector_network(
    data: dict[str, Any], meta: dict[str, str], raw: bool = False
) -> Network:
    """facemark's detector network's raw heat and box maps (``raw`` as for YuNet)."""
    from facemark.detectors.facemark import FacemarkDetector

    det = FacemarkDetector.from_checkpoint(data)
    names = ("heat", "box")
    meta |= {
        "input_size": f"dynamic: H and W multiples of 32 (letterboxed to {det.input_size})",
        "img_size": str(det.input_size),
        "outputs": ",".join(names),
        "stride": str(det.stride),
        "score_offset": str(det.score_offset),
        "output_layout": f"heat: (B, 1, H/{det.stride}, W/{det.stride}) logits of a face centre; "
        f"box: (B, 4, H/{det.stride}, W/{det.stride}) log(distance / stride) to the left, top, "
        "right and bottom edge from the cell centre (col*stride + (stride-1)/2, ...)",
        "score": "sigmoid(heat - score_offset) at 3x3 local maxima; 0.5 is the operating point",
        "decoding": "not in the graph: facemark.detection.decode, then NMS",
    }
    s = det.input_size
    return Network(
        module=det.model,
        task="detector",
        arch=str(data["arch"]),
        checks=((1, 3, s, s), (2, 3, 256, 384)),
        output_names=names,
        output_axes={n: {0: "batch", 2: "height_8", 3: "width_8"} for n in names},
        dynamic_hw=True,
        metadata=meta,
        unit="image",
    )


def _example(net: Network) -> Any:
    """The tracing input: batch 2 (torch.export would fix a batch of 1 as a constant)."""
    import torch

    _, c, h, w = net.checks[0]
    return torch.rand(2, c, h, w, generator=torch.Generator().manual_seed(0))
