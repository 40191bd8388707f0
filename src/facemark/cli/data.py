"""``info``, ``fetch-data`` and ``preview``: the dataset and the installation."""

from __future__ import annotations

import typer

from facemark import about
from facemark.cli.app import app, cli_errors, console, err_console
from facemark.config import SPLIT


@app.command("info")
@cli_errors
def info(
    as_json: bool = typer.Option(False, "--json", help="Print the same facts as JSON."),
) -> None:
    """Show where facemark keeps its files, the dataset, bundled models and compute devices.

    Example:  facemark info
    """
    import json

    report = about.report()
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


@app.command("fetch-data")
@cli_errors
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
@cli_errors
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
        SPLIT.val_fraction, "--val-fraction", help="Share of the training set held out as val."
    ),
    val_by: str = typer.Option(
        SPLIT.val_by, "--val-by", help="Hold out whole persons (identity) or single frames."
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
