"""The ``facemark`` command line.

This layer only parses options, calls library functions and prints their results; all real
work lives in the library modules so it can be used from Python without the CLI.  Every
command is wrapped by :func:`_cli_errors`, which turns a :class:`FacemarkError` (and the few
OS errors a user can cause) into one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
import typer.core
from rich.console import Console
from rich.markup import escape

from facemark import __version__
from facemark.annotator import AnnotateConfig
from facemark.confidence import LOW_CONFIDENCE
from facemark.detectors.base import DetectorConfig
from facemark.errors import FacemarkError
from facemark.evaluate import BATCH_SIZE as EVAL_BATCH_SIZE
from facemark.export import DEFAULT_OPSET as EXPORT_OPSET
from facemark.export import FORMATS as EXPORT_FORMATS
from facemark.export import INT8 as EXPORT_INT8
from facemark.quantize import CALIB_CROPS, CALIB_SEED
from facemark.tasks.defaults import TASKS, default_text
from facemark.video import VideoConfig

F = TypeVar("F", bound=Callable[..., Any])

# The click that typer actually raises from: recent typer vendors it as typer._click, older
# releases use the click package.
_click_exceptions = (getattr(typer.core, "_click", None) or typer.core.click).exceptions

app = typer.Typer(
    name="facemark",
    help="Find faces in photos and place the 68 standard facial keypoints on each.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()
err_console = Console(stderr=True)


def _display_type(self: Any, ctx: Any) -> str | None:
    """No ``<bool>`` placeholder after a yes/no switch in the help: the switch says it all."""
    return "" if getattr(self, "is_flag", False) else _typer_display_type(self, ctx)


_typer_display_type = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = _display_type  # type: ignore[method-assign]

#: The defaults every option below shows and uses, declared in the library's config classes.
_ANNOTATE = AnnotateConfig()
_DETECT = DetectorConfig()
_VIDEO = VideoConfig()


def _fail(message: str, code: int) -> None:
    # escaped: a message may hold brackets ("pip install 'facemark[export]'", a path)
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _cli_errors(fn: F) -> F:
    """One clear line on stderr and an exit code instead of a traceback.

    FACEMARK_DEBUG=1 re-raises, for developers who want the traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except FacemarkError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except OSError as exc:
            if os.environ.get("FACEMARK_DEBUG"):
                raise
            where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
            _fail(f"{exc.strerror or exc}{where}", 1)
        except Exception as exc:  # a bug: still one line, with a way to get the traceback
            if os.environ.get("FACEMARK_DEBUG"):
                raise
            hint = "(set FACEMARK_DEBUG=1 for a traceback)"
            _fail(f"internal error: {type(exc).__name__}: {exc} {hint}", 70)

    return wrapper  # type: ignore[return-value]


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"facemark {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=_version_callback,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Find faces in photos and place the 68 standard facial keypoints on each.

    Quick start:  facemark annotate ./photos   (writes ./facemark-out)
    """


# --- info (issue 2) ---


@app.command("info")
@_cli_errors
def info(
    as_json: bool = typer.Option(False, "--json", help="Print the same facts as JSON."),
) -> None:
    """Show where facemark keeps its files, the dataset, bundled models and compute devices.

    Example:  facemark info
    """
    import json

    report = _info_report()
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"facemark {report['facemark_version']}", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key in ("data_dir", "cache_dir", "runs_dir"):
        table.add_row(key.replace("_", " "), report[key])
    ds = report["dataset"]
    if ds is None:
        table.add_row("dataset", "not installed (run: facemark fetch-data)")
    elif not ds["intact"]:
        table.add_row("dataset", f"damaged: {ds['problem']} (run: facemark fetch-data --force)")
    else:
        c = ds["counts"]
        table.add_row(
            "dataset",
            f"{ds['path']}\n{c['train']:,} training frames, {c['test_labeled']:,} labeled test "
            f"frames, {c['test_unlabeled']:,} unlabeled; installed {ds.get('installed_at', '?')}",
        )
    models = report["bundled_models"]
    table.add_row("bundled models", "\n".join(models) if models else "none")
    table.add_row("python", report["python"])
    table.add_row("torch", report["torch"])
    table.add_row("CUDA", report["cuda"])
    threads = f"{report['cpu_threads']} used by torch, {report['cpu_count']} cores"
    table.add_row("CPU threads", threads)
    console.print(table)


def _info_report() -> dict[str, Any]:
    """The facts ``info`` shows; torch is imported here only, to keep other commands quick."""
    import platform

    import torch

    from facemark import download, paths
    from facemark.hub import BUNDLED

    weights = paths.bundled_weights_dir()
    # the names --model and --detector take, by task (aliases of one file together)
    models = []
    for task, names in BUNDLED.items():
        option = "--model" if task == "landmarks" else "--detector"
        by_file: dict[str, list[str]] = {}
        for name, file in names.items():
            if (weights / file).is_file():
                by_file.setdefault(file, []).append(name)
        models += [f"{option} {' / '.join(aliases)}" for aliases in by_file.values()]
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        cuda = f"available: {', '.join(names)} (CUDA {torch.version.cuda})"
    elif torch.version.cuda is None:
        cuda = "not available (this torch build is CPU-only)"
    else:
        cuda = f"not available (torch built for CUDA {torch.version.cuda}, no usable GPU found)"
    return {
        "facemark_version": __version__,
        "data_dir": str(paths.data_dir()),
        "cache_dir": str(paths.cache_dir()),
        "runs_dir": str(paths.runs_dir()),
        "dataset": download.dataset_status(),
        "bundled_models": models,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": cuda,
        "cuda_available": torch.cuda.is_available(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }


# --- fetch-data (issue 2) ---


@app.command("fetch-data")
@_cli_errors
def fetch_data(
    url: str | None = typer.Option(
        None,
        "--url",
        metavar="URL",
        help="Archive to download: http(s):// or file://. Default: the GitHub archive of "
        "udacity/P1_Facial_Keypoints (master).",
    ),
    zip_path: str | None = typer.Option(
        None, "--zip", metavar="PATH", help="Install from a local copy of the archive instead."
    ),
    force: bool = typer.Option(
        False, "--force", help="Reinstall even if a verified copy is installed."
    ),
    keep_zip: bool = typer.Option(
        False, "--keep-zip", help="Keep the downloaded archive in the cache (reused next time)."
    ),
) -> None:
    """Download, verify and install the Udacity P1 facial keypoints dataset (MIT licence).

    Every image is decoded and both CSVs are checked before anything is installed; a second
    run finds the verified install and returns at once.

    Examples:  facemark fetch-data   |   facemark fetch-data --zip P1_Facial_Keypoints-master.zip
    """
    from rich.table import Table

    from facemark import download

    # Progress bars and notices on stderr, the result on stdout (so `> file` keeps the table
    # and `2>/dev/null` still shows it).
    result = download.fetch_dataset(
        url=url, zip_path=zip_path, force=force, keep_zip=keep_zip, console=err_console
    )
    counts = result.manifest.get("counts", {})
    if result.already_installed:
        console.print(
            f"Dataset already installed at {result.path} ({counts.get('train', '?'):,} training, "
            f"{counts.get('test_labeled', '?'):,} test frames); use --force to reinstall.",
            highlight=False,
        )
        return
    table = Table(title="Dataset installed", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("location", str(result.path))
    table.add_row("source", result.manifest["source"])
    table.add_row("training frames", f"{counts['train']:,}")
    table.add_row("test frames, labeled", f"{counts['test_labeled']:,}")
    table.add_row("test frames, unlabeled", f"{counts['test_unlabeled']:,}")
    table.add_row("archive sha256", result.manifest["sha256"])
    if result.kept_archive:
        table.add_row("archive kept at", str(result.kept_archive))
    table.add_row("time", f"{result.seconds:.1f} s")
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)


# --- preview (issue 3) ---


def print_split_sizes(sizes: dict[str, dict[str, int]], title: str = "dataset splits") -> None:
    """A small table of frames / identities per split (shared by preview and train)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("split")
    table.add_column("frames", justify="right")
    table.add_column("identities", justify="right")
    for split, s in sizes.items():
        table.add_row(split, str(s["frames"]), str(s["identities"]))
    console.print(table)


@app.command("preview")
@_cli_errors
def preview_cmd(
    out: str = typer.Option(..., "--out", "-o", help="PNG file to write the grid to."),
    split: str = typer.Option("train", "--split", help="train, val, trainval or test."),
    n: int = typer.Option(16, "--n", "-n", min=1, max=256, help="How many samples."),
    seed: int = typer.Option(0, "--seed", help="Picks the frames and drives the augmentation."),
    augment: bool = typer.Option(
        True, "--augment/--no-augment", help="Apply training augmentation."
    ),
    numbers: bool = typer.Option(False, "--numbers", help="Write each keypoint's index."),
    img_size: int = typer.Option(128, "--img-size", min=8, help="Crop size the network gets."),
    val_fraction: float = typer.Option(
        0.1, "--val-fraction", help="Share of the training set held out as val."
    ),
    val_by: str = typer.Option(
        "identity", "--val-by", help="Hold out whole persons (identity) or single frames."
    ),
    data: str | None = typer.Option(
        None,
        "--data",
        metavar="PATH",
        help="Dataset folder (default: the installed one), or your labelled faces: a folder of "
        "images with .pts files, annotations.jsonl, a COCO keypoints JSON or a CSV.",
    ),
) -> None:
    """Draw samples exactly as the network receives them, keypoints on top, into a PNG grid."""
    from facemark.preview import preview

    result = preview(
        out,
        split=split,
        n=n,
        seed=seed,
        augment=augment,
        numbers=numbers,
        img_size=img_size,
        root=data,
        val_fraction=val_fraction,
        val_by=val_by,
    )
    if result.sizes:
        print_split_sizes(result.sizes)
    mode = "augmented" if augment else "not augmented"
    console.print(
        f"wrote {result.out} ({result.count} {result.split} samples, {img_size} px, {mode})"
    )


# --- train (issue 4) ---


@app.command("train")
@_cli_errors
def train_cmd(
    epochs: int | None = typer.Option(
        None, "--epochs", show_default=default_text("epochs"), help="Passes over the training set."
    ),
    batch_size: int | None = typer.Option(
        None,
        "--batch-size",
        show_default=default_text("batch_size"),
        help="Samples per step, over all GPUs together.",
    ),
    lr: float | None = typer.Option(
        None, "--lr", show_default=default_text("lr"), help="Peak learning rate of AdamW."
    ),
    weight_decay: float | None = typer.Option(
        None,
        "--weight-decay",
        show_default=default_text("weight_decay"),
        help="AdamW weight decay.",
    ),
    img_size: int | None = typer.Option(
        None,
        "--img-size",
        show_default=default_text("img_size"),
        help="Face crop size in pixels.",
    ),
    arch: str | None = typer.Option(
        None,
        "--arch",
        show_default=default_text("arch"),
        help="Network: heatmap, integral, regression or udacity; "
        "variants as name:key=value,... (see docs/model.md).",
    ),
    seed: int = typer.Option(
        0, "--seed", help="Seeds the weights, sample order, augmentation and val split."
    ),
    val_fraction: float = typer.Option(
        0.1, "--val-fraction", help="Share of persons held out for validation."
    ),
    val_by: str = typer.Option(
        "identity",
        "--val-by",
        help="Hold out whole persons (identity), whole photos (photo: the name before a "
        "trailing _N, as 300-W numbers the faces of one photo) or single frames.",
    ),
    gpu: bool = typer.Option(False, "--gpu", help="Train on CUDA (an error if no GPU is usable)."),
    device: str = typer.Option(
        "auto", "--device", help="cpu, cuda, cuda:N, or auto (CUDA when available)."
    ),
    workers: int | None = typer.Option(
        None, "--workers", show_default="spare CPU cores, at most 8", help="Data loading processes."
    ),
    amp: bool = typer.Option(
        True, "--amp/--no-amp", help="Mixed precision on CUDA (bf16 where supported)."
    ),
    resume: str | None = typer.Option(
        None, "--resume", metavar="PATH", help="Continue a run: its last.pt, folder or name."
    ),
    name: str | None = typer.Option(
        None, "--name", show_default="date-time-task", help="Run folder name under the runs dir."
    ),
    max_minutes: float | None = typer.Option(
        None, "--max-minutes", help="Stop after the epoch that passes this wall time (resumable)."
    ),
    task: str = typer.Option(
        TASKS[0], "--task", help="landmarks, or detector (the face detector)."
    ),
    data: list[str] | None = typer.Option(
        None,
        "--data",
        metavar="PATH",
        help="Training data (default: the installed dataset): a dataset root, a folder of "
        "images with .pts files, annotations.jsonl, a COCO keypoints JSON or a CSV. "
        "Repeat to train on several sources at once, each split for validation on its own.",
    ),
    data_weight: list[float] | None = typer.Option(
        None,
        "--data-weight",
        metavar="W",
        show_default="in proportion to their sizes",
        help="Each --data source's share of a training epoch, one per --data, relative "
        "(e.g. --data-weight 1 --data-weight 1 for half and half).",
    ),
    val_data: str | None = typer.Option(
        None,
        "--val-data",
        metavar="PATH",
        help="Validation data in any --data format (default: hold out --val-fraction of --data).",
    ),
    init: str | None = typer.Option(
        None,
        "--init",
        metavar="MODEL",
        help="Fine-tune: start from this model's weights (run, checkpoint, default or URL; "
        "fresh optimizer).",
    ),
    balance: float | None = typer.Option(
        None,
        "--balance",
        min=0.0,
        show_default=default_text("balance"),
        help="Pose-balanced sampling: draw each face with weight (share of its yaw bin)^-balance; "
        "0 = plain shuffling.",
    ),
    augment: str | None = typer.Option(
        None,
        "--augment",
        metavar="KEY=VALUE,...",
        help="Change landmark augmentation (transforms.AugmentConfig fields, ranges as lo:hi), "
        "e.g. p_flip=0 (no mirroring) or p_squeeze=0.5,squeeze=0.7:1.",
    ),
) -> None:
    """Train a landmark model (or the face detector) on the installed dataset or your own.

    --data takes any 68-point labels (see docs/training.md); fine-tune the bundled model on
    your faces with  facemark train --data my-faces/ --init default
    Writes best.pt, last.pt, config.json, metrics.jsonl, curves.png and env.json to
    <runs dir>/<name>/.  Ctrl-C saves last.pt; --resume continues exactly where it stopped.
    Several GPUs:  torchrun --nproc-per-node N -m facemark train --gpu

    Examples:  facemark train   |   facemark train --gpu --arch integral --name int1
    """
    from facemark.errors import UsageError
    from facemark.labelsets import is_udacity
    from facemark.train import TrainConfig, train

    if gpu:
        if device not in ("auto", "cuda") and not device.startswith("cuda:"):
            raise UsageError(f"--gpu contradicts --device {device}")
        device = "cuda" if device == "auto" else device
    sources = list(data or [])
    if task != TASKS[0] and (
        val_data is not None or len(sources) > 1 or not is_udacity(sources[0] if sources else None)
    ):
        raise UsageError(
            f"--task {task} trains on a dataset root only (the installed one or --data ROOT); "
            "--data in other formats, several --data and --val-data are for landmarks"
        )
    cfg = TrainConfig(
        task=task,
        arch=arch,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        img_size=img_size,
        seed=seed,
        val_fraction=val_fraction,
        val_by=val_by,
        device=device,
        workers=workers,
        amp=amp,
        resume=resume,
        name=name,
        max_minutes=max_minutes,
        data_root=(sources[0] if len(sources) == 1 else sources) or None,
        data_weights=list(data_weight) if data_weight else None,
        val_data=val_data,
        init=init,
        balance=balance,
        augment=augment,
    )
    result = train(cfg, console=console)
    if result.interrupted:
        raise typer.Exit(130)


# --- evaluate (issue 5) ---


@app.command("evaluate")
@_cli_errors
def evaluate_cmd(
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
        "gt", "--boxes", help="gt: crop from the true points; detect: use the face detector."
    ),
    detector: str = typer.Option(
        "default", "--detector", help="Detector for --boxes detect (name, run, path or URL)."
    ),
    threshold: float = typer.Option(
        _DETECT.threshold, "--det-threshold", min=0.0, max=1.0, help="Detector score threshold."
    ),
    flip: bool = typer.Option(False, "--flip", help="Average with the mirrored face's prediction."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    gpu: bool = typer.Option(False, "--gpu", help="Shortcut for --device cuda."),
    batch_size: int = typer.Option(
        EVAL_BATCH_SIZE, "--batch-size", min=1, help="Frames (faces) per network call."
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="Torch CPU threads (default: torch's choice)."
    ),
    timing: bool = typer.Option(
        True, "--timing/--no-timing", help="Measure ms/face at batch 1 and 32."
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
        16, "--worst", min=1, help="How many of the worst frames the gallery shows."
    ),
) -> None:
    """Score landmark models: NME_io, failure rate, AUC, NME by region and ms/face.

    Compare models side by side on the test frames, the validation persons of a run, or
    your own labelled folder; --json for scripts, --report for plots and the worst faces.

    Example: facemark evaluate my-run default --split val --regions --report eval-out
    """
    import json

    from facemark import evaluate as ev
    from facemark.errors import UsageError

    if images is not None or labels is not None:
        if split is not None:
            raise UsageError("use either --split or --images/--labels, not both")
        if images is None or labels is None:
            raise UsageError("--images and --labels go together: a folder of images and its CSV")
    sources = list(data or [])
    if sources and images is not None:
        raise UsageError("use either --data or --images/--labels, not both")
    from facemark.labelsets import is_udacity

    # a label set (not a dataset root) with --split, or several sources: scored per source
    per_source = len(sources) > 1 or bool(sources and split and not is_udacity(sources[0]))
    if gpu and not device.startswith("cuda"):
        device = "cuda"
    common = dict(
        limit=limit,
        boxes=boxes,
        detector=detector,
        threshold=threshold,
        flip=flip,
        device=device,
        batch_size=batch_size,
        timing=timing,
        threads=threads,
        report=report,
        worst=worst,
        progress=True,
    )
    split_options = dict(val_fraction=val_fraction, seed=seed, val_by=val_by)
    if per_source:
        results = ev.evaluate_sources(
            models or ["default"], sources, split=split, **split_options, **common
        )
        if json_out:
            typer.echo(json.dumps(results))
            return
        for name, result in results["sources"].items():
            console.print(f"[bold]{name}[/]", highlight=False)
            _print_evaluation(ev, result, regions, subsets)
        return
    result = ev.evaluate_models(
        models or ["default"],
        split=split or "test",
        images=images,
        labels=labels,
        root=sources[0] if sources else None,
        **split_options,
        **common,
    )
    if json_out:
        typer.echo(json.dumps(result))
        return
    _print_evaluation(ev, result, regions, subsets)


def _print_evaluation(ev: Any, result: dict[str, Any], regions: bool, subsets: bool) -> None:
    console.print(ev.results_table(result))
    if regions:
        console.print(ev.regions_table(result))
    if subsets:
        for table in ev.subsets_tables(result):
            console.print(table)
    for line in ev.result_notes(result):
        console.print(line, highlight=False)


# --- annotate (issue 6) ---


@app.command("annotate")
@_cli_errors
def annotate_cmd(
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
    gpu: bool = typer.Option(False, "--gpu", help="Shortcut for --device cuda."),
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

    if gpu and not device.startswith("cuda"):
        device = "cuda"
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
        typer.echo(json.dumps(summary.as_dict()))
    else:
        console.print(annotator.summary_table(summary))


# --- models (issue 7) ---


@app.command("models")
@_cli_errors
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


# --- export (issue 14) ---


@app.command("export")
@_cli_errors
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
        EXPORT_OPSET, "--opset", min=EXPORT_OPSET, help="ONNX opset version."
    ),
    dynamo: bool = typer.Option(
        False,
        "--dynamo",
        help="ONNX: use torch's torch.export-based exporter (needs onnxscript; slower).",
    ),
    check: bool = typer.Option(
        True, "--check/--no-check", help="Compare the file with torch on random inputs, time both."
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, show_default="torch's", help="CPU threads for the check."
    ),
    calib: int | None = typer.Option(
        None,
        "--calib",
        min=1,
        show_default=str(CALIB_CROPS),
        help="int8: training-split crops that calibrate the quantisation.",
    ),
    seed: int | None = typer.Option(
        None, "--seed", show_default=str(CALIB_SEED), help="int8: picks the calibration crops."
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
    from facemark.errors import UsageError

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    if fmt.lower() == EXPORT_INT8:
        if raw or dynamo or task not in (None, "landmarks"):
            raise UsageError("--raw, --dynamo and --task detector are not for --format int8")
        made = export.export_int8(
            model,
            out,
            calib=CALIB_CROPS if calib is None else calib,
            seed=CALIB_SEED if seed is None else seed,
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


def main() -> None:
    """Console-script entry point.

    Runs the app outside click's standalone mode so that usage errors (an unknown option, a
    missing argument) also come out as one line rather than a boxed panel.
    """
    # Bare `facemark` raises this in recent click/typer (older ones print the help and exit 0);
    # an empty tuple catches nothing where the class does not exist.
    no_args_is_help = getattr(_click_exceptions, "NoArgsIsHelpError", ())
    try:
        code = app(prog_name="facemark", standalone_mode=False)
    except no_args_is_help as exc:
        # The help is the answer, not an error.  With rich it is already printed and the
        # message is empty; without rich the message is the help.
        if exc.format_message().strip():
            typer.echo(exc.format_message())
        code = 0
    except _click_exceptions.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "facemark"
        err_console.print(
            f"[bold red]error:[/] {exc.format_message()} (see '{command} --help')",
            highlight=False,
            soft_wrap=True,
        )
        code = exc.exit_code
    except _click_exceptions.ClickException as exc:
        err_console.print(
            f"[bold red]error:[/] {exc.format_message()}", highlight=False, soft_wrap=True
        )
        code = exc.exit_code
    except typer.Abort:  # typer's own class (click's Abort in older typer releases)
        err_console.print("[bold red]error:[/] aborted", highlight=False)
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    sys.exit(main())
