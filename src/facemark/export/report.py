"""What ``facemark export`` prints when it is done: the closing rich table and the notes under
it, for an ONNX or TorchScript file (:class:`ExportResult`) and for an int8 checkpoint
(:class:`Int8Result`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from facemark import quantize
from facemark.export.options import INPUT_NAME, LANDMARK_TIMING_BATCHES, TOLERANCE

if TYPE_CHECKING:
    from facemark.export.int8 import Int8Result
    from facemark.export.result import ExportResult


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
