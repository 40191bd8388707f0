"""What the CLI prints from a result dict: rich tables side by side, and the notes under them.

They read only the plain dicts :func:`evaluate_models` returns (or ``--json`` wrote).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

#: Summary columns: (header, key, format, lower is better).
_COLUMNS = [
    ("NME_io %", "nme_io", lambda v: f"{100 * v:.2f}", True),
    ("FR@0.08 %", "fr_08", lambda v: f"{100 * v:.1f}", True),
    ("FR@0.10 %", "fr_10", lambda v: f"{100 * v:.1f}", True),
    ("AUC@0.08", "auc_08", lambda v: f"{v:.4f}", False),
    ("AUC@0.10", "auc_10", lambda v: f"{v:.4f}", False),
    ("ms/face b1", "ms_per_face", lambda v: f"{v:.2f}", True),
    ("ms/face b32", "ms_per_face_b32", lambda v: f"{v:.2f}", True),
]


def results_table(result: dict[str, Any]):
    """The side-by-side rich table: one row per model; the best value of a column in bold."""
    from rich.table import Table

    rows = result["models"]
    first = rows[0]
    table = Table(
        title=f"evaluation: {first.get('split')} split, {first.get('boxes')} boxes"
        + (", flip" if first.get("flip") else "")
        + f", {first.get('device')}",
        title_justify="left",
    )
    table.add_column("model", overflow="fold")
    table.add_column("images", justify="right")
    show_missed = any(r.get("boxes") == "detect" for r in rows)
    if show_missed:
        table.add_column("missed", justify="right")
    for header, *_ in _COLUMNS:
        table.add_column(header, justify="right")
    for r in rows:
        cells = [str(r["model"]), str(r["images"])]
        if show_missed:
            cells.append(str(r.get("missed", 0)))
        for _, key, fmt, lower in _COLUMNS:
            cells.append(_cell(r.get(key), [x.get(key) for x in rows], fmt, lower))
        table.add_row(*cells)
    return table


def regions_table(result: dict[str, Any]):
    """NME_io (%) per facial region, one row per model."""
    from rich.table import Table

    from facemark.shape import REGIONS

    table = Table(title="NME_io % by region", title_justify="left")
    table.add_column("model", overflow="fold")
    for region in REGIONS:
        table.add_column(region, justify="right")
    rows = result["models"]
    for r in rows:
        cells = [str(r["model"])]
        for region in REGIONS:
            column = [(x.get("regions") or {}).get(region) for x in rows]
            value = (r.get("regions") or {}).get(region)
            cells.append(_cell(value, column, lambda v: f"{100 * v:.2f}", True))
        table.add_row(*cells)
    return table


#: The subset groupings: (key, table title).
SUBSET_GROUPS = [
    ("yaw", "by yaw (nose offset / eye distance)"),
    ("size", "by face size (eye distance, px)"),
    ("confidence", "by the model's mean confidence quartile"),
]


def subsets_tables(result: dict[str, Any]) -> list:
    """One rich table per subset grouping: a row per bin, the models side by side (faces,
    NME_io %, FR@0.10 %, AUC@0.10 each); the best of a bin's row in bold."""
    from rich.table import Table

    rows = result["models"]
    many = len(rows) > 1
    columns = [
        ("NME_io %", "nme_io", lambda v: f"{100 * v:.2f}", True),
        ("FR@0.10 %", "fr_10", lambda v: f"{100 * v:.1f}", True),
        ("AUC@0.10", "auc_10", lambda v: f"{v:.4f}", False),
    ]
    tables = []
    for group, title in SUBSET_GROUPS:
        bins = [(r.get("subsets") or {}).get(group) or [] for r in rows]
        table = Table(title=f"subsets {title}", title_justify="left")
        table.add_column("bin")
        for r in rows:
            prefix = f"{r['model']}\n" if many else ""
            table.add_column(f"{prefix}faces", justify="right")
            for header, *_ in columns:
                table.add_column(f"{prefix}{header}", justify="right")
        for k in range(max(len(b) for b in bins)):
            cells = [next((str(b[k]["bin"]) for b in bins if len(b) > k), "")]
            for b in bins:
                row = b[k] if len(b) > k else {}
                cells.append(str(row.get("faces", "-")))
                for _, key, fmt, lower in columns:
                    column = [x[k].get(key) if len(x) > k else None for x in bins]
                    cells.append(_cell(row.get(key), column, fmt, lower))
            table.add_row(*cells)
        tables.append(table)
    tables.append(confidence_table(result))
    return tables


#: The rows of :func:`confidence_table`: (label, key of the rho, key of its count).
CONFIDENCE_ROWS = [
    ("per point: confidence vs error / eye distance", "points", "n_points"),
    ("per face: mean confidence vs NME_io", "faces", "n_faces"),
]


def confidence_table(result: dict[str, Any]):
    """Spearman rho of the model's confidence with its error (:func:`confidence_vs_error`),
    per point and per face, the models side by side (the most negative in bold)."""
    from rich.table import Table

    rows = result["models"]
    many = len(rows) > 1
    table = Table(
        title="confidence vs error (Spearman rho; more negative: a more telling confidence)",
        title_justify="left",
    )
    table.add_column("pairs")
    for r in rows:
        prefix = f"{r['model']}\n" if many else ""
        table.add_column(f"{prefix}rho", justify="right")
        table.add_column(f"{prefix}n", justify="right")
    stats = [r.get("confidence_vs_error") or {} for r in rows]
    for label, key, count in CONFIDENCE_ROWS:
        cells = [label]
        for st in stats:
            column = [x.get(key) for x in stats]
            cells.append(_cell(st.get(key), column, lambda v: f"{v:+.3f}", True))
            cells.append(str(st.get(count, "-")))
        table.add_row(*cells)
    return table


def result_notes(result: dict[str, Any]) -> list[str]:
    """The lines under the tables: how the val split was made, misses, report files."""
    notes = []
    rows = result["models"]
    shared = len({json.dumps(r.get("val_split"), sort_keys=True) for r in rows}) == 1
    for r in rows[:1] if shared else rows:
        val = r.get("val_split")
        if val:
            notes.append(
                ("" if shared else f"{r['model']}: ")
                + f"val split: {100 * val['val_fraction']:g}% of the training "
                + ("frames" if val["val_by"] == "frame" else "persons")
                + f", seed {val['seed']} ({r['images']} frames)"
            )
    for r in rows:
        if r.get("missed"):
            notes.append(
                f"{r['model']}: no matching detection on {r['missed']} of {r['images']} frames "
                "(counted as failures; NME_io is over the found faces)"
            )
    if result.get("warning"):
        notes.append(f"[yellow]warning:[/] {result['warning']}")
    for path in (result.get("report") or {}).values():
        notes.append(f"wrote {path}")
    return notes


def _cell(value: Any, column: list[Any], fmt: Callable[[float], str], lower: bool) -> str:
    if value is None:
        return "-"
    text = fmt(value)
    known = [v for v in column if v is not None]
    best = min(known) if lower else max(known)
    return f"[bold]{text}[/]" if len(known) > 1 and fmt(best) == text else text
