"""docs/benchmarks.md and the terminal summary, rendered from the raw results dict.

Kept apart from the measuring so the page can be re-rendered, or its layout changed, from a
saved ``benchmarks/results/*.json`` without measuring again::

    python -m benchmarks.report benchmarks/results/benchmarks.json docs/benchmarks.md

Also the small pieces the other benchmarks (bench_detector, bench_landmarks) share: writing
their record and page, markdown tables, and the machine's description (CPU, cores, load).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from facemark.files import atomic_write

NME_TARGET = 0.25  # the default model must beat dlib's test NME_io by at least this fraction
LABELS = {"facemark": "facemark (default)", "udacity": "Udacity baseline", "dlib": "dlib 68 + HOG"}
BOX_LABELS = {"gt": "ground-truth boxes", "detect": "detector boxes (end to end)"}


# --------------------------------------------------------------------------- figures


def find(results: dict, model: str, split: str, boxes: str) -> dict | None:
    return next(
        (
            r
            for r in results.get("accuracy", [])
            if (r["model"], r["split"], r["boxes"]) == (model, split, boxes)
        ),
        None,
    )


def best_speed(results: dict, model: str, image_set: str = "test") -> dict | None:
    """The model's fastest end-to-end timing on one image set, over the thread counts tried
    (a user can pick the thread count; dlib has one)."""
    timed = results.get("speed", {}).get(image_set, {})
    runs = [v for k, v in timed.items() if k.split("@")[0] == model]
    with_e2e = [v for v in runs if _finite(v.get("pipeline_images_per_s"))]
    if with_e2e:
        return max(with_e2e, key=lambda v: v["pipeline_images_per_s"])
    return runs[0] if runs else None


def contention(results: dict) -> str | None:
    """A warning when more threads ran slower: the sign of a busy machine, where OpenMP threads
    wait on each other, which makes the multi-thread figures meaningless."""
    for image_set, timed in results.get("speed", {}).items():
        for key, s in timed.items():
            model, _, threads = key.partition("@")
            one = timed.get(f"{model}@1")
            if threads == "1" or not one:
                continue
            for field in ("landmarks_ms_per_face", "detect_ms_per_image"):
                if (
                    _finite(s.get(field))
                    and _finite(one.get(field))
                    and s[field] > 1.3 * one[field]
                ):
                    return (
                        f"**Warning:** {LABELS.get(model, model)} ran slower with {threads} "
                        f"threads than with 1 ({field} {s[field]:.2f} vs {one[field]:.2f} on the "
                        f"{image_set} set): other processes were using the cores, so the "
                        "multi-thread figures are not meaningful. Re-run on an idle machine."
                    )
    return None


def targets(results: dict) -> dict[str, Any]:
    """The issue's two targets, each with its margin (positive = met by, negative = missed by)."""
    out: dict[str, Any] = {}
    for boxes in ("gt", "detect"):
        ours, dlib = find(results, "facemark", "test", boxes), find(results, "dlib", "test", boxes)
        if ours and dlib and _finite(ours["nme_io"]) and _finite(dlib["nme_io"]):
            gain = 1.0 - ours["nme_io"] / dlib["nme_io"]
            out[f"nme_gain_{boxes}"] = {
                "facemark": ours["nme_io"],
                "dlib": dlib["nme_io"],
                "gain": gain,
                "target": NME_TARGET,
                "met": gain >= NME_TARGET,
            }
    ours, dlib = best_speed(results, "facemark"), best_speed(results, "dlib")
    if ours and dlib and "pipeline_images_per_s" in ours and "pipeline_images_per_s" in dlib:
        ratio = ours["pipeline_images_per_s"] / dlib["pipeline_images_per_s"]
        out["speed_ratio"] = {
            "facemark": ours["pipeline_images_per_s"],
            "dlib": dlib["pipeline_images_per_s"],
            "threads": ours["threads"],
            "ratio": ratio,
            "target": 1.0,
            "met": ratio >= 1.0,
        }
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def pct(v: Any, digits: int = 2) -> str:
    return f"{100 * v:.{digits}f}%" if _finite(v) else "–"


def num(v: Any, digits: int = 2) -> str:
    return f"{v:.{digits}f}" if _finite(v) else "–"


def duration(seconds: Any) -> str:
    if not _finite(seconds):
        return "–"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s"


# --------------------------------------------------------------------------- markdown


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table: the header row, its ``| --- |`` row, then one line per row."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def accuracy_section(results: dict) -> list[str]:
    lines = ["## Accuracy", ""]
    models = [m for m in LABELS if any(r["model"] == m for r in results.get("accuracy", []))]
    for split, title in (("test", "Labelled test frames"), ("val", "Validation split")):
        rows = []
        for boxes in ("gt", "detect"):
            for m in models:
                r = find(results, m, split, boxes)
                if r:
                    rows.append(
                        [
                            LABELS[m],
                            BOX_LABELS[boxes],
                            str(r["images"]),
                            pct(r["nme_io"]),
                            pct(r["fr_10"], 1),
                            num(r["auc_10"], 3),
                            str(r["missed"]),
                        ]
                    )
        if rows:
            n = results.get("data", {}).get(split, "?")
            lines += [f"### {title} ({n} frames)", ""]
            lines += table(
                ["model", "boxes", "frames", "NME_io", "FR@0.10", "AUC@0.10", "missed faces"], rows
            )
            lines.append("")
    regions = [(m, find(results, m, "test", "gt")) for m in models]
    regions = [(m, r) for m, r in regions if r and r.get("regions")]
    if regions:
        names = list(regions[0][1]["regions"])
        lines += ["NME_io by facial region (test frames, ground-truth boxes):", ""]
        lines += table(
            ["model"] + names,
            [[LABELS[m]] + [pct(r["regions"][k]) for k in names] for m, r in regions],
        )
        lines.append("")
    return lines


SPEED_COLUMNS = (
    ("landmarks ms/face", "landmarks_ms_per_face", 2, True),
    ("detection ms/image", "detect_ms_per_image", 2, True),
    ("end-to-end images/s", "pipeline_images_per_s", 1, False),
)


def speed_table(timed: dict[str, dict]) -> list[str]:
    """One image set's timings; in brackets, how many times faster than dlib."""
    dlib = timed.get("dlib@1")
    rows = []
    for key in sorted(timed, key=lambda k: (list(LABELS).index(k.split("@")[0]), k)):
        s = timed[key]
        row = [LABELS[key.split("@")[0]], str(s.get("threads", 1))]
        for _, field, digits, smaller_is_faster in SPEED_COLUMNS:
            cell = num(s.get(field), digits)
            if dlib and s is not dlib and _finite(s.get(field)) and _finite(dlib.get(field)):
                r = dlib[field] / s[field] if smaller_is_faster else s[field] / dlib[field]
                cell += f" ({r:.2f}×)"
            row.append(cell)
        rows.append(row)
    return table(["model", "threads"] + [c[0] for c in SPEED_COLUMNS], rows)


def speed_section(results: dict) -> list[str]:
    speed = results.get("speed", {})
    if not speed:
        return []
    m = results.get("machine", {})
    lines = [
        "## Speed (CPU)",
        "",
        "Each figure is the median of full passes over the images, taken in rounds that "
        "alternate between the contenders. In brackets: how many times faster than dlib "
        "(above 1 = faster). End to end = read the file, detect, place the keypoints of every "
        "face: `facemark.annotate` with facemark's detector (batched, as users run it); dlib's "
        "HOG detector and predictor image by image.",
        "",
    ]
    for image_set, timed in speed.items():
        any_s = next(iter(timed.values()))
        what = "test frames" if image_set == "test" else "photos (`--photos`)"
        lines += [f"### {any_s.get('images', '?')} {what}, {any_s.get('rounds', '?')} passes", ""]
        lines += speed_table(timed) + [""]
    warning = contention(results)
    if warning:
        lines += [warning, ""]
    lines += [
        f"Machine load average (1, 5, 15 min) at start {m.get('load_avg_start')}, "
        f"before timing {m.get('load_avg_timing', '?')}, "
        f"at end {m.get('load_avg_end')}: the cores are shared, so absolute figures vary "
        "from run to run more than the ratios do.",
        "",
    ]
    return lines


def training_section(results: dict) -> list[str]:
    rows = []
    for key, t in results.get("training", {}).items():
        label = LABELS.get(key, key)
        if "note" in t:
            rows.append([label, "–", "–", "–", "–", "–", "–", t["note"]])
            continue
        arch = t.get("config_arch") or results.get("models", {}).get(key, {}).get("arch") or "–"
        best = f"{t.get('metric', '')} {num(t.get('best_value'), 4)}".strip()
        rows.append(
            [
                label,
                str(arch),
                str(t.get("device", "–")),
                f"{t.get('best_epoch', '–')} / {t.get('epochs', '–')}",
                duration(t.get("time_to_best_s")),
                duration(t.get("with_init_to_best_s")),
                duration(t.get("total_s")),
                best,
            ]
        )
    if not rows:
        return []
    lines = [
        "## Training time",
        "",
        "Time to the best checkpoint (lowest validation metric): the sum of the epochs' training "
        "and validation seconds from the run's `metrics.jsonl` (start-up not included); "
        "with its runs: adding every epoch of the runs it was made from (`--init` and the runs "
        "an averaged model averages, followed back, each counted once; their records on this "
        "machine).",
        "",
    ]
    return (
        lines
        + table(
            [
                "model",
                "arch",
                "device",
                "best / total epochs",
                "time to best",
                "with its runs",
                "total time",
                "best validation",
            ],
            rows,
        )
        + [""]
    )


def targets_section(results: dict) -> list[str]:
    t = results.get("targets", {})
    lines = ["## Targets", ""]
    for boxes in ("gt", "detect"):
        g = t.get(f"nme_gain_{boxes}")
        if g:
            short = 100 * (g["target"] - g["gain"])
            verdict = "met" if g["met"] else f"**missed** by {short:.1f} percentage points"
            lines.append(
                f"- Test NME_io with {BOX_LABELS[boxes]}: facemark {pct(g['facemark'])} vs dlib "
                f"{pct(g['dlib'])}, {pct(g['gain'], 1)} lower "
                f"(target ≥ {pct(g['target'], 0)}): {verdict}."
            )
    s = t.get("speed_ratio")
    if s:
        verdict = "met" if s["met"] else f"**missed**: {pct(1 - s['ratio'], 0)} slower"
        lines.append(
            f"- End to end on CPU: facemark {num(s['facemark'], 1)} images/s "
            f"({s['threads']} threads) vs dlib {num(s['dlib'], 1)} images/s, "
            f"{s['ratio']:.2f}× (target ≥ 1×): {verdict}."
        )
    if len(lines) == 2:
        lines.append("- Not evaluated in this run (facemark or dlib missing; see *Skipped*).")
    return lines + [""]


def method_section(results: dict) -> list[str]:
    lines = [
        "## Method",
        "",
        "- **Data.** Validation: the identity split of the training CSV (default seed and "
        'fraction, `facemark.data.load_split("val")`), so no person in it was seen in training. '
        "Test: the 160 labelled test frames. Images are decoded once and every model gets the "
        "same pixels. facemark's rows come from `facemark.evaluate.evaluate_models`; dlib's "
        "answers are scored by the same `evaluate.match_detection` and `evaluate.score`.",
        "- **Metrics** (`facemark.metrics`): NME_io = mean point error / outer-eye-corner distance "
        "(points 36, 45); FR@0.10 = share of faces above 0.10; AUC@0.10 = area under the CED curve "
        "up to 0.10, scaled to [0, 1].",
        "- **Ground-truth boxes** isolate landmark accuracy: facemark crops from its face box "
        "(`transforms.face_box_from_keypoints`); see below for dlib.",
        "- **Detector boxes** measure the whole pipeline: a detection belongs to the face when it "
        "contains the centroid of the true keypoints (highest score if several). A missed face "
        "counts as a failure in FR and at infinite error in AUC; NME_io is the mean over the found "
        "faces, with the number missed beside it. The Udacity network has no detector, so its rows "
        "use facemark's.",
    ]
    info = results.get("models", {}).get("dlib")
    if info:
        lines += dlib_method(info)
    lines += [
        "- **Speed**: one full pass over the test frames per measurement, in rounds that "
        "alternate dlib and facemark so both see the same machine load; the median pass is "
        "reported (every pass is in the JSON). Images are decoded before the landmark and "
        "detection passes; the end-to-end pass reads the files. Landmarks: one face per call "
        "(batch 1), from ground-truth boxes for facemark and HOG's boxes for dlib. facemark is "
        "timed with torch at each listed thread count; dlib's detector and predictor use one.",
        "",
    ]
    return lines


def dlib_method(info: dict) -> list[str]:
    """How dlib was run and how its ground-truth boxes were made, with the calibration figures."""
    cal = info["calibration"]
    m = cal["maps"][cal["source"]]
    coef = m["coef"]
    check = cal["check"]
    fmt = lambda k: f"{pct(check[k]['nme_io'])} (FR@0.10 {pct(check[k]['fr_10'], 1)})"  # noqa: E731
    return [
        f"- **dlib** {info['dlib']} (`dlib-bin` {info['dlib_bin']}, `face-recognition-models` "
        f"{info['face_recognition_models']}: `shape_predictor_68_face_landmarks.dat`), HOG frontal "
        f"detector with upsample {info['upsample']} as in dlib's examples, one thread. Its "
        "Python API returns integer keypoints (up to 0.5 px rounding, like the labels).",
        "- **dlib's ground-truth boxes.** dlib's predictor was trained on its HOG detector's "
        "boxes and is sensitive to where the box sits, so it gets a box where HOG would put it: "
        "a square whose centre is the centre of the bounding box of the true keypoints without "
        "the jaw (points 17-67) plus a·w + b·h, and whose side is a·w + b·h (w, h: that box's "
        f"size), fitted by least squares on the {cal['found']} training-split frames (of "
        f"{cal['frames']}) where HOG finds the face: dx {_ab(coef['dx'])}, dy {_ab(coef['dy'])}, "
        f"side {_ab(coef['side'])}; IoU with HOG's boxes {m['iou_mean']:.3f}. On those frames "
        f"dlib scores {fmt('hog')} from HOG's own boxes, "
        f"{fmt('inner')} from this map, and {fmt('face')} from the same kind of map fitted on "
        "facemark's face box, whose jaw-based centre misplaces the box for dlib: that map would "
        "measure the box, not dlib, so it is not used.",
    ]


def _ab(pair: list[float]) -> str:
    return f"{pair[0]:+.3f}·w {pair[1]:+.3f}·h"


def markdown(results: dict, json_path: str | Path | None = None) -> str:
    m = results.get("machine", {})
    lines = [
        "# Benchmarks",
        "",
        "<!-- generated by benchmarks/run.py; edit the generator, not this page -->",
        "",
        f"Measured {results['date']} (commit `{results.get('commit') or '?'}`"
        f"{', quick run' if results.get('quick') else ''}), "
        f"in {num(results.get('elapsed_s'), 0)} s. Regenerate with:",
        "",
        "```bash",
        results["command"],
        "```",
        "",
    ]
    lines += targets_section(results) + accuracy_section(results) + speed_section(results)
    lines += training_section(results)
    lines += [
        "## Machine",
        "",
        f"- CPU: {m.get('cpu')}, {m.get('cpu_count')} cores, {m.get('memory_gib')} GiB RAM",
        f"- {m.get('platform')}, Python {m.get('python')}, torch {m.get('torch')}",
        "- Models: "
        + "; ".join(
            f"{k}: `{_rel(v.get('checkpoint', v.get('predictor', '')))}`"
            for k, v in results.get("models", {}).items()
        ),
        f"- Dataset fingerprint: `{results.get('data', {}).get('fingerprint', '?')}`",
        "",
    ]
    lines += method_section(results)
    if results.get("notes"):
        lines += ["## Notes", "", results["notes"].strip(), ""]
    if results.get("skipped"):
        lines += ["## Skipped", ""] + [f"- {k}: {v}" for k, v in results["skipped"].items()] + [""]
    lines += [
        "## Reproduce",
        "",
        "```bash",
        "# once: dlib in its own virtual environment (never a facemark dependency)",
        "python3 -m venv /tmp/dlib-venv",
        "/tmp/dlib-venv/bin/pip install dlib-bin face-recognition-models numpy pillow",
        "# the benchmark (project venv; the dataset installed with `facemark fetch-data`)",
        results["command"],
        "```",
        "",
    ]
    if json_path:
        lines += [f"Raw figures: `{_rel(json_path)}`.", ""]
    return "\n".join(lines)


def _rel(path: str | Path) -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return str(path)


def write_markdown(path: str | Path, results: dict, json_path: str | Path | None = None) -> None:
    with atomic_write(path, "w") as fh:
        fh.write(markdown(results, json_path))


# --------------------------------------------------------------------------- other benchmarks


def write_outputs(
    results: dict,
    json_path: Path,
    md_path: Path,
    render: Callable[[dict], str],
    log: Callable[[str], None],
) -> None:
    """A benchmark's record to ``json_path`` and its page, ``render(results)``, to ``md_path``
    and to stdout (folders made as needed); ``log`` says where they went."""
    for path in (json_path, md_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    text = render(results)
    md_path.write_text(text)
    print(text)
    log(f"wrote {json_path} and {md_path}")


def write_record(results: dict, json_path: Path) -> None:
    """A benchmark's record (no page) to ``json_path`` (folder made as needed) and stdout."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2) + "\n"
    json_path.write_text(text)
    print(text, end="")


def load_average() -> float | None:
    """The 1-minute load average, rounded to 2 decimals (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def cores_visible() -> int | None:
    """The cores this process may run on (its CPU affinity), else all the machine's."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return affinity or os.cpu_count()


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what :mod:`platform` says."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return cpu


def package_versions(packages: Iterable[str]) -> dict[str, str | None]:
    """Python's version and each installed package's (None where not installed)."""
    import importlib.metadata as md

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in packages:
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return versions


# --------------------------------------------------------------------------- terminal


def print_summary(results: dict, console: Any) -> None:
    """A short rich table of the test-frame figures and the targets."""
    from rich.table import Table

    table = Table(title="Benchmarks: 160 test frames")
    for col in ("model", "boxes", "NME_io", "FR@0.10", "AUC@0.10", "missed"):
        table.add_column(col, justify="left" if col in ("model", "boxes") else "right")
    for r in results.get("accuracy", []):
        if r["split"] == "test":
            table.add_row(
                LABELS[r["model"]],
                r["boxes"],
                pct(r["nme_io"]),
                pct(r["fr_10"], 1),
                num(r["auc_10"], 3),
                str(r["missed"]),
            )
    console.print(table)
    for line in targets_section(results)[2:]:
        if line:
            console.print(line.replace("**", ""))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m benchmarks.report RESULTS.json OUT.md")
    write_markdown(sys.argv[2], json.loads(Path(sys.argv[1]).read_text()), sys.argv[1])
