"""The report folder (``--report``): CED plot, per-image and subset CSVs, and a gallery of
the worst faces with every model's points."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facemark import metrics
from facemark.errors import UsageError
from facemark.evaluate.evaluation import _finite

if TYPE_CHECKING:
    from facemark.evaluate.evaluation import Evaluation

#: Gallery colours: the true points, then each model's points (bright, to show on any face).
TRUE_COLOR = (0, 255, 0)
MODEL_COLORS = [(255, 50, 50), (0, 200, 255), (255, 0, 255), (255, 210, 0), (255, 130, 0)]


def write_report(
    evaluations: Sequence[Evaluation], out_dir: str | Path, worst: int = 16
) -> dict[str, Path]:
    """ced.png, per_image.csv, subsets.csv and worst.png in ``out_dir``; returns their paths."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--report must be a folder, but {out} is a file")
    out.mkdir(parents=True, exist_ok=True)
    return {
        "ced": write_ced_plot(evaluations, out / "ced.png"),
        "per_image": write_per_image_csv(evaluations, out / "per_image.csv"),
        "subsets": write_subsets_csv(evaluations, out / "subsets.csv"),
        "worst": write_worst_gallery(evaluations, out / "worst.png", worst),
    }


def write_ced_plot(evaluations: Sequence[Evaluation], path: Path, threshold: float = 0.10) -> Path:
    """The cumulative error distribution of every model on one chart (NME in %)."""
    from facemark import plot

    series = {}
    for ev in evaluations:
        xs, ys = metrics.ced(ev.nme, threshold, steps=200)
        series[_unique(ev.summary["model"], series)] = (xs * 100.0, ys * 100.0)
    first = evaluations[0].summary
    title = f"Cumulative error distribution ({first.get('split')}, {first.get('boxes')} boxes)"
    plot.line_chart(series, path, title=title, xlabel="NME_io (%)", ylabel="images (%)")
    return path


def write_per_image_csv(evaluations: Sequence[Evaluation], path: Path) -> Path:
    """``model,image,nme_io,missed,confidence``: one row per model and image (empty NME and
    confidence for a miss)."""
    from facemark.files import atomic_write

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["model", "image", "nme_io", "missed", "confidence"])
    for ev in evaluations:
        for row in ev.per_image():
            nme, conf = (
                "" if row[k] is None else f"{row[k]:.6f}" for k in ("nme_io", "confidence")
            )
            writer.writerow([ev.summary["model"], row["image"], nme, int(row["missed"]), conf])
    with atomic_write(path, "w") as fh:
        fh.write(buf.getvalue())
    return path


def write_subsets_csv(evaluations: Sequence[Evaluation], path: Path) -> Path:
    """``model,grouping,bin,faces,nme_io,fr_10,auc_10``: one row per model and subset bin."""
    from facemark.files import atomic_write

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    keys = ("nme_io", "fr_10", "auc_10")
    writer.writerow(["model", "grouping", "bin", "faces", *keys])
    for ev in evaluations:
        for grouping, rows in (ev.summary.get("subsets") or {}).items():
            for row in rows:
                values = [_finite(row[k]) if row[k] is not None else None for k in keys]
                cells = ["" if v is None else f"{v:.6f}" for v in values]
                writer.writerow([ev.summary["model"], grouping, row["bin"], row["faces"], *cells])
    with atomic_write(path, "w") as fh:
        fh.write(buf.getvalue())
    return path


def worst_indices(evaluations: Sequence[Evaluation], n: int) -> list[int]:
    """The ``n`` frames with the largest error of any model (misses first)."""
    errors = np.stack([ev.nme for ev in evaluations]).max(axis=0)
    order = np.argsort(-errors, kind="stable")
    return [int(i) for i in order[: max(0, n)]]


def write_worst_gallery(evaluations: Sequence[Evaluation], path: Path, n: int = 16) -> Path:
    """The worst frames with the true points (green) and each model's points (see the legend).

    Each tile is the face's neighbourhood enlarged, captioned with the frame's name and each
    model's NME; a miss has no predicted points and says so.  Only the models scored on the
    first model's frames take part (val splits of different runs may differ).
    """
    from facemark import draw, transforms
    from facemark.files import atomic_write

    first = evaluations[0]
    shown = [(k, ev) for k, ev in enumerate(evaluations) if ev.names == first.names]
    tiles, captions = [], []
    for i in worst_indices([ev for _, ev in shown], n):
        gt = first.gt[i]
        # A square view of the face, enlarged so the dots of several models stay apart.
        crop, M = transforms.crop_face(first.images[i], transforms.face_box_from_keypoints(gt), 192)
        true_pts = transforms.apply_affine(gt, M)
        tile = draw.draw_keypoints(crop, true_pts, color=TRUE_COLOR, radius=2.0)
        parts = []
        for k, ev in shown:
            if np.isfinite(ev.pred[i]).all():
                pts = transforms.apply_affine(ev.pred[i], M)
                tile = draw.draw_keypoints(tile, pts, color=_model_color(k), radius=1.6)
                parts.append(f"{100 * ev.nme[i]:.1f}%")
            else:
                parts.append("missed")
        tiles.append(tile)
        captions.append(f"{first.names[i]} {'/'.join(parts)}")
    grid = draw.make_grid(tiles, captions=captions)
    legend = [("truth", TRUE_COLOR)] + [(ev.summary["model"], _model_color(k)) for k, ev in shown]
    with atomic_write(path, "wb") as fh:
        _with_legend(grid, legend).save(fh, format="PNG")
    return path


def _model_color(k: int) -> tuple[int, int, int]:
    return MODEL_COLORS[k % len(MODEL_COLORS)]


def _with_legend(grid, items: Sequence[tuple[str, tuple[int, int, int]]]):
    """``grid`` under a strip that names the colour of each set of points."""
    from PIL import Image, ImageDraw

    from facemark import draw

    fnt = draw.font(14)
    strip = Image.new("RGB", (grid.width, 24), (24, 24, 24))
    pen = ImageDraw.Draw(strip)
    x = 8
    for label, colour in items:
        pen.ellipse([x, 7, x + 10, 17], fill=colour)
        pen.text((x + 15, 4), label, fill=(230, 230, 230), font=fnt)
        x += 15 + int(pen.textlength(label, font=fnt)) + 18
    out = Image.new("RGB", (grid.width, grid.height + strip.height))
    out.paste(strip, (0, 0))
    out.paste(grid, (0, strip.height))
    return out


def _unique(name: str, taken: dict[str, Any]) -> str:
    """A legend label not used yet (the same model may be listed twice)."""
    label, k = name, 2
    while label in taken:
        label, k = f"{name} ({k})", k + 1
    return label
