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
from facemark.files import write_json

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "facemark" / "weights"


def bundle(task: str, run: str) -> dict:
    run_dir = paths.runs_dir() / run
    src = run_dir / "best.pt"
    dst = export_checkpoint(src, WEIGHTS / f"{task}.pt")
    data = load_checkpoint(dst, task=task)
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
    best = next(x for x in lines if x["epoch"] == data["epoch"])
    return {
        "file": dst.name,
        "bytes": dst.stat().st_size,
        "run": run,
        "arch": data["arch"],
        "epoch": data["epoch"],
        "epochs_run": lines[-1]["epoch"],
        "minutes_to_best": round(best["elapsed"] / 60, 1),
        "minutes_total": round(lines[-1]["elapsed"] / 60, 1),
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
