#!/usr/bin/env bash
# Train every landmark architecture with the same budget, then print one table of
# validation NME_io (and failure rate, AUC) next to CPU milliseconds per face.
#
# usage: benchmarks/compare_archs.sh [options] [-- extra facemark train options]
#   --epochs N         epochs per arch (default 60)
#   --archs "A B ..."  which archs (default: every registered landmark arch)
#   --prefix P         run names are P-<arch> (default cmp)
#   --gpu | --cpu      where to train (default: --gpu if CUDA is available)
#   --table-only       skip training; tabulate existing runs P-<arch>
#   --threads T        torch threads for the CPU timing (default 2)
#
# A run that already finished is not retrained; an interrupted one is resumed.  The table is
# also written as JSON to <runs dir>/<prefix>-comparison.json.
#
# Example (the coordinator's H100 comparison):
#   benchmarks/compare_archs.sh --gpu --epochs 150 --prefix h100
set -euo pipefail

epochs=60
archs=""
prefix=cmp
device=""
table_only=0
threads=2
while [[ $# -gt 0 ]]; do
    case "$1" in
        --epochs) epochs="$2"; shift 2 ;;
        --archs) archs="$2"; shift 2 ;;
        --prefix) prefix="$2"; shift 2 ;;
        --gpu) device="--gpu"; shift ;;
        --cpu) device="--device cpu"; shift ;;
        --table-only) table_only=1; shift ;;
        --threads) threads="$2"; shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done
extra=("$@")

py=${PYTHON:-python}
if [[ -z "$archs" ]]; then
    archs=$($py -c "from facemark.models import ARCHS; print(' '.join(ARCHS))")
fi
if [[ -z "$device" ]]; then
    device=$($py -c "import torch; print('--gpu' if torch.cuda.is_available() else '--device cpu')")
fi
runs_dir=$($py -c "from facemark import paths; print(paths.runs_dir())")

if [[ $table_only -eq 0 ]]; then
    for arch in $archs; do
        name="$prefix-$(echo "$arch" | tr -c "A-Za-z0-9._\n-" "_")"
        if [[ -f "$runs_dir/$name/last.pt" ]]; then
            # finished runs say so and are skipped; interrupted ones continue
            facemark train --resume "$runs_dir/$name" $device "${extra[@]}" \
                || echo "($name: not resumed, see message above)"
        else
            facemark train --arch "$arch" --epochs "$epochs" --name "$name" $device "${extra[@]}"
        fi
    done
fi

PREFIX="$prefix" ARCHS="$archs" THREADS="$threads" $py - <<'EOF'
"""Tabulate the runs and time each network on the CPU (batch 1, median of repeats)."""
import json
import os
import re
import statistics
import time

import numpy as np
import torch

from facemark import paths
from facemark.checkpoint import load_checkpoint
from facemark.files import write_json
from facemark.landmarker import Landmarker
from facemark.models import count_parameters

prefix, threads = os.environ["PREFIX"], int(os.environ["THREADS"])
torch.set_num_threads(threads)


def cpu_ms_per_face(lm: Landmarker, flip: bool, repeats: int = 60) -> float:
    crop = np.random.default_rng(0).integers(0, 255, (1, lm.img_size, lm.img_size, 3), dtype=np.uint8)
    for _ in range(5):
        lm.predict_crops(crop, flip=flip)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        lm.predict_crops(crop, flip=flip)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


rows = []
for arch in os.environ["ARCHS"].split():
    run = paths.runs_dir() / f"{prefix}-{re.sub(r'[^A-Za-z0-9._-]', '_', arch)}"
    if not (run / "best.pt").is_file():
        print(f"{run.name}: no best.pt, skipped")
        continue
    best = load_checkpoint(run / "best.pt", task="landmarks")
    history = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    env = json.loads((run / "env.json").read_text())
    lm = Landmarker.from_checkpoint(best)
    m = best["metrics"]
    rows.append({
        "arch": arch,
        "params_M": round(count_parameters(lm.model) / 1e6, 2),
        "img_size": lm.img_size,
        "epochs": len(history),
        "best_epoch": best["epoch"],
        "val_nme_io_pct": round(100 * m["nme_io"], 3),
        "val_fr10_pct": round(100 * m["fr_10"], 2),
        "val_auc10": round(m["auc_10"], 4),
        "train_minutes": round(sum(r["seconds"] + r.get("val_seconds", 0) for r in history) / 60, 1),
        "samples_per_s": round(statistics.median(r["samples_per_s"] for r in history)),
        "device": env.get("device_name"),
        "cpu_ms_per_face": round(cpu_ms_per_face(lm, False), 2),
        "cpu_ms_per_face_flip": round(cpu_ms_per_face(lm, True), 2),
    })

cols = list(rows[0]) if rows else []
print(f"\n| {' | '.join(cols)} |\n|{'---|' * len(cols)}")
for r in rows:
    print(f"| {' | '.join(str(r[c]) for c in cols)} |")
print(f"\nCPU timing: batch 1, {threads} torch threads, median of 60, network + decoding only.")
write_json(paths.runs_dir() / f"{prefix}-comparison.json", rows)
EOF
