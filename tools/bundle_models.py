"""Copy trained runs into the package as its bundled default models.

    python tools/bundle_models.py --landmarks RUN --detector RUN

Each run's best.pt is exported inference-only in float16 (checkpoint.export_checkpoint) to
src/facemark/weights/{landmarks,detector}.pt, and the run's config, metrics, data fingerprint
and training time are written to src/facemark/weights/models.json for the model cards in
docs/models.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facemark import paths
from facemark.checkpoint import export_checkpoint, load_checkpoint
from facemark.files import sha256_file, write_json
from facemark.runs import read_records, summarize

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "facemark" / "weights"

#: The validation metric each task's best.pt was chosen by (lower is better).
METRIC = {"landmarks": "nme_io", "detector": "miss_rate"}


def _total_seconds(run: str) -> float:
    """All epochs of a run and, recursively, of the run it was initialised from (--init)."""
    run_dir = paths.runs_dir() / run
    parent = json.loads((run_dir / "config.json").read_text()).get("init")
    own = summarize(read_records(run_dir))["total_s"] or 0.0
    return own + (_total_seconds(parent) if parent else 0.0)


def bundle(task: str, run: str) -> dict:
    run_dir = paths.runs_dir() / run
    dst = export_checkpoint(run_dir / "best.pt", WEIGHTS / f"{task}.pt")
    data = load_checkpoint(dst, task=task)
    records = read_records(run_dir)
    # times are summed per epoch, so a run that was stopped and resumed counts only its work
    summary = summarize(records, METRIC[task])
    if summary.get("best_epoch") != data["epoch"]:
        raise SystemExit(f"{run}: best.pt is epoch {data['epoch']}, records say {summary}")
    best = next(r for r in records if r["epoch"] == data["epoch"])
    parent = (data.get("config") or {}).get("init")
    parent_s = _total_seconds(parent) if parent else 0.0
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
        "minutes_to_best_including_init": round((parent_s + summary["time_to_best_s"]) / 60, 1),
        "val": best["val"],
        "config": data.get("config"),
        "dataset_fingerprint": data.get("dataset_fingerprint"),
        "env": json.loads((run_dir / "env.json").read_text()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landmarks", required=True, help="run name of the landmark model")
    parser.add_argument("--detector", required=True, help="run name of the face detector")
    args = parser.parse_args()
    cards = {"landmarks": bundle("landmarks", args.landmarks)}
    cards["detector"] = bundle("detector", args.detector)
    write_json(WEIGHTS / "models.json", cards)
    print(
        json.dumps({k: {"bytes": v["bytes"], "val": v["val"]} for k, v in cards.items()}, indent=1)
    )


if __name__ == "__main__":
    main()
