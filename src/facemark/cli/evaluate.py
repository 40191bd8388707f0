"""``facemark evaluate``."""

from __future__ import annotations

from typing import Any

import typer

from facemark.cli.app import GPU_HELP, app, cli_errors, console, resolve_device
from facemark.config import EVALUATE
from facemark.detectors.base import DetectorConfig

_DETECT = DetectorConfig()


@app.command("evaluate")
@cli_errors
def evaluate_cmd(
    ctx: typer.Context,
    models: list[str] | None = typer.Argument(
        None,
        help="Models to compare: default (bundled; the default), a run name, a checkpoint or "
        "an https URL.",
        show_default=False,
    ),
    split: str | None = typer.Option(
        None, "--split", help="val or test of the installed dataset (default: test)."
    ),
    images: str | None = typer.Option(
        None, "--images", help="A folder of labelled images (with --labels)."
    ),
    labels: str | None = typer.Option(
        None, "--labels", help="CSV for --images: header, then name,x0,y0,...,x67,y67."
    ),
    data: list[str] | None = typer.Option(
        None,
        "--data",
        metavar="PATH",
        help="A dataset root (with --split), or labelled faces to score: a folder of images "
        "with .pts files, annotations.jsonl, a COCO keypoints JSON or a CSV. Repeat for a "
        "table per source; with several, --split val scores each source's held-out part as "
        "train --data splits it.",
    ),
    val_fraction: float | None = typer.Option(
        None, "--val-fraction", help="Val split: share held out (default: the run's, else 0.1)."
    ),
    seed: int | None = typer.Option(
        None, "--seed", help="Val split seed (default: the run's, else 0)."
    ),
    val_by: str | None = typer.Option(
        None, "--val-by", help="Val split: identity or frame (default: the run's, else identity)."
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Evaluate a random N frames of the split (quick check)."
    ),
    boxes: str = typer.Option(
        EVALUATE.boxes,
        "--boxes",
        help="gt: crop from the true points; detect: use the face detector.",
    ),
    detector: str = typer.Option(
        EVALUATE.detector,
        "--detector",
        help="Detector for --boxes detect (name, run, path or URL).",
    ),
    threshold: float = typer.Option(
        _DETECT.threshold, "--det-threshold", min=0.0, max=1.0, help="Detector score threshold."
    ),
    flip: bool = typer.Option(
        EVALUATE.flip, "--flip", help="Average with the mirrored face's prediction."
    ),
    device: str = typer.Option(EVALUATE.device, "--device", help="cpu, cuda or cuda:N."),
    gpu: bool = typer.Option(False, "--gpu", help=GPU_HELP),
    batch_size: int = typer.Option(
        EVALUATE.batch_size, "--batch-size", min=1, help="Frames (faces) per network call."
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="Torch CPU threads (default: torch's choice)."
    ),
    timing: bool = typer.Option(
        EVALUATE.timing, "--timing/--no-timing", help="Measure ms/face at batch 1 and 32."
    ),
    regions: bool = typer.Option(False, "--regions", help="Also show NME per facial region."),
    subsets: bool = typer.Option(
        False,
        "--subsets",
        help="Also show NME, FR and AUC by yaw, face size and confidence, and how well the "
        "confidence ranks the errors (Spearman).",
    ),
    json_out: bool = typer.Option(
        False, "--json", help="Print one JSON object to stdout instead of tables."
    ),
    report: str | None = typer.Option(
        None,
        "--report",
        help="Folder for ced.png, per_image.csv, subsets.csv, worst.png and summary.json.",
    ),
    worst: int = typer.Option(
        EVALUATE.worst, "--worst", min=1, help="How many of the worst frames the gallery shows."
    ),
) -> None:
    """Score landmark models: NME_io, failure rate, AUC, NME by region and ms/face.

    Compare models side by side on the test frames, the validation persons of a run, or
    your own labelled folder; --json for scripts, --report for plots and the worst faces.

    Example: facemark evaluate my-run default --split val --regions --report eval-out
    """
    import json

    from facemark import evaluate as ev

    result = ev.evaluate(
        models or ["default"],
        split=split,
        images=images,
        labels=labels,
        data=data or [],
        val_fraction=val_fraction,
        seed=seed,
        val_by=val_by,
        limit=limit,
        boxes=boxes,
        detector=detector,
        threshold=threshold,
        flip=flip,
        device=resolve_device(ctx, device, gpu),
        batch_size=batch_size,
        timing=timing,
        threads=threads,
        report=report,
        worst=worst,
        progress=True,
    )
    if json_out:
        typer.echo(json.dumps(result))
        return
    for name, one in result.get("sources", {"": result}).items():
        if name:
            console.print(f"[bold]{name}[/]", highlight=False)
        _print_evaluation(ev, one, regions, subsets)


def _print_evaluation(ev: Any, result: dict[str, Any], regions: bool, subsets: bool) -> None:
    console.print(ev.results_table(result))
    if regions:
        console.print(ev.regions_table(result))
    if subsets:
        for table in ev.subsets_tables(result):
            console.print(table)
    for line in ev.result_notes(result):
        console.print(line, highlight=False)
