"""``facemark export``: a landmark model or a face detector as ONNX or TorchScript.

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
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facemark.errors import FacemarkError, UsageError
from facemark.files import atomic_write

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

FORMATS = ("onnx", "torchscript")
TASKS = ("landmarks", "detector")
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


@contextlib.contextmanager
def _quiet() -> Any:
    """Tracing warns about every shape check it freezes and about its own deprecation;
    the parity check is what tells whether the export is right."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _write_torchscript(net: Network, out: Path) -> None:
    import torch

    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(net.module, (_example(net),), check_trace=False)
    meta = dict(net.metadata, format="torchscript")
    with atomic_write(out, "wb") as fh, _quiet():
        torch.jit.save(traced, fh, _extra_files={METADATA_FILE: json.dumps(meta, indent=1)})


def _newest_opset() -> int:
    """The highest ONNX opset the installed torch exports (a private constant: fall back to
    a conservative one if it moves)."""
    try:
        from torch.onnx import _constants

        return int(_constants.ONNX_MAX_OPSET)
    except (ImportError, AttributeError, ValueError):
        return 20


def _write_onnx(net: Network, out: Path, opset: int, dynamo: bool) -> None:
    import onnx
    import torch

    example = _example(net)
    axes = {0: "batch", 2: "height", 3: "width"} if net.dynamic_hw else {0: "batch"}
    with _quiet(), torch.no_grad():
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
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format '{fmt}'; choose one of: {', '.join(FORMATS)}")
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


def _check_out(out: str | os.PathLike) -> Path:
    path = Path(out).expanduser()
    if path.is_dir():
        raise UsageError(f"--out {out} is a folder; give a file name, e.g. {path / 'model.onnx'}")
    if not path.parent.is_dir():
        raise UsageError(f"--out {out}: the folder {path.parent} does not exist")
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
    path = _check_out(out)
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
        with _quiet():
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

    with _quiet():
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


def results_table(result: ExportResult) -> Any:
    """The closing rich table: the file and its source, size, parity and speed."""
    from rich.table import Table

    runtime = "onnxruntime" if result.format == "onnx" else "torch.jit"
    title = f"export: {result.task} model {result.arch} -> {result.format}"
    if result.timings:
        title += f" (speed: {runtime} vs torch, {result.threads} CPU threads)"
    table = Table(title=title, title_justify="left")
    table.add_column("format")
    table.add_column("file", overflow="fold")
    table.add_column("size", justify="right")
    table.add_column("max abs diff", justify="right")
    for t in result.timings:
        table.add_column(f"ms/{result.unit} b{t.batch}", justify="right")
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
