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

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "facemark" / "weights"


def _minutes(epochs) -> float:
    return sum(x["seconds"] + x.get("val_seconds", 0.0) for x in epochs) / 60


def _run_minutes(run: str) -> float:
    """All epochs of a run and, recursively, of the run it was initialised from."""
    run_dir = paths.runs_dir() / run
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
    parent = json.loads((run_dir / "config.json").read_text()).get("init")
    return _minutes(lines) + (_run_minutes(parent) if parent else 0.0)


def bundle(task: str, run: str) -> dict:
    run_dir = paths.runs_dir() / run
    src = run_dir / "best.pt"
    dst = export_checkpoint(src, WEIGHTS / f"{task}.pt")
    data = load_checkpoint(dst, task=task)
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
    best = next(x for x in lines if x["epoch"] == data["epoch"])
    # a fine-tuned run (--init) also owes the time of the run it started from
    parent = (data.get("config") or {}).get("init")
    parent_minutes = _run_minutes(parent) if parent else 0.0
    return {
        "file": dst.name,
        "bytes": dst.stat().st_size,
        "sha256": sha256_file(dst),
        "run": run,
        "arch": data["arch"],
        "epoch": data["epoch"],
        "epochs_run": lines[-1]["epoch"],
        # summed per epoch, so a run that was stopped and resumed counts only its working time
        "minutes_to_best": round(_minutes(x for x in lines if x["epoch"] <= data["epoch"]), 1),
        "minutes_total": round(_minutes(lines), 1),
        "init_from": parent,
        "minutes_to_best_including_init": round(
            parent_minutes + _minutes(x for x in lines if x["epoch"] <= data["epoch"]), 1
        ),
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
