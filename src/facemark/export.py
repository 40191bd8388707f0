"""``facemark export``: a landmark model or a face detector as ONNX or TorchScript, or a
landmark model as an int8 checkpoint (:func:`export_int8`, ``--format int8``).

The exported graph takes exactly what the torch network takes: ``float32 (B, 3, H, W)``, RGB,
values in [0, 1]; each network normalises inside, so the graph does too.  The batch is
dynamic; a detector's height and width are dynamic as well (multiples of 32).

What comes out:

* **landmarks** (default): the decoded prediction, ``keypoints (B, 68, 2)`` in pixels of the
  ``S x S`` face crop (pixel-index convention) and ``confidence (B, 68)`` in [0, 1]: the
  network and its ``decode`` traced together, which is what a deployer wants.  ``raw=True``
  exports the network's raw outputs instead (decoded by ``model.decode`` in
  :mod:`facemark.models`).  The crop itself (``transforms.crop_matrix``: a square around the
  face box centre, side ``max(w, h) * CROP_SCALE``) is not in the graph.
* **detectors**: the raw network outputs (YuNet's 12 tensors, facemark's heat and box maps).
  Decoding (priors, score calibration, thresholds, NMS, YuNet's box map) stays in facemark's
  Python code (:func:`facemark.detectors.yunet.decode_outputs`, :func:`facemark.detection.
  decode`); the numbers it needs (score threshold, box map, strides) are in the metadata.

Every file carries metadata (``facemark_version``, ``task``, ``arch``, ``input_size``, ...):
ONNX as ``metadata_props``, TorchScript as the extra file ``facemark.json``;
:func:`read_metadata` reads either.  After writing, the file is loaded back and compared
with torch on random inputs (the largest absolute difference of every output) and both are
timed.

ONNX goes through torch's TorchScript-based exporter (``torch.onnx.export(dynamo=False)``,
opset 17): it needs nothing beyond the ``onnx`` package, takes about a second and handles
every architecture here.  ``dynamo=True`` uses the newer ``torch.export``-based exporter,
which also needs ``onnxscript`` and is several times slower; it gives the same results.

This module imports torch only when it exports, so the CLI can read its constants cheaply.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facemark import quantize
from facemark.errors import FacemarkError, UsageError, quiet_warnings
from facemark.files import atomic_write, sha256_file
from facemark.tasks.defaults import TASKS

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

FORMATS = ("onnx", "torchscript")
#: The other ``--format``: an int8 facemark checkpoint for the CPU (:mod:`facemark.quantize`).
INT8 = "int8"
DEFAULT_OPSET = 17
#: The graph's input name.
INPUT_NAME = "image"
#: The extra file of a TorchScript export that holds the metadata (JSON).
METADATA_FILE = "facemark.json"
#: Largest absolute difference from torch an export may show before it is reported as broken.
TOLERANCE = 1e-3
#: Batch sizes the landmark model is timed at (ms per face).
LANDMARK_TIMING_BATCHES = (1, 32)
#: The canvas (H, W) detectors are checked and timed on first: a 640 x 480 photo.
DETECTOR_CHECK_HW = (480, 640)
INSTALL_HINT = "pip install 'facemark[export]'"


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


@dataclass
class Timing:
    """Milliseconds per face (or image) at one batch size, exported runtime and torch."""

    batch: int
    exported_ms: float
    torch_ms: float


@dataclass
class ExportResult:
    path: Path
    format: str
    task: str
    arch: str
    size: int
    metadata: dict[str, str]
    output_names: tuple[str, ...]
    source: Path | None = None
    source_size: int = 0
    #: Largest absolute difference from torch, per output, over all check inputs.
    diffs: dict[str, float] = field(default_factory=dict)
    timings: list[Timing] = field(default_factory=list)
    unit: str = "face"
    threads: int = 0
    checked_shapes: tuple[tuple[int, ...], ...] = ()
    seconds: float = 0.0

    @property
    def max_abs_diff(self) -> float | None:
        return max(self.diffs.values()) if self.diffs else None

    @property
    def ok(self) -> bool:
        """No check made, or every output within :data:`TOLERANCE` of torch."""
        diff = self.max_abs_diff
        return diff is None or diff <= TOLERANCE

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "task": self.task,
            "arch": self.arch,
            "size": self.size,
            "max_abs_diff": self.max_abs_diff,
            "diffs": self.diffs,
            "timings": [vars(t) for t in self.timings],
            "unit": self.unit,
            "threads": self.threads,
            "metadata": self.metadata,
        }


# --------------------------------------------------------------------------- the networks


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
        only_detector = text in hub.BUNDLED["detector"] and text not in hub.BUNDLED["landmarks"]
        lookup = "detector" if only_detector else "landmarks"
    path = hub.resolve_model(spec, lookup)
    return path, checkpoint.load_checkpoint(path, task)


def load_network(spec: Any, task: str | None = None, raw: bool = False) -> Network:
    """The network ``spec`` names, as facemark runs it (eval mode, BatchNorm folded where
    facemark folds it), wrapped for export, with its metadata."""
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
    if data["task"] == "landmarks":
        net = _landmark_network(data, raw, base)
    elif data["arch"] == "yunet":
        net = _yunet_network(data, base)
    else:
        net = _facemark_detector_network(data, base)
    net.source = path
    return net


def _landmark_network(data: dict[str, Any], raw: bool, meta: dict[str, str]) -> Network:
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


def _yunet_network(data: dict[str, Any], meta: dict[str, str]) -> Network:
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


def _facemark_detector_network(data: dict[str, Any], meta: dict[str, str]) -> Network:
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


# --------------------------------------------------------------------------- writing


def _example(net: Network) -> Any:
    """The tracing input: batch 2 (torch.export would fix a batch of 1 as a constant)."""
    import torch

    _, c, h, w = net.checks[0]
    return torch.rand(2, c, h, w, generator=torch.Generator().manual_seed(0))


def _write_torchscript(net: Network, out: Path) -> None:
    import torch

    with quiet_warnings(), torch.no_grad():
        traced = torch.jit.trace(net.module, (_example(net),), check_trace=False)
    meta = dict(net.metadata, format="torchscript")
    with atomic_write(out, "wb") as fh, quiet_warnings():
        torch.jit.save(traced, fh, _extra_files={METADATA_FILE: json.dumps(meta, indent=1)})


def _newest_opset() -> int:
    """The highest ONNX opset the installed torch exports (a private constant: fall back to
    a conservative one if it moves)."""
    try:
        from torch.onnx import _constants

        return int(_constants.ONNX_MAX_OPSET)
    except (ImportError, AttributeError, ValueError):
        return 20


def _static_output_dims(proto: Any, net: Network, example: Any) -> None:
    """Give every output dimension that is not declared dynamic its fixed size: the exporter
    names some of them after the op that made them (``Subkeypoints_dim_1`` for the 68)."""
    outputs = net.module(example)
    outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    for value, tensor in zip(proto.graph.output, outputs, strict=False):
        dynamic = net.output_axes.get(value.name, {})
        for k, dim in enumerate(value.type.tensor_type.shape.dim):
            if k not in dynamic and k < tensor.ndim:
                dim.Clear()
                dim.dim_value = int(tensor.shape[k])


def _write_onnx(net: Network, out: Path, opset: int, dynamo: bool) -> None:
    import onnx
    import torch

    example = _example(net)
    axes = {0: "batch", 2: "height", 3: "width"} if net.dynamic_hw else {0: "batch"}
    with quiet_warnings(), torch.no_grad():
        if dynamo:
            proto = _dynamo_proto(net, example, opset)
        else:
            buf = io.BytesIO()
            torch.onnx.export(
                net.module,
                (example,),
                buf,
                input_names=[INPUT_NAME],
                output_names=list(net.output_names),
                dynamic_axes={INPUT_NAME: axes, **net.output_axes},
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
            proto = onnx.load_from_string(buf.getvalue())
        _static_output_dims(proto, net, example)
    used = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    meta = dict(net.metadata, format="onnx", opset=str(used[0] if used else opset))
    onnx.helper.set_model_props(proto, meta)
    proto.doc_string = (
        f"facemark {net.task} model ({net.arch}); input {INPUT_NAME}: {meta['input_format']}"
    )
    onnx.checker.check_model(proto)
    with atomic_write(out, "wb") as fh:
        fh.write(proto.SerializeToString())


def _dynamo_proto(net: Network, example: Any, opset: int) -> Any:
    import torch

    batch = torch.export.Dim("batch", min=1, max=4096)
    dims: dict[int, Any] = {0: batch}
    if net.dynamic_hw:
        dims[2] = 32 * torch.export.Dim("height_32", min=1, max=256)
        dims[3] = 32 * torch.export.Dim("width_32", min=1, max=256)
    with contextlib.redirect_stdout(io.StringIO()):  # it reports its progress on stdout
        program = torch.onnx.export(
            net.module,
            (example,),
            None,
            input_names=[INPUT_NAME],
            output_names=list(net.output_names),
            dynamic_shapes=(dims,),
            opset_version=max(opset, 18),  # the lowest opset it implements
            dynamo=True,
            verbose=False,
        )
    return program.model_proto


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _check_requirements(fmt: str, check: bool, dynamo: bool) -> None:
    if fmt == INT8:
        raise UsageError(
            "export_model writes ONNX or TorchScript; int8 checkpoints come from "
            "export_int8 (facemark export MODEL --format int8)"
        )
    if fmt not in FORMATS:
        known = ", ".join((*FORMATS, INT8))
        raise UsageError(f"unknown --format '{fmt}'; choose one of: {known}")
    if fmt != "onnx":
        return
    needed = ["onnx"] + (["onnxruntime"] if check else [])
    missing = [m for m in needed if not _installed(m)]
    if missing:
        raise FacemarkError(
            f"ONNX export needs the {' and '.join(missing)} package"
            f"{'s' if len(missing) > 1 else ''}: {INSTALL_HINT}"
            + (" (or --no-check to skip the comparison)" if missing == ["onnxruntime"] else "")
        )
    if dynamo and not _installed("onnxscript"):
        raise FacemarkError("the dynamo ONNX exporter needs onnxscript: pip install onnxscript")


#: File name endings each ``--format`` writes; another ending is refused (a typo such as
#: ``--out photo.jpg`` must not replace a photo with a model).
SUFFIXES = {
    "onnx": (".onnx",),
    "torchscript": (".pt", ".pth", ".ts", ".torchscript"),
    INT8: (".pt",),
}


def _check_out(out: str | os.PathLike, fmt: str, force: bool = False) -> Path:
    """The output path, once it is safe: a file name ending as ``fmt`` writes, not an existing
    file unless ``force``; a missing folder is created (as ``preview`` does)."""
    path = Path(out).expanduser()
    endings = SUFFIXES[fmt]
    if path.is_dir():
        raise UsageError(
            f"--out {out} is a folder; give a file name, e.g. {path / ('model' + endings[0])}"
        )
    if path.suffix.lower() not in endings:
        raise UsageError(
            f"--out {out} does not end in {' or '.join(endings)}, as a --format {fmt} file does; "
            f"e.g. {path.with_suffix(endings[0])}"
        )
    if path.exists() and not force:
        raise UsageError(f"--out {out} exists; pass --force to replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create {path.parent} ({exc.strerror})") from None
    return path


def export_model(
    spec: Any,
    fmt: str,
    out: str | os.PathLike,
    *,
    task: str | None = None,
    raw: bool = False,
    opset: int = DEFAULT_OPSET,
    dynamo: bool = False,
    check: bool = True,
    timing: bool = True,
    force: bool = False,
) -> ExportResult:
    """Export the model ``spec`` names (``default``, a bundled detector, a run, a checkpoint,
    a URL) as ``fmt`` (``onnx`` or ``torchscript``) to ``out``, written atomically.

    ``check`` loads the file back and compares it with torch on random inputs (and
    ``timing`` times both); see :class:`ExportResult`.  Bad options, a missing output folder
    or a file that is no facemark checkpoint are one-line :class:`FacemarkError`\\ s.
    """
    start = time.perf_counter()
    fmt = str(fmt).lower()
    _check_requirements(fmt, check, dynamo)
    newest = _newest_opset()
    if not DEFAULT_OPSET <= opset <= newest:
        raise UsageError(
            f"--opset must be between {DEFAULT_OPSET} and {newest}, the newest this torch "
            f"exports (got {opset})"
        )
    path = _check_out(out, fmt, force)
    net = load_network(spec, task, raw)
    if fmt == "onnx":
        _write_onnx(net, path, opset, dynamo)
    else:
        _write_torchscript(net, path)
    result = ExportResult(
        path=path,
        format=fmt,
        task=net.task,
        arch=net.arch,
        size=path.stat().st_size,
        metadata=read_metadata(path),
        output_names=net.output_names,
        source=net.source,
        source_size=net.source.stat().st_size if net.source else 0,
        unit=net.unit,
    )
    if check:
        check_parity(net, result, timing)
    result.seconds = time.perf_counter() - start
    return result


# --------------------------------------------------------------------------- reading back


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The facemark metadata of an exported file (ONNX or TorchScript)."""
    path = Path(path)
    with open(path, "rb") as fh:
        zipped = fh.read(4) == b"PK\x03\x04"  # TorchScript archives are zip files
    if zipped:
        import torch

        extra = {METADATA_FILE: ""}
        with quiet_warnings():
            torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        return json.loads(extra[METADATA_FILE] or "{}")
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def runner(path: str | os.PathLike, fmt: str, threads: int | None = None) -> Callable[..., list]:
    """A function ``(x float32 (B, 3, H, W) numpy) -> [outputs as numpy]`` running the
    exported file under its own runtime (onnxruntime on CPU, or torch.jit)."""
    import numpy as np

    if fmt == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )

        def run_onnx(x: np.ndarray) -> list:
            return session.run(None, {INPUT_NAME: np.ascontiguousarray(x, np.float32)})

        return run_onnx
    import torch

    with quiet_warnings():
        module = torch.jit.load(str(path), map_location="cpu")

    def run_script(x: np.ndarray) -> list:
        with torch.inference_mode():
            return [o.numpy() for o in _as_tuple(module(torch.from_numpy(x)))]

    return run_script


def _as_tuple(outputs: Any) -> tuple:
    return tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)


def _torch_runner(module: nn.Module) -> Callable[..., list]:
    import torch

    def run_torch(x: np.ndarray) -> list:
        with torch.inference_mode():
            return [o.float().numpy() for o in _as_tuple(module(torch.from_numpy(x)))]

    return run_torch


def check_parity(net: Network, result: ExportResult, timing: bool = True) -> ExportResult:
    """Largest absolute difference of every output between the file and torch, on random
    inputs of each of ``net.checks``; with ``timing``, ms per face/image under both."""
    import numpy as np
    import torch

    threads = torch.get_num_threads()
    exported = runner(result.path, result.format, threads)
    reference = _torch_runner(net.module)
    rng = np.random.default_rng(0)
    diffs = dict.fromkeys(net.output_names, 0.0)
    for shape in net.checks:
        x = rng.random(shape, dtype=np.float32)
        got, want = exported(x), reference(x)
        if len(got) != len(want):
            raise FacemarkError(
                f"the exported file gives {len(got)} outputs, torch {len(want)}: a broken export"
            )
        for name, a, b in zip(net.output_names, got, want, strict=True):
            if np.shape(a) != np.shape(b):
                raise FacemarkError(
                    f"output {name} has shape {np.shape(a)} in the export, {np.shape(b)} in "
                    f"torch, for input {shape}: a broken export"
                )
            diffs[name] = max(diffs[name], float(np.max(np.abs(np.asarray(a) - b), initial=0)))
    result.diffs = diffs
    result.threads = threads
    result.checked_shapes = tuple(net.checks)
    if timing:
        batches = LANDMARK_TIMING_BATCHES if net.task == "landmarks" else (1,)
        _, c, h, w = net.checks[0]
        for b in batches:
            x = rng.random((b, c, h, w), dtype=np.float32)
            result.timings.append(Timing(b, _ms(exported, x) / b, _ms(reference, x) / b))
    return result


def _ms(fn: Callable[[Any], Any], x: Any, min_seconds: float = 0.3, repeats: int = 3) -> float:
    """Median milliseconds of ``fn(x)`` after a warm-up call (at least ``repeats`` calls, and
    more until ``min_seconds`` have passed, at most 50)."""
    fn(x)
    times: list[float] = []
    began = time.perf_counter()
    while len(times) < 50 and (len(times) < repeats or time.perf_counter() - began < min_seconds):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


# --------------------------------------------------------------------------- reporting


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    return f"{n / 1e3:.1f} kB" if n < 1e6 else f"{n / 1e6:.1f} MB"


def _files_table(title: str, columns: list[str]) -> Any:
    """A rich table titled ``title``: format, file and size, then ``columns`` (numbers)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("format")
    table.add_column("file", overflow="fold")
    for name in ["size", *columns]:
        table.add_column(name, justify="right")
    return table


def results_table(result: ExportResult) -> Any:
    """The closing rich table: the file and its source, size, parity and speed."""
    runtime = "onnxruntime" if result.format == "onnx" else "torch.jit"
    title = f"export: {result.task} model {result.arch} -> {result.format}"
    if result.timings:
        title += f" (speed: {runtime} vs torch, {result.threads} CPU threads)"
    speed = [f"ms/{result.unit} b{t.batch}" for t in result.timings]
    table = _files_table(title, ["max abs diff", *speed])
    diff = result.max_abs_diff
    shown = "not checked" if diff is None else f"{diff:.2g}"
    if diff is not None and not result.ok:
        shown = f"[red]{shown}[/]"
    table.add_row(
        result.format,
        str(result.path),
        _size(result.size),
        shown,
        *[f"{t.exported_ms:.2f}" for t in result.timings],
    )
    if result.source is not None:
        table.add_row(
            "torch",
            str(result.source),
            _size(result.source_size),
            "",
            *[f"{t.torch_ms:.2f}" for t in result.timings],
        )
    return table


def result_notes(result: ExportResult) -> list[str]:
    """Lines printed under the table: what was compared, and what the graph leaves out."""
    notes = []
    if result.diffs:
        shapes = ", ".join("x".join(str(v) for v in s) for s in result.checked_shapes)
        notes.append(
            f"compared with torch on random inputs {shapes} (every output: "
            f"{', '.join(result.output_names)})"
        )
    side = result.metadata.get("img_size", "S")
    if result.task == "landmarks" and result.metadata.get("decoded") == "true":
        notes.append(
            f"input {INPUT_NAME}: float32 (B, 3, {side}, {side}) RGB in [0, 1], the face "
            "crop; outputs keypoints (B, 68, 2) in crop pixels, "
            "confidence (B, 68)"
        )
    elif result.task == "detector":
        notes.append(
            f"input {INPUT_NAME}: float32 (B, 3, H, W) RGB in [0, 1], H and W multiples of 32; "
            "raw outputs: decoding (thresholds, NMS) is facemark's Python code, its numbers "
            "are in the file's metadata"
        )
    if not result.ok:
        notes.append(
            f"[red]the export differs from torch by {result.max_abs_diff:.3g} "
            f"(more than {TOLERANCE:g}): do not use it[/]"
        )
    return notes


# --------------------------------------------------------------------------- int8 (quantize.py)


def split_crops(
    data: Mapping[str, Any],
    split: str,
    limit: int | None = None,
    root: str | os.PathLike | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, Any]:
    """``(crops float (N, 3, S, S), keypoints (N, 68, 2) crop px)`` of one split of a
    checkpoint's own train/val division (``evaluate.split_settings_from_config``), without
    augmentation (the inference-time crop); ``limit`` keeps a random ``limit`` of its
    frames, picked by ``seed``."""
    import numpy as np
    import torch

    from facemark import dataset, evaluate

    size = int(data.get("img_size") or (data.get("arch_kwargs") or {}).get("img_size") or 0)
    settings = {
        **evaluate.VAL_DEFAULTS,
        **evaluate.split_settings_from_config(data.get("config")),
    }
    faces = dataset.load_split(split, root=root, limit=limit, limit_seed=seed, **settings)
    ds = dataset.LandmarkDataset(faces, size, augment=False)
    items = [ds[i] for i in range(len(ds))]
    if not items:
        return torch.zeros(0, 3, size, size), np.zeros((0, 68, 2))
    crops = torch.stack([c for c, _ in items])
    kps = np.stack([k.numpy() for _, k in items]).astype(np.float64)
    return crops, kps


@dataclass
class Int8Result:
    """What ``facemark export --format int8`` made and measured."""

    path: Path
    source: Path
    arch: str
    size: int
    source_size: int
    parts: tuple[str, ...]
    calib_crops: int
    seed: int
    threads: int
    load_s: float
    #: val faces scored, and per variant (float, int8) its metrics and ms per face per batch.
    val_faces: int = 0
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    timings: dict[str, dict[int, float]] = field(default_factory=dict)
    max_diff_px: float | None = None
    seconds: float = 0.0

    @property
    def delta_points(self) -> float | None:
        """int8 NME_io minus float NME_io, in percentage points (None if not scored)."""
        if "float" not in self.metrics or "int8" not in self.metrics:
            return None
        return 100 * (self.metrics["int8"]["nme_io"] - self.metrics["float"]["nme_io"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "source": str(self.source),
            "arch": self.arch,
            "size": self.size,
            "source_size": self.source_size,
            "quantized": quantize.SCHEME,
            "quantized_parts": list(self.parts),
            "calibration": {"split": "train", "crops": self.calib_crops, "seed": self.seed},
            "threads": self.threads,
            "load_s": self.load_s,
            "val_faces": self.val_faces,
            "metrics": self.metrics,
            "delta_nme_points": self.delta_points,
            "ms_per_face": {k: {f"b{b}": v for b, v in t.items()} for k, t in self.timings.items()},
            "max_diff_px": self.max_diff_px,
        }


def _score(pred: Any, gt: Any) -> dict[str, float]:
    from facemark import metrics

    summary = metrics.summarize(pred.astype("float64"), gt)
    return {k: float(summary[k]) for k in metrics.HEADLINE}  # type: ignore[arg-type]


def _batch_of(crops: Any, b: int) -> Any:
    import torch

    reps = -(-b // len(crops))
    return (torch.cat([crops] * reps) if reps > 1 else crops)[:b].contiguous()


def export_int8(
    spec: Any,
    out: str | os.PathLike,
    *,
    calib: int = quantize.CALIB_CROPS,
    seed: int = quantize.CALIB_SEED,
    root: str | os.PathLike | None = None,
    check: bool = True,
    force: bool = False,
) -> Int8Result:
    """An int8 checkpoint of the float landmark model ``spec`` names, written atomically.

    Calibrates on ``calib`` random crops (picked by ``seed``) of the *training* split of the
    model's own train/val division of the dataset at ``root`` (default: the installed one),
    without augmentation.  With ``check``, float and int8 are scored on that division's
    ``val`` split (ground-truth boxes, crop pixels, like training's validation) and timed
    (ms per face at batch 1 and 32, crops in, points out); the int8 figures become the
    checkpoint's ``metrics``, the float ones ``float_metrics``.  The file is written to a
    temporary name, loaded back (``load_s``, in this process) and compared with the
    calibrated module (the outputs must be identical) before it is renamed to ``out``.
    """
    import numpy as np
    import torch

    from facemark import checkpoint, evaluate, models
    from facemark.landmarker import Landmarker

    start = time.perf_counter()
    path = _check_out(out, INT8, force)
    if calib < 1:
        raise UsageError(f"--calib must be at least 1 (got {calib})")
    source, data = resolve(spec)
    if data["task"] != "landmarks":
        raise UsageError(f"int8 export is for landmark models; {spec} is a {data['task']} model")
    if data.get("quantized"):
        raise UsageError(f"{spec} is already an int8 model ({data['quantized']})")
    float_lm = Landmarker.from_checkpoint(data)
    raw = models.build_landmark_model(data["arch"], **dict(data.get("arch_kwargs") or {}))
    raw.load_state_dict(data["state_dict"])
    parts = quantize.quantized_parts(raw.eval())
    quantize._use_x86_engine()
    calib_crops, _ = split_crops(data, "train", calib, root, seed)
    qmodel = quantize.quantize_int8(raw, calib_crops)
    state = qmodel.state_dict()  # before Landmarker folds the float BatchNorms left (regression)
    info = {**float_lm.info, "quantized": quantize.SCHEME}
    int8_lm = Landmarker(qmodel, float_lm.img_size, "cpu", info)
    result = Int8Result(
        path=path,
        source=source,
        arch=str(data["arch"]),
        size=0,
        source_size=source.stat().st_size,
        parts=tuple(parts),
        calib_crops=len(calib_crops),
        seed=seed,
        threads=torch.get_num_threads(),
        load_s=0.0,
    )
    if check:
        val, gt = split_crops(data, "val", None, root)
        if len(val):
            preds = {}
            for name, lm in (("float", float_lm), ("int8", int8_lm)):
                preds[name] = lm.predict_crops(val)[0]
                result.metrics[name] = _score(preds[name], gt)
                result.timings[name] = {
                    b: _ms(lm.predict_crops, _batch_of(val, b)) / b for b in LANDMARK_TIMING_BATCHES
                }
            result.val_faces = len(val)
            result.max_diff_px = float(np.abs(preds["int8"] - preds["float"]).max())
    payload = {k: data[k] for k in checkpoint.EXPORT_KEYS if k in data}
    payload |= {
        "state_dict": state,
        "quantized": quantize.SCHEME,
        "quantized_parts": list(parts),
        "calibration": {
            "split": "train",
            "crops": len(calib_crops),
            "seed": seed,
            "batch": quantize.CALIB_BATCH,
            "split_settings": evaluate.split_settings_from_config(data.get("config")),
        },
        "float_metrics": data.get("metrics"),
        "metrics": result.metrics.get("int8"),
        "source": source.name,
        "source_sha256": sha256_file(source),
        "torch_version": str(torch.__version__),
    }
    _write_checked(payload, path, int8_lm, calib_crops[:32], result)
    result.size = path.stat().st_size
    result.seconds = time.perf_counter() - start
    return result


def _write_checked(
    payload: dict[str, Any], path: Path, calibrated: Any, x: Any, result: Int8Result
) -> None:
    """Save to a temporary name beside ``path``, load it back the way every command will
    (timed) and compare with the calibrated model; rename into place only if identical."""
    import numpy as np

    from facemark import checkpoint
    from facemark.landmarker import Landmarker

    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        checkpoint.save_checkpoint(tmp, payload)
        t0 = time.perf_counter()
        loaded = Landmarker.from_checkpoint(tmp)
        result.load_s = time.perf_counter() - t0
        got, want = loaded.predict_crops(x), calibrated.predict_crops(x)
        if not all(np.array_equal(g, w) for g, w in zip(got, want, strict=True)):
            diff = max(float(np.abs(g - w).max()) for g, w in zip(got, want, strict=True))
            raise FacemarkError(
                f"the saved int8 model does not reproduce the calibrated one (max diff {diff:.3g}"
                f" px); {path} not written"
            )
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def int8_table(result: Int8Result) -> Any:
    """The closing rich table: float and int8 side by side, val NME and speed."""
    title = f"export: landmarks model {result.arch} -> int8"
    if result.val_faces:
        title += f" (val: {result.val_faces} faces; speed: {result.threads} CPU threads)"
    speed = [f"ms/face b{b}" for b in LANDMARK_TIMING_BATCHES]
    table = _files_table(title, ["val NME_io (%)", "delta (points)", *speed])
    delta = result.delta_points
    for name, file, size in (
        ("float", result.source, result.source_size),
        ("int8", result.path, result.size),
    ):
        m = result.metrics.get(name)
        nme = "not scored" if m is None else f"{100 * m['nme_io']:.3f}"
        shown = ""
        if name == "int8" and delta is not None:
            shown = f"{delta:+.3f}"
            if abs(delta) >= quantize.NME_TOLERANCE:
                shown = f"[yellow]{shown}[/]"
        times = result.timings.get(name, {})
        table.add_row(
            name,
            str(file),
            _size(size),
            nme,
            shown,
            *[f"{times[b]:.2f}" if b in times else "" for b in LANDMARK_TIMING_BATCHES],
        )
    return table


def int8_notes(result: Int8Result) -> list[str]:
    """Lines printed under the table: how it was calibrated, scored and checked."""
    notes = [
        f"int8 ({quantize.SCHEME}): {', '.join(result.parts)} quantised, head conv and decoding "
        f"float32; calibrated on {result.calib_crops} train-split crops (seed {result.seed}), "
        "no augmentation",
        "the saved file, loaded back as every command loads it, gives the calibrated model's "
        "outputs exactly; it runs on the CPU only (quantised kernels)",
    ]
    if result.val_faces:
        notes.append(
            f"scored on the model's own val split ({result.val_faces} faces, ground-truth "
            f"boxes); largest point difference from float {result.max_diff_px:.2f} crop px; "
            "ms/face: crops in, points out"
        )
        delta = result.delta_points
        if delta is not None and abs(delta) >= quantize.NME_TOLERANCE:
            notes.append(
                f"[yellow]int8 moves val NME_io by {delta:+.3f} points (more than "
                f"{quantize.NME_TOLERANCE}): compare before you use it[/]"
            )
    return notes
