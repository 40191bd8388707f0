"""Copy trained runs into the package as its bundled default models.

    python tools/bundle_models.py --landmarks RUN [--detector RUN] \
        [--faceness --wild DIR --animals DIR]
    python tools/bundle_models.py --int8-only

Each run's best.pt is exported inference-only in float16 (checkpoint.export_checkpoint) to
src/facemark/weights/{landmarks,detector}.pt, and the run's config, metrics, data fingerprint
and training time are written to src/facemark/weights/models.json for the model cards in
docs/models.md.  Then the int8 form of the bundled landmark model (``default-int8``,
src/facemark/weights/landmarks-int8.pt) is made from the new landmarks.pt exactly as
``facemark export src/facemark/weights/landmarks.pt --format int8`` makes it (200 crops of
the installed dataset's training split, seed 0; scored on val, timed on ``--threads``), and
its card goes to models.json as ``landmarks-int8``.  ``--int8-only`` remakes just that file
and card from the landmarks.pt already bundled (after a retrain bundled by hand, or a torch
upgrade).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facemark import paths
from facemark.checkpoint import export_checkpoint, load_checkpoint
from facemark.files import sha256_file, write_json
from facemark.runs import init_seconds, read_records, summarize

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "facemark" / "weights"

#: The validation metric each task's best.pt was chosen by (lower is better).
METRIC = {"landmarks": "nme_io", "detector": "miss_rate"}


def _card_seconds(task: str) -> float:
    """The training time of the bundled model a run started from (``--init default``): its
    card's, as no run records of it are here."""
    card = json.loads((WEIGHTS / "models.json").read_text()).get(task, {})
    if card.get("init_seconds") is not None:  # bundling the same run again
        return float(card["init_seconds"])
    return 60.0 * (card.get("minutes_to_best_including_init") or card.get("minutes_total") or 0)


def bundle(task: str, run: str, faceness: list[str] | None = None) -> dict:
    run_dir = paths.runs_dir() / run
    dst = export_checkpoint(run_dir / "best.pt", WEIGHTS / f"{task}.pt")
    report = None
    if faceness is not None:  # fit the "human face or not" head of the new weights into them
        import train_faceness

        report = WEIGHTS.parent.parent.parent / "benchmarks" / "results" / "faceness.json"
        train_faceness.main(
            ["--model", str(dst), "--out", str(dst), "--report", str(report), *faceness]
        )
    data = load_checkpoint(dst, task=task)
    records = read_records(run_dir)
    # times are summed per epoch, so a run that was stopped and resumed counts only its work
    summary = summarize(records, METRIC[task])
    if summary.get("best_epoch") != data["epoch"]:
        raise SystemExit(f"{run}: best.pt is epoch {data['epoch']}, records say {summary}")
    best = next(r for r in records if r["epoch"] == data["epoch"])
    parent = (data.get("config") or {}).get("init")
    # the runs it continued or averaged, each once; past a bundled model, that model's card
    parent_s = init_seconds(run_dir, missing=lambda _spec: _card_seconds(task)) or 0.0
    return {
        "file": dst.name,
        "bytes": dst.stat().st_size,
        "sha256": sha256_file(dst),
        "run": run,
        "arch": data["arch"],
        "epoch": data["epoch"],
        "epochs_run": records[-1]["epoch"],
        "minutes_to_best": round(summary["time_to_best_s"] / 60, 1),
        "minutes_total": round(summary["total_s"] / 60, 1),
        "init_from": parent,
        "averaged_from": data.get("averaged_from"),
        "init_seconds": round(parent_s, 1),
        "minutes_to_best_including_init": round((parent_s + summary["time_to_best_s"]) / 60, 1),
        "val": best["val"],
        "config": data.get("config"),
        "dataset_fingerprint": data.get("dataset_fingerprint"),
        "env": json.loads((run_dir / "env.json").read_text()),
        "faceness": json.loads(report.read_text()) if report is not None else None,
    }


def bundle_int8(threads: int) -> dict:
    """landmarks-int8.pt from the bundled landmarks.pt, and its card (what it was measured at)."""
    import torch

    from facemark import export

    torch.set_num_threads(threads)
    result = export.export_int8(WEIGHTS / "landmarks.pt", WEIGHTS / "landmarks-int8.pt", force=True)
    made = result.to_dict()
    return {
        "file": result.path.name,
        "bytes": result.size,
        "sha256": sha256_file(result.path),
        "from": result.source.name,
        "from_sha256": sha256_file(result.source),
        "arch": result.arch,
        "epoch": load_checkpoint(result.path, task="landmarks").get("epoch"),
        **{k: made[k] for k in ("quantized", "quantized_parts", "calibration")},
        "val_faces": result.val_faces,
        "val": made["metrics"]["int8"],
        "val_float": made["metrics"]["float"],
        "delta_nme_points": made["delta_nme_points"],
        "max_diff_px": made["max_diff_px"],
        "ms_per_face": made["ms_per_face"],
        "threads": threads,
        "torch": str(torch.__version__),
        "command": "python tools/bundle_models.py --int8-only",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landmarks", help="run name of the landmark model")
    parser.add_argument("--detector", help="run name of the face detector")
    parser.add_argument(
        "--int8-only",
        action="store_true",
        help="only remake landmarks-int8.pt (and its card) from the bundled landmarks.pt",
    )
    parser.add_argument("--threads", type=int, default=2, help="CPU threads the int8 is timed on")
    parser.add_argument(
        "--faceness",
        nargs=argparse.REMAINDER,
        help="fit the landmark model's faceness head: the rest of the line goes to "
        "tools/train_faceness.py (--wild DIR --animals DIR [--cache FILE])",
    )
    args = parser.parse_args()
    if args.int8_only and (args.landmarks or args.detector):
        parser.error("--int8-only takes no runs")
    if not (args.int8_only or args.landmarks or args.detector):
        parser.error("give --landmarks RUN and/or --detector RUN, or --int8-only")
    # the card of a model not given stays as it is
    cards = json.loads((WEIGHTS / "models.json").read_text())
    for task in ("landmarks", "detector"):
        if getattr(args, task):
            fit = args.faceness if task == "landmarks" else None
            cards[task] = bundle(task, getattr(args, task), fit)
    cards["landmarks-int8"] = bundle_int8(args.threads)
    write_json(WEIGHTS / "models.json", cards)
    print(
        json.dumps({k: {"bytes": v["bytes"], "val": v["val"]} for k, v in cards.items()}, indent=1)
    )


if __name__ == "__main__":
    main()
