"""``facemark models`` and ``facemark export``: what models there are, and deploying them."""

from __future__ import annotations

import typer

from facemark.cli.app import app, cli_errors, console
from facemark.config import EXPORT
from facemark.export import FORMATS as EXPORT_FORMATS
from facemark.export import INT8 as EXPORT_INT8


@app.command("models")
@cli_errors
def models_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON."),
) -> None:
    """List the bundled models and your training runs: what --model and --detector accept.

    Example:  facemark models
    """
    import json

    from facemark import hub

    entries = hub.list_models()
    if as_json:
        typer.echo(json.dumps(entries, indent=2))
    elif not entries:
        console.print(hub.no_models_message(), highlight=False)
    else:
        console.print(hub.models_table(entries))


@app.command("export")
@cli_errors
def export_cmd(
    model: str = typer.Argument(
        ...,
        metavar="MODEL",
        help="Model to export: default (the landmark model), yunet, yunet_s, facemark (the "
        "detectors), a run, a checkpoint or an https URL.",
        show_default=False,
    ),
    fmt: str = typer.Option(
        ...,
        "--format",
        "-f",
        help=f"{', '.join(EXPORT_FORMATS)} or {EXPORT_INT8} (a landmark checkpoint with int8 "
        "weights for the CPU, which --model takes like any other).",
        show_default=False,
    ),
    out: str = typer.Option(
        ...,
        "--out",
        "-o",
        help="File to write: .onnx, or .pt for torchscript and int8 (a missing folder is made).",
        show_default=False,
    ),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
    task: str | None = typer.Option(
        None,
        "--task",
        show_default="the checkpoint's",
        help="landmarks or detector: which kind a name means (default: landmarks, except for "
        "the detector names above).",
    ),
    raw: bool = typer.Option(
        False,
        "--raw",
        help="Landmarks: export the raw network outputs instead of keypoints + confidence.",
    ),
    opset: int = typer.Option(
        EXPORT.opset, "--opset", min=EXPORT.opset, help="ONNX opset version."
    ),
    dynamo: bool = typer.Option(
        False,
        "--dynamo",
        help="ONNX: use torch's torch.export-based exporter (needs onnxscript; slower).",
    ),
    check: bool = typer.Option(
        EXPORT.check,
        "--check/--no-check",
        help="Compare the file with torch on random inputs, time both.",
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, show_default="torch's", help="CPU threads for the check."
    ),
    calib: int | None = typer.Option(
        None,
        "--calib",
        min=1,
        show_default=str(EXPORT.calib),
        help="int8: training-split crops that calibrate the quantisation.",
    ),
    seed: int | None = typer.Option(
        None,
        "--seed",
        show_default=str(EXPORT.calib_seed),
        help="int8: picks the calibration crops.",
    ),
    data: str | None = typer.Option(
        None,
        "--data",
        metavar="PATH",
        help="int8: dataset root to calibrate and score on (default: the installed one).",
    ),
) -> None:
    """Export a landmark model or a face detector as ONNX or TorchScript, or a landmark
    model as an int8 checkpoint.

    The graph takes float32 (B, 3, H, W) RGB in [0, 1], like the torch network (normalisation
    inside, dynamic batch; detectors also any H, W that are multiples of 32).  Landmark
    models give keypoints (B, 68, 2) in crop pixels and confidence (B, 68); detectors their
    raw outputs, decoded by facemark's Python code (the numbers it needs are in the file's
    metadata).  See docs/your-data.md.

    --format int8 calibrates on training-split crops, scores float and int8 on the model's
    val split and writes a checkpoint that annotate, evaluate and the Python API take as
    --model (CPU only); see docs/model.md.

    Examples:  facemark export default --format onnx --out face68.onnx
               facemark export yunet --format torchscript --out yunet.pt
               facemark export my-run --format int8 --out my-run-int8.pt
    """
    from facemark import export
    from facemark.devices import set_threads
    from facemark.errors import UsageError

    set_threads(threads)
    if fmt.lower() == EXPORT_INT8:
        if raw or dynamo or task not in (None, "landmarks"):
            raise UsageError("--raw, --dynamo and --task detector are not for --format int8")
        made = export.export_int8(
            model,
            out,
            calib=EXPORT.calib if calib is None else calib,
            seed=EXPORT.calib_seed if seed is None else seed,
            root=data,
            check=check,
            force=force,
        )
        console.print(export.int8_table(made))
        for line in export.int8_notes(made):
            console.print(line, highlight=False)
        return
    if calib is not None or seed is not None or data is not None:
        raise UsageError("--calib, --seed and --data are for --format int8")
    result = export.export_model(
        model, fmt, out, task=task, raw=raw, opset=opset, dynamo=dynamo, check=check, force=force
    )
    console.print(export.results_table(result))
    for line in export.result_notes(result):
        console.print(line, highlight=False)
    if not result.ok:
        raise typer.Exit(1)
