"""``facemark annotate``: photos, folders, globs and videos."""

from __future__ import annotations

import typer

from facemark.annotator import AnnotateConfig
from facemark.cli.app import GPU_HELP, app, cli_errors, console, err_console, resolve_device
from facemark.confidence import LOW_CONFIDENCE
from facemark.detectors.base import DetectorConfig
from facemark.video import VideoConfig

#: The defaults every option below shows and uses, declared in the library's config classes.
_ANNOTATE = AnnotateConfig()
_DETECT = DetectorConfig()
_VIDEO = VideoConfig()


@app.command("annotate")
@cli_errors
def annotate_cmd(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(
        ...,
        metavar="PATH...",
        help="Image and video files, folders or glob patterns (quote them: 'photos/*.jpg').",
    ),
    out: str = typer.Option(
        "facemark-out",
        "--out",
        "-o",
        help="Output folder (never an input folder). Running again into it adds to it: an image "
        "annotated again gets its newer record, the others keep theirs.",
    ),
    recursive: bool = typer.Option(
        _ANNOTATE.recursive, "--recursive", "-r", help="Also search the folders' subfolders."
    ),
    model: str = typer.Option(
        _ANNOTATE.model,
        "--model",
        "-m",
        help="Landmark model: default, a run, a checkpoint or an https URL.",
    ),
    detector: str = typer.Option(
        _ANNOTATE.detector,
        "--detector",
        help="Face detector: default (YuNet), yunet_s, facemark, boxes:FILE (your boxes, "
        "JSON or CSV), a run, a checkpoint or an https URL.",
    ),
    boxes: bool = typer.Option(
        _ANNOTATE.boxes, "--boxes", help="Also draw each face's box and score."
    ),
    draw: bool = typer.Option(
        _ANNOTATE.draw,
        "--draw/--no-draw",
        help="Write annotated copies (--no-draw: JSONL and --csv/--pts only).",
    ),
    csv_out: bool = typer.Option(
        _ANNOTATE.csv,
        "--csv",
        help="Also write annotations.csv (dataset format, one row per face); for each video "
        "<video>.csv in OpenFace's layout.",
    ),
    coco: bool = typer.Option(
        _ANNOTATE.coco,
        "--coco",
        help="Also write annotations.coco.json (COCO keypoints: CVAT, Label Studio, FiftyOne); "
        "photos only.",
    ),
    parquet: bool = typer.Option(
        _ANNOTATE.parquet,
        "--parquet",
        help="Also write annotations.parquet (one row per image, faces nested; needs "
        "pip install 'facemark[parquet]'); photos only.",
    ),
    pts: bool = typer.Option(
        _ANNOTATE.pts, "--pts", help="Also write one iBUG .pts file per face (photos only)."
    ),
    skip_existing: bool = typer.Option(
        _ANNOTATE.skip_existing,
        "--skip-existing",
        help="Resume: skip images already in the output's annotations*.jsonl and videos "
        "whose <video>.jsonl is complete.",
    ),
    shard: str | None = typer.Option(
        _ANNOTATE.shard,
        "--shard",
        metavar="I/N",
        help="Process only shard I of N (1-based) of the inputs, e.g. 2/4.",
    ),
    threshold: float = typer.Option(
        _DETECT.threshold,
        "--threshold",
        "-t",
        min=0.0,
        max=1.0,
        help="Detector score threshold (scores are calibrated: 0.5 is the operating point).",
    ),
    min_face: float = typer.Option(
        _DETECT.min_face, "--min-face", min=0, help="Ignore faces narrower than this (pixels)."
    ),
    max_faces: int | None = typer.Option(
        _DETECT.max_faces, "--max-faces", min=1, help="Keep at most N faces per image (best first)."
    ),
    det_size: int | None = typer.Option(
        _DETECT.det_size,
        "--det-size",
        min=32,
        show_default="chosen from the photo",
        help="Longer side (pixels, a multiple of 32) the photo is resized to for detection; "
        "larger finds smaller faces in big photos, slower.",
    ),
    confirm: float = typer.Option(
        _DETECT.confirm,
        "--confirm",
        min=0.0,
        max=1.0,
        help="Keep a detection only when the landmark model's mean confidence on it reaches "
        "this (0: keep all).",
    ),
    faceness: float | None = typer.Option(
        _DETECT.faceness,
        "--faceness",
        min=0.0,
        max=1.0,
        show_default="the landmark model's own",
        help="Keep a detection only when the landmark model's faceness head scores it a human "
        "face with at least this probability (animal faces score low; 0: keep all). Each "
        "face record has its faceness.",
    ),
    min_confidence: float | None = typer.Option(
        _ANNOTATE.min_confidence,
        "--min-confidence",
        min=0.0,
        max=1.0,
        show_default="off",
        help="Drop faces whose mean point confidence is below this (counted in the summary); "
        f"faces below {LOW_CONFIDENCE:g} are flagged low_confidence in any case.",
    ),
    video_stride: int = typer.Option(
        _VIDEO.video_stride, "--video-stride", min=1, help="Videos: annotate every Nth frame."
    ),
    start: float = typer.Option(
        _VIDEO.start, "--start", min=0.0, help="Videos: start of the span to annotate (seconds)."
    ),
    end: float | None = typer.Option(
        _VIDEO.end,
        "--end",
        min=0.0,
        show_default="the end",
        help="Videos: end of the span to annotate (seconds).",
    ),
    detect_every: int = typer.Option(
        _VIDEO.detect_every,
        "--detect-every",
        min=1,
        help="Videos: run the detector every N annotated frames and when a face is lost; "
        "in between faces are tracked by the landmark model (1: detect on every frame).",
    ),
    smooth: bool = typer.Option(
        _VIDEO.smooth,
        "--smooth/--no-smooth",
        help="Videos: smooth the keypoints over time (One-Euro filter per point).",
    ),
    smooth_min_cutoff: float = typer.Option(
        _VIDEO.smooth_min_cutoff,
        "--smooth-min-cutoff",
        help="Videos: One-Euro minimum cutoff in Hz (lower: steadier when still).",
    ),
    smooth_beta: float = typer.Option(
        _VIDEO.smooth_beta,
        "--smooth-beta",
        min=0.0,
        help="Videos: One-Euro speed coefficient (higher: less lag in fast motion).",
    ),
    flip: bool = typer.Option(
        _ANNOTATE.flip,
        "--flip",
        help="Average with the mirrored image's keypoints (slower, a bit more accurate).",
    ),
    batch_size: int = typer.Option(
        _ANNOTATE.batch_size, "--batch-size", "-b", min=1, help="Images per network call."
    ),
    device: str = typer.Option(_ANNOTATE.device, "--device", help="cpu, cuda, cuda:N or auto."),
    gpu: bool = typer.Option(False, "--gpu", help=GPU_HELP),
    threads: int | None = typer.Option(
        _ANNOTATE.threads,
        "--threads",
        min=1,
        show_default="torch's; decoding up to 4",
        help="CPU threads: torch's, and at most this many decoding threads.",
    ),
    json_out: bool = typer.Option(
        False, "--json", help="Print the summary as JSON instead of a table."
    ),
) -> None:
    """Find every face in photos and mark its 68 keypoints: annotated copies + annotations.jsonl.

    Examples:  facemark annotate ./photos
               facemark annotate 'shoot/**/*.jpg' --out marked --boxes --csv --pts
               facemark annotate big-collection -r --shard 1/4 --skip-existing --gpu
               facemark annotate clip.mp4 --csv   (per-frame JSONL + OpenFace CSV)
    """
    import json

    from facemark import annotator
    from facemark.detectors import DetectorConfig

    device = resolve_device(ctx, device, gpu)
    config = annotator.AnnotateConfig(
        model=model,
        detector=detector,
        device=device,
        recursive=recursive,
        batch_size=batch_size,
        flip=flip,
        draw=draw,
        boxes=boxes,
        csv=csv_out,
        coco=coco,
        parquet=parquet,
        pts=pts,
        skip_existing=skip_existing,
        shard=shard,
        min_confidence=min_confidence,
        detection=DetectorConfig(threshold, min_face, max_faces, det_size, confirm, faceness),
        video=VideoConfig(
            video_stride, start, end, detect_every, smooth, smooth_min_cutoff, smooth_beta
        ),
        threads=threads,
    )
    bar = annotator.progress_bar(err_console)  # started by run() once there is work to show
    summary = annotator.run(
        inputs,
        out,
        config,
        progress=bar,
        on_warning=lambda msg: bar.console.print(f"[yellow]warning:[/] {msg}", highlight=False),
    )
    if json_out:
        typer.echo(json.dumps(summary.to_dict()))
    else:
        console.print(annotator.summary_table(summary))
