"""Landmark network speed on CPU, per inference variant, with the accuracy each one keeps.

    python benchmarks/bench_landmarks.py [--model SPEC] [--threads 2] [--quick]

For one landmark checkpoint (``--model``: bundled name, run name, checkpoint path or URL, as
the CLI takes it; default the bundled model) this measures, on CPU with
``torch.set_num_threads(--threads)``, the milliseconds per face of the network *and* its
``decode`` (crops in, keypoints and confidences out as numpy) at batch 1 and batch 32, for:

``eager``
    what :class:`facemark.Landmarker` runs today: eval mode, BatchNorm folded into the convs.
``channels_last``
    the same model and input in ``torch.channels_last`` memory format (the input conversion
    is inside the timed call).
``torchscript``
    network + decode traced (batch 2), frozen and passed through
    ``torch.jit.optimize_for_inference``.
``onnxruntime``
    the ``facemark export`` ONNX graph (:func:`facemark.export.export_model`, network and
    decode) under onnxruntime's CPU provider with ``intra_op_num_threads = --threads``;
    skipped when onnx/onnxruntime are not installed.
``int8_dynamic``
    ``torch.ao.quantization.quantize_dynamic`` on ``nn.Linear`` (all it quantises): a conv
    network without dense layers comes out unchanged, and the row says so.
``int8_static`` / ``int8_static_all``
    FX graph mode post-training quantisation (``prepare_fx`` / ``convert_fx``, the ``x86``
    (fbgemm) qconfig mapping, observers calibrated on ``--calib`` training crops without
    augmentation) of the normalisation, backbone and neck; the last 1x1 head conv stays
    float32 (``int8_static``) or is quantised too (``int8_static_all``).  The decoding is
    float32 either way.  Starts from the unfused model so FX fuses conv + BN + ReLU itself.

Every variant is also scored on the identity-split ``val`` frames (the split the checkpoint
was trained with, ``evaluate.split_settings_from_config``) with ground-truth boxes: the crops
are ``facemark.data.LandmarkDataset(..., augment=False)``'s, the inference-time crop, scored in
crop pixels like training's validation (NME_io is scale-free, so the same as in image pixels).
``max diff`` is the largest absolute difference of any point from ``eager``'s, in crop pixels.
A variant is accurate enough when its NME moves less than 0.05 points (``NME_TOLERANCE``).

Timing: ``--rounds`` rounds, each timing every variant in turn (``--repeats`` calls at each
batch size, after warm-up calls), so a burst of load on a shared machine hits all variants
alike; each figure is the median call over all rounds divided by the batch size.  Writes the
markdown table to stdout and ``--out`` (default ``docs/landmark-speed.md``) and the record to
``--out-json`` (default ``benchmarks/results/landmark-speed.json``).  ``--quick`` (few repeats,
few val faces and calibration crops) is for tests and for checking the script.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import importlib.util
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(ROOT))

from benchmarks import report  # noqa: E402

DEFAULT_MD = ROOT / "docs" / "landmark-speed.md"
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "landmark-speed.json"
BATCHES = (1, 32)
#: The variants, in table order, and what each row is.
VARIANTS = {
    "eager": "eager, BatchNorm folded (Landmarker today)",
    "channels_last": "eager, channels-last",
    "torchscript": "TorchScript traced + frozen + optimize_for_inference",
    "onnxruntime": "ONNX (facemark export) on onnxruntime",
    "int8_dynamic": "int8 dynamic quantisation (nn.Linear)",
    "int8_static": "int8 static FX (backbone + neck; head float)",
    "int8_static_all": "int8 static FX (backbone + neck + head)",
}
#: NME (percentage points) a faster variant may lose and still be kept (issue 13).
NME_TOLERANCE = 0.05
#: Largest point difference from eager (crop px) that counts as the same output.
SAME_PX = 1e-4
#: How much faster than eager (at both batch sizes) a variant must be to be called faster.
CLEARLY_FASTER = 1.1

Predict = Callable[[Any], tuple[Any, Any]]  # torch crops (B, 3, S, S) -> (kps, conf) numpy


@dataclass
class Variant:
    key: str
    run: Predict | None = None
    note: str = ""
    skipped: str | None = None
    result: dict[str, Any] = field(default_factory=dict)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Tracing and the (deprecated) torch.ao quantisation API warn at every step."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# --------------------------------------------------------------------------- loading


def load_checkpoint(spec: str) -> tuple[Path, dict[str, Any]]:
    """The checkpoint file ``spec`` names and its contents (as the CLI resolves it)."""
    from facemark import checkpoint, hub

    path = hub.resolve_model(spec, "landmarks")
    return Path(path), checkpoint.read(path, task="landmarks")


def unfused_model(data: dict[str, Any]) -> Any:
    """The network as trained (BatchNorm not folded), eval mode: FX quantisation fuses it."""
    from facemark import models

    model = models.build_landmark_model(data["arch"], **dict(data.get("arch_kwargs") or {}))
    model.load_state_dict(data["state_dict"])
    return model.eval()


def val_crops(
    data: dict[str, Any], img_size: int, split: str, limit: int | None, root: str | None
) -> tuple[Any, Any]:
    """``(crops float (N, 3, S, S), keypoints (N, 68, 2) crop px)`` of a split of the model's
    own train/val division, without augmentation (the inference-time crop):
    :func:`facemark.export.split_crops`."""
    from facemark import export

    return export.split_crops(data, split, limit, root)


# --------------------------------------------------------------------------- variants


def torch_predict(module: Any, channels_last: bool = False) -> Predict:
    """``module`` (network + decode) as a :data:`Predict` under inference mode."""
    import torch

    def run(x: Any) -> tuple[Any, Any]:
        with torch.inference_mode():
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            kps, conf = module(x)
            return kps.float().numpy(), conf.float().numpy()

    return run


def build_torchscript(decoded: Any, img_size: int) -> Any:
    import torch

    example = torch.rand(2, 3, img_size, img_size, generator=torch.Generator().manual_seed(0))
    with quiet(), torch.no_grad():
        traced = torch.jit.trace(decoded, (example,), check_trace=False)
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
    return frozen


def build_onnx(source: Path, folder: Path, threads: int) -> Predict:
    from facemark import export

    path = folder / "landmarks.onnx"
    with quiet():
        export.export_model(str(source), "onnx", path, task="landmarks", check=False)
    session = export.runner(path, "onnx", threads)

    def run(x: Any) -> tuple[Any, Any]:
        kps, conf = session(x.numpy())
        return kps, conf

    return run


def build_dynamic(model: Any) -> tuple[Any, str]:
    """``quantize_dynamic`` on Linear layers; the note says how many it changed."""
    import torch
    from torch import nn

    linears = sum(isinstance(m, nn.Linear) for m in model.modules())
    with quiet():
        q = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8
        )
    if not linears:
        return q, "no nn.Linear in this network: quantize_dynamic changes nothing (= eager)"
    return q, f"{linears} nn.Linear layer(s) int8, convolutions float"


def build_static(model: Any, calib: Any, head: bool) -> tuple[Any, str]:
    """FX post-training static int8 of norm + backbone (+ neck) (+ head), calibrated on
    ``calib`` crops; the decode stays float: :func:`facemark.quantize.quantize_int8`, what
    ``facemark export --format int8`` ships (with ``head`` False)."""
    from facemark import quantize

    quantised = quantize.quantize_int8(model, calib, head=head)
    kept = "head conv float32" if not head else "head int8"
    return quantised, f"FX x86 qconfig, {len(calib)} calibration crops, {kept}, decode float32"


def decoded(model: Any) -> Any:
    from facemark.export.network import _decoded_module

    return _decoded_module(model)


def build_variants(
    source: Path,
    data: dict[str, Any],
    calib: Any,
    threads: int,
    folder: Path,
    skip: set[str],
) -> list[Variant]:
    import torch

    from facemark.landmarker import Landmarker

    lm = Landmarker.from_checkpoint(data)
    eager = decoded(lm.model)
    out: list[Variant] = []

    def attempt(key: str, make: Callable[[], tuple[Predict, str]]) -> None:
        if key in skip:
            out.append(Variant(key, skipped="--skip"))
            return
        log(f"building {key}")
        try:
            run, note = make()
        except Exception as exc:  # report what failed and go on with the others
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            out.append(Variant(key, skipped=f"{type(exc).__name__}: {first[:200]}"))
            return
        out.append(Variant(key, run, note))

    attempt("eager", lambda: (torch_predict(eager), "models.fuse_batchnorm"))

    def channels_last() -> tuple[Predict, str]:
        model = copy.deepcopy(lm.model).to(memory_format=torch.channels_last)
        return torch_predict(decoded(model), channels_last=True), "model and input NHWC"

    attempt("channels_last", channels_last)
    attempt(
        "torchscript",
        lambda: (
            torch_predict(build_torchscript(decoded(copy.deepcopy(lm.model)), lm.img_size)),
            "torch.jit.trace (batch 2) + freeze + optimize_for_inference",
        ),
    )
    if all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime")):
        import onnxruntime

        attempt(
            "onnxruntime",
            lambda: (
                build_onnx(source, folder, threads),
                f"onnxruntime {onnxruntime.__version__}, CPUExecutionProvider, opset "
                "17, TorchScript-based exporter",
            ),
        )
    else:
        out.append(Variant("onnxruntime", skipped="onnx / onnxruntime not installed"))

    def dynamic() -> tuple[Predict, str]:
        q, note = build_dynamic(lm.model)
        return torch_predict(decoded(q)), note

    attempt("int8_dynamic", dynamic)
    raw = unfused_model(data)
    for key, head in (("int8_static", False), ("int8_static_all", True)):

        def static(head: bool = head) -> tuple[Predict, str]:
            q, note = build_static(raw, calib, head)
            return torch_predict(decoded(q)), note

        attempt(key, static)
    return out


# --------------------------------------------------------------------------- measuring


def predict_all(run: Predict, crops: Any, batch: int = 32) -> Any:
    import numpy as np

    parts = [run(crops[s : s + batch])[0] for s in range(0, len(crops), batch)]
    return np.concatenate(parts).astype(np.float64)


def accuracy(pred: Any, gt: Any, reference: Any | None) -> dict[str, Any]:
    import numpy as np

    from facemark import metrics

    summary = metrics.summarize(pred, gt)
    out = {"nme_io": float(summary["nme_io"]), "fr_10": float(summary["fr_10"])}
    if reference is not None:
        out["max_diff_px"] = float(np.abs(pred - reference).max())
    return out


def batch_of(crops: Any, b: int) -> Any:
    """The first ``b`` crops (the crops repeated when there are fewer)."""
    import torch

    reps = -(-b // len(crops))
    return (torch.cat([crops] * reps) if reps > 1 else crops)[:b].contiguous()


def time_variants(
    variants: list[Variant], crops: Any, rounds: int, repeats: int, warmup: int
) -> None:
    """Median ms per face of each variant at each batch size (see the module docstring)."""
    inputs = {b: batch_of(crops, b) for b in BATCHES}
    live = [v for v in variants if v.run is not None]
    calls: dict[tuple[str, int], list[float]] = {(v.key, b): [] for v in live for b in BATCHES}
    for v in live:
        for b in BATCHES:
            for _ in range(warmup):
                v.run(inputs[b])
    for r in range(rounds):
        log(f"timing round {r + 1}/{rounds}")
        for v in live:
            for b in BATCHES:
                x = inputs[b]
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    v.run(x)
                    calls[(v.key, b)].append(1000.0 * (time.perf_counter() - t0) / b)
    for v in live:
        for b in BATCHES:
            runs = calls[(v.key, b)]
            v.result[f"ms_b{b}"] = statistics.median(runs)
            v.result[f"ms_b{b}_min"] = min(runs)


# --------------------------------------------------------------------------- report


def environment(threads: int) -> dict[str, Any]:
    import torch

    return {
        "cpu": report.cpu_name(),
        "cores": report.cores_visible(),
        "platform": platform.platform(),
        "torch_threads": threads,
        "torch_interop_threads": torch.get_num_interop_threads(),
        "quantized_engine": torch.backends.quantized.engine,
        "versions": report.package_versions(("facemark", "torch", "numpy", "onnxruntime")),
    }


def _num(value: Any, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def markdown(results: dict[str, Any]) -> str:
    env, s = results["environment"], results["settings"]
    model = results["model"]
    lines = [
        "# Landmark network speed on CPU",
        "",
        f"Generated by `{results['command']}` on {results['date']}.",
        "",
        f"- Machine: {env['cpu']}, {env['cores']} cores visible ({env['platform']}); "
        f"torch {env['versions'].get('torch')}, {env['torch_threads']} torch threads"
        f" (onnxruntime the same), quantised engine {s['quantized_engine']}",
        f"- Load average (1 min) at start / end: {env.get('load_start', '?')} / "
        f"{env.get('load_end', '?')}",
        f"- Model: `{model['source']}` ({model['arch']}, {model['img_size']} px crops, "
        f"{model['parameters']:,} parameters)",
        f"- Timing: ms per face of network + `decode` (crops in, numpy points out), median "
        f"call of {s['rounds']} rounds x {s['repeats']} calls per batch size after "
        f"{s['warmup']} warm-up calls, batches {', '.join(map(str, BATCHES))}",
        f"- Accuracy: {results['val']['faces']} `{results['val']['split']}` faces "
        f"({results['val']['settings']}), ground-truth boxes; max diff: largest point "
        f"difference from eager in crop pixels; keep: NME within {NME_TOLERANCE} points of "
        "eager",
        "",
        "| variant | ms/face b1 | ms/face b32 | val NME_io (%) | FR@0.10 (%) | max diff (px) "
        "| keep | notes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    base = next((r for r in results["variants"] if r["key"] == "eager"), None)
    for r in results["variants"]:
        label = f"{r['key']}: {VARIANTS[r['key']]}"
        if r.get("skipped"):
            lines.append(f"| {label} | – | – | – | – | – | – | skipped: {r['skipped']} |")
            continue
        nme = r.get("nme_io")
        keep = "–"
        if base and nme is not None and base.get("nme_io") is not None:
            delta = 100 * (nme - base["nme_io"])
            keep = ("yes" if abs(delta) < NME_TOLERANCE else "no") + f" ({delta:+.3f})"
        lines.append(
            f"| {label} | {_num(r.get('ms_b1'), '.3f')} | {_num(r.get('ms_b32'), '.3f')} "
            f"| {_num(None if nme is None else 100 * nme, '.3f')} "
            f"| {_num(None if r.get('fr_10') is None else 100 * r['fr_10'], '.2f')} "
            f"| {_num(r.get('max_diff_px'), '.2g')} | {keep} | {r.get('note', '')} |"
        )
    if results.get("notes"):
        lines += ["", *[f"- {n}" for n in results["notes"]]]
    return "\n".join(lines) + "\n"


def findings(results: dict[str, Any]) -> list[str]:
    """One line per variant that is at least :data:`CLEARLY_FASTER` times faster than eager at
    both batch sizes, saying whether its points are the same (within :data:`SAME_PX`)."""
    rows = {r["key"]: r for r in results["variants"] if not r.get("skipped")}
    base = rows.get("eager")
    notes = []
    if not base:
        return notes
    for key, r in rows.items():
        if key == "eager" or "ms_b1" not in r:
            continue
        faster = all(r[f"ms_b{b}"] * CLEARLY_FASTER <= base[f"ms_b{b}"] for b in BATCHES)
        same = r.get("max_diff_px", float("inf")) <= SAME_PX
        if faster:
            ratio = ", ".join(f"b{b} {base[f'ms_b{b}'] / r[f'ms_b{b}']:.2f}x" for b in BATCHES)
            what = "same points" if same else f"points differ by up to {r['max_diff_px']:.2g} px"
            notes.append(f"{key} is faster than eager at both batch sizes ({ratio}; {what})")
    if not notes:
        notes.append(f"no variant is {CLEARLY_FASTER:g}x faster than eager at both batch sizes")
    return notes


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="bundled name, run, path or URL")
    parser.add_argument("--threads", type=int, default=2, help="torch (and ORT) CPU threads")
    parser.add_argument("--rounds", type=int, default=None, help="timing rounds (5; quick 1)")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed calls per round and batch (20; quick 2)"
    )
    parser.add_argument("--warmup", type=int, default=None, help="warm-up calls (5; quick 1)")
    parser.add_argument(
        "--val-limit", type=int, default=None, help="val faces scored (all; quick 48)"
    )
    parser.add_argument(
        "--calib", type=int, default=None, help="train crops calibrating int8 static (200; 32)"
    )
    parser.add_argument("--data-root", default=None, help="dataset folder (installed one)")
    parser.add_argument("--skip", default="", help="comma-separated variants to leave out")
    parser.add_argument("--quick", action="store_true", help="few repeats and faces")
    parser.add_argument("--out", type=Path, default=DEFAULT_MD, help="markdown output")
    parser.add_argument("--out-json", type=Path, default=DEFAULT_JSON, help="JSON record")
    args = parser.parse_args(argv)
    for name, full, quick in (
        ("rounds", 5, 1),
        ("repeats", 20, 2),
        ("warmup", 5, 1),
        ("val_limit", None, 48),
        ("calib", 200, 32),
    ):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    unknown = set(filter(None, args.skip.split(","))) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown --skip {', '.join(sorted(unknown))}; known: {', '.join(VARIANTS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(args_list)
    import torch

    from facemark import evaluate, models

    started, load_start = time.perf_counter(), report.load_average()
    torch.set_num_threads(args.threads)
    if "x86" in torch.backends.quantized.supported_engines:
        torch.backends.quantized.engine = "x86"  # fbgemm + oneDNN, what the qconfig targets
    source, data = load_checkpoint(args.model)
    img_size = int(data.get("img_size") or data["arch_kwargs"]["img_size"])
    log(f"model {source} ({data['arch']}, {img_size} px)")
    crops, gt = val_crops(data, img_size, "val", args.val_limit, args.data_root)
    calib, _ = val_crops(data, img_size, "train", args.calib, args.data_root)
    log(f"{len(crops)} val faces, {len(calib)} calibration crops")
    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory(prefix="facemark-bench-lm-") as tmp:
        variants = build_variants(source, data, calib, args.threads, Path(tmp), skip)
        reference = None
        for v in variants:
            if v.run is None:
                continue
            log(f"scoring {v.key}")
            try:
                pred = predict_all(v.run, crops)
            except Exception as exc:  # e.g. a quantised op missing at some shape
                v.skipped, v.run = f"fails at inference: {type(exc).__name__}: {exc}"[:240], None
                continue
            if v.key == "eager":
                reference = pred
            v.result.update(accuracy(pred, gt, reference))
        time_variants(variants, crops, args.rounds, args.repeats, args.warmup)
    settings = {k: data.get("config", {}).get(k) for k in evaluate.VAL_DEFAULTS}
    results: dict[str, Any] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_landmarks.py " + " ".join(args_list),
        "settings": {
            "threads": args.threads,
            "rounds": args.rounds,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "calibration_crops": len(calib),
            "quick": args.quick,
            "quantized_engine": torch.backends.quantized.engine,
            "nme_tolerance_points": NME_TOLERANCE,
        },
        "model": {
            "source": str(source),
            "arch": data["arch"],
            "arch_kwargs": data.get("arch_kwargs"),
            "img_size": img_size,
            "parameters": models.count_parameters(unfused_model(data)),
            "run_name": data.get("run_name"),
        },
        "val": {
            "split": "val",
            "faces": len(crops),
            "settings": ", ".join(f"{k} {v}" for k, v in settings.items() if v is not None)
            or "defaults",
        },
        "variants": [
            {"key": v.key, "label": VARIANTS[v.key], "note": v.note, "skipped": v.skipped}
            | v.result
            for v in variants
        ],
    }
    results["notes"] = findings(results)
    results["environment"] = environment(args.threads)
    results["environment"].update(load_start=load_start, load_end=report.load_average())
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    report.write_outputs(results, args.out_json, args.out, markdown, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
