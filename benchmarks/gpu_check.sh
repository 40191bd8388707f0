#!/usr/bin/env bash
# One short, prepared check of facemark on a CUDA machine: train the default landmark recipe,
# evaluate that run and the bundled model, annotate the photo set; wall time and peak GPU
# memory per step, summarised as a markdown table (stdout and <dest>/gpu_check.md) and JSON
# (<dest>/gpu_check.json), with every step's output in <dest>/steps.log.  Fits in ~8 min on
# one H200 with the defaults.  Installs nothing; needs `facemark` on PATH (or FACEMARK_CMD).
#
# usage: benchmarks/gpu_check.sh [DEST]    DEST: folder for the results (default: $OUT if set,
#                                          else ./<NAME>-results)
# environment (all optional):
#   DEVICE=gpu|cpu|cuda:N  gpu (default) passes --gpu; cpu passes --device cpu (the CPU test)
#   EPOCHS=N               train epochs (default: the recipe's, 70)
#   MAX_MINUTES=M          train stops after the epoch that passes M minutes (default 5 on a
#                          GPU, none on cpu; 0 = no limit); the summary says how many epochs ran
#   WORKERS=N              DataLoader workers (default on a GPU: cores - 4, at most 12)
#   DATA=PATH              --data for train and both evaluates (default: the installed dataset,
#                          installed first from DATA_ZIP if missing)
#   DATA_ZIP=PATH          default ../shared/data/P1_Facial_Keypoints-master.zip (repo-relative)
#   PHOTOS=DIR             photos to annotate (default ../shared/photos beside the repo)
#   NAME=RUN               run name (default gpu-check-<date-time>)
#   TRAIN_ARGS, EVAL_ARGS, ANNOTATE_ARGS   more options for those commands (word-split)
#   FACEMARK_CMD           how to call facemark (default: facemark), e.g. "python3 -m facemark"
#   PYTHON                 python for the summary (stdlib only; default python3)
#   SAMPLE_GPU_MEM=auto|1|0  sample nvidia-smi's memory.used during each step (auto: when
#                          DEVICE is not cpu and nvidia-smi is on PATH)
# A failed step is recorded (and its log tail printed) and the rest still run; the exit status
# is 1 when any step failed.
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,27p' "$0"
    exit 0
fi

read -r -a FM <<<"${FACEMARK_CMD:-facemark}"
if ! command -v "${FM[0]}" >/dev/null 2>&1; then
    echo "gpu_check: '${FM[0]}' is not on PATH: install facemark (pip install -e .)," \
        "activate its venv, or set FACEMARK_CMD" >&2
    exit 127
fi
PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "gpu_check: '$PY' is not on PATH (set PYTHON)" >&2
    exit 127
fi

here=${BASH_SOURCE[0]%/*}
[[ $here == "${BASH_SOURCE[0]}" ]] && here=.
repo=$(cd "$here/.." && pwd)

DEVICE=${DEVICE:-gpu}
case $DEVICE in
    gpu | cuda) dev=(--gpu) ;;
    cuda:*) dev=(--device "$DEVICE") ;;
    cpu) dev=(--device cpu) ;;
    *) echo "gpu_check: DEVICE must be gpu, cuda:N or cpu, not '$DEVICE'" >&2; exit 2 ;;
esac
on_gpu=1
[[ $DEVICE == cpu ]] && on_gpu=0

NAME=${NAME:-gpu-check-$(date +%Y%m%d-%H%M%S)}
PHOTOS=${PHOTOS:-$repo/../shared/photos}
DATA=${DATA:-}
DATA_ZIP=${DATA_ZIP:-$repo/../shared/data/P1_Facial_Keypoints-master.zip}
EPOCHS=${EPOCHS:-}
if [[ $on_gpu == 1 ]]; then MAX_MINUTES=${MAX_MINUTES:-5}; else MAX_MINUTES=${MAX_MINUTES:-0}; fi
if [[ -z ${WORKERS:-} && $on_gpu == 1 ]]; then
    cores=$(nproc 2>/dev/null || echo 8)
    WORKERS=$((cores - 4 > 12 ? 12 : (cores - 4 < 1 ? 1 : cores - 4)))
fi
WORKERS=${WORKERS:-}
read -r -a train_extra <<<"${TRAIN_ARGS:-}"
read -r -a eval_extra <<<"${EVAL_ARGS:-}"
read -r -a annotate_extra <<<"${ANNOTATE_ARGS:-}"

dest=${1:-${OUT:-$NAME-results}}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
log=$dest/steps.log
: >"$log"
: >"$work/steps.tsv"
smi_pid=""
cleanup() {
    if [[ -n $smi_pid ]]; then kill "$smi_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

has_smi=0
sample=${SAMPLE_GPU_MEM:-auto}
if [[ $sample == auto ]]; then sample=$on_gpu; fi
if [[ $sample == 1 ]] && command -v nvidia-smi >/dev/null 2>&1; then
    has_smi=1
    nvidia-smi >"$dest/nvidia-smi.txt" 2>&1 || true
fi

now() { if [[ -n ${EPOCHREALTIME:-} ]]; then echo "${EPOCHREALTIME/,/.}"; else date +%s.%N; fi; }

# run_step STEP CMD...: runs CMD (stdout to $work/STEP.out, both streams into the log), timing
# it and sampling nvidia-smi's memory.used meanwhile; one line per step into steps.tsv.
failed=0
run_step() {
    local step=$1
    shift
    echo "== $step: $*" | tee -a "$log"
    local smi_file=$work/$step.smi
    : >"$smi_file"
    if [[ $has_smi == 1 ]]; then
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 \
            >"$smi_file" 2>/dev/null &
        smi_pid=$!
    fi
    local t0 t1 rc=0
    t0=$(now)
    "$@" >"$work/$step.out" 2>"$work/$step.err" || rc=$?
    t1=$(now)
    if [[ -n $smi_pid ]]; then
        kill "$smi_pid" 2>/dev/null || true
        wait "$smi_pid" 2>/dev/null || true
        smi_pid=""
    fi
    cat "$work/$step.out" "$work/$step.err" >>"$log"
    local seconds peak
    seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    peak=$(awk '$1 ~ /^[0-9]+$/ && $1 > m { m = $1 } END { if (m != "") print m }' "$smi_file")
    printf '%s\t%s\t%s\t%s\t%s\n' "$step" "$rc" "$seconds" "${peak:--}" "$*" >>"$work/steps.tsv"
    if [[ $rc != 0 ]]; then
        failed=1
        echo "   FAILED (exit $rc) after ${seconds}s; last lines:"
        tail -n 15 "$work/$step.err" "$work/$step.out" | sed 's/^/   | /'
    else
        echo "   done in ${seconds}s${peak:+, nvidia-smi peak ${peak} MiB}"
    fi
    return 0
}
skip_step() {
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "skip" "-" "-" "$2" >>"$work/steps.tsv"
    echo "== $1: skipped ($2)" | tee -a "$log"
}

"${FM[@]}" info --json >"$work/info.json" 2>>"$log" || echo '{}' >"$work/info.json"
runs_dir=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("runs_dir", ""))' \
    "$work/info.json")

data_args=()
if [[ -n $DATA ]]; then
    data_args=(--data "$DATA")
else
    intact=$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])).get("dataset") or {}
print(d.get("intact", False))' "$work/info.json")
    if [[ $intact != True ]]; then
        if [[ -f $DATA_ZIP ]]; then
            run_step fetch-data "${FM[@]}" fetch-data --zip "$DATA_ZIP"
        else
            echo "gpu_check: warning: no installed dataset and no archive at $DATA_ZIP" \
                "(set DATA or DATA_ZIP); train will fail" | tee -a "$log"
        fi
    fi
fi

train_args=(train "${dev[@]}" --name "$NAME" "${data_args[@]}")
if [[ -n $EPOCHS ]]; then train_args+=(--epochs "$EPOCHS"); fi
if [[ -n $WORKERS ]]; then train_args+=(--workers "$WORKERS"); fi
if [[ $MAX_MINUTES != 0 ]]; then train_args+=(--max-minutes "$MAX_MINUTES"); fi
run_step train "${FM[@]}" "${train_args[@]}" "${train_extra[@]}"

run_dir=$runs_dir/$NAME
for f in metrics.jsonl env.json config.json; do  # the run's records, for the summary
    if [[ -f $run_dir/$f ]]; then cp "$run_dir/$f" "$work/run-$f"; fi
done
for f in metrics.jsonl env.json; do
    if [[ -f $run_dir/$f ]]; then cp "$run_dir/$f" "$dest/$f"; fi
done
if [[ -f $run_dir/best.pt ]]; then
    run_step evaluate-run "${FM[@]}" evaluate "$NAME" "${dev[@]}" --json "${data_args[@]}" \
        "${eval_extra[@]}"
else
    skip_step evaluate-run "no best.pt at $run_dir"
fi

if [[ -d $PHOTOS ]]; then
    run_step annotate "${FM[@]}" annotate "$PHOTOS" --out "$work/annotated" "${dev[@]}" --json \
        "${annotate_extra[@]}"
else
    skip_step annotate "no photos folder at $PHOTOS (set PHOTOS)"
fi

run_step evaluate-default "${FM[@]}" evaluate default "${dev[@]}" --json "${data_args[@]}" \
    "${eval_extra[@]}"

# --- summary: markdown + JSON from the step records, the JSON outputs and the run's records
GC_DEVICE=$DEVICE GC_EPOCHS=$EPOCHS GC_WORKERS=$WORKERS GC_MAX_MINUTES=$MAX_MINUTES \
    GC_NAME=$NAME GC_PHOTOS=$PHOTOS GC_DATA=$DATA \
    "$PY" - "$work" "$dest" <<'EOF'
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

work, dest = Path(sys.argv[1]), Path(sys.argv[2])


def load(path):
    """A JSON object from a file: the whole text, else its last line (a command's --json)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return {}
    for chunk in (text, text.splitlines()[-1] if text else ""):
        try:
            data = json.loads(chunk)
        except ValueError:
            continue
        if isinstance(data, dict):
            return data
    return {}


def num(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def pct(value, digits=2):
    return f"{value * 100:.{digits}f} %" if num(value) is not None else "-"


def train_result():
    records = []
    path = work / "run-metrics.jsonl"
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                pass
    config = load(work / "run-config.json")
    env = load(work / "run-env.json")
    scored = [r for r in records if num(r.get("val_nme_io")) is not None]
    best = min(scored, key=lambda r: r["val_nme_io"]) if scored else {}
    later = records[1:] or records  # the first epoch carries warm-up (cuDNN autotuning)
    rates = [r["samples_per_s"] for r in later if num(r.get("samples_per_s")) is not None]
    waits = [r["data_wait"] for r in later if num(r.get("data_wait")) is not None]
    epoch_s = [
        r.get("seconds", 0) + r.get("val_seconds", 0) for r in later if num(r.get("seconds"))
    ]
    peaks = [r["peak_gpu_mem_mb"] for r in records if num(r.get("peak_gpu_mem_mb")) is not None]
    out = {
        "epochs_run": len(records),
        "epochs_planned": config.get("epochs"),
        "best_val_nme_io": best.get("val_nme_io"),
        "best_epoch": best.get("epoch"),
        "val_fr_10_at_best": best.get("val_fr_10"),
        "samples_per_s_median": statistics.median(rates) if rates else None,
        "data_wait_mean": statistics.fmean(waits) if waits else None,
        "seconds_per_epoch_median": statistics.median(epoch_s) if epoch_s else None,
        "torch_peak_mb": max(peaks) if peaks else None,
        "device": env.get("device"),
        "device_name": env.get("device_name"),
        "workers": env.get("workers"),
        "amp": env.get("amp"),
        "arch": config.get("arch"),
        "batch_size": config.get("batch_size"),
        "img_size": config.get("img_size"),
    }
    text = "-"
    if records:
        text = (
            f"best val NME_io {pct(out['best_val_nme_io'])} (epoch {out['best_epoch']}); "
            f"{out['epochs_run']} of {out['epochs_planned']} epochs"
        )
        if out["seconds_per_epoch_median"] is not None:
            text += f", {out['seconds_per_epoch_median']:.1f} s/epoch"
        if out["samples_per_s_median"] is not None:
            text += f", {out['samples_per_s_median']:.0f} samples/s"
        if out["data_wait_mean"] is not None:
            text += f", data wait {out['data_wait_mean'] * 100:.0f} %"
    return out, text


def evaluate_result(step):
    data = load(work / f"{step}.out")
    model = (data.get("models") or [{}])[0]
    keys = ("model", "split", "images", "nme_io", "fr_10", "auc_08", "ms_per_face",
            "ms_per_face_b32", "device")
    out = {k: model.get(k) for k in keys}
    if num(out["nme_io"]) is None:
        return out, "-"
    text = (
        f"{out['split']}: NME_io {pct(out['nme_io'])}, FR@0.10 {pct(out['fr_10'], 1)} "
        f"on {out['images']} faces"
    )
    if num(out["ms_per_face"]) is not None:
        text += f"; {out['ms_per_face']:.2f} ms/face"
        if num(out["ms_per_face_b32"]) is not None:
            text += f" ({out['ms_per_face_b32']:.2f} at batch 32)"
    return out, text


def annotate_result():
    data = load(work / "annotate.out")
    keys = ("images", "found", "faces", "failures", "images_per_s", "seconds", "load_seconds",
            "detector")
    out = {k: data.get(k) for k in keys}
    if num(out["faces"]) is None:
        return out, "-"
    text = (
        f"{out['faces']} faces in {out['images']} images ({out['found']} with a face), "
        f"{out['images_per_s']} images/s"
    )
    if out.get("failures"):
        text += f", {out['failures']} unreadable"
    return out, text


def smi(*query):
    try:
        return subprocess.run(
            ["nvidia-smi", f"--query-gpu={','.join(query)}", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


info = load(work / "info.json")
steps = []
for line in (work / "steps.tsv").read_text().splitlines():
    step, rc, seconds, peak, command = line.split("\t", 4)
    entry = {
        "step": step,
        "status": "skipped" if rc == "skip" else ("ok" if rc == "0" else f"failed (exit {rc})"),
        "seconds": float(seconds) if seconds != "-" else None,
        "smi_peak_mb": int(peak) if peak != "-" else None,
        "torch_peak_mb": None,
        "command": command,
    }
    details, text = {}, "-"
    if rc == "skip":
        text = f"skipped: {command}"
    elif step == "train":
        details, text = train_result()
        entry["torch_peak_mb"] = details.get("torch_peak_mb")
    elif step.startswith("evaluate"):
        details, text = evaluate_result(step)
    elif step == "annotate":
        details, text = annotate_result()
    elif step == "fetch-data":
        text = "dataset installed from the archive"
    if entry["status"].startswith("failed"):
        text = f"{entry['status']}; see steps.log" + ("" if text == "-" else f" ({text})")
    entry["result"], entry["details"] = text, details
    steps.append(entry)

env = {
    "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    "host": platform.node(),
    "device": os.environ.get("GC_DEVICE"),
    "gpu": smi("name", "driver_version", "memory.total"),
    "facemark": info.get("facemark_version"),
    "torch": info.get("torch"),
    "cuda": info.get("cuda"),
    "cpu_count": os.cpu_count(),
    "workers": os.environ.get("GC_WORKERS") or "train's default",
    "epochs": os.environ.get("GC_EPOCHS") or "recipe default",
    "max_minutes": os.environ.get("GC_MAX_MINUTES"),
    "run": os.environ.get("GC_NAME"),
    "data": os.environ.get("GC_DATA") or "installed dataset",
    "photos": os.environ.get("GC_PHOTOS"),
}
total = sum(s["seconds"] or 0.0 for s in steps)


def cell(value, fmt):
    return format(value, fmt) if value is not None else "-"


lines = ["# facemark GPU check", ""]
lines += [f"- {k}: {v}" for k, v in env.items() if v not in (None, "")]
lines += [
    "",
    "| step | seconds | peak MB (torch) | peak MB (nvidia-smi) | result |",
    "| --- | ---: | ---: | ---: | --- |",
]
for s in steps:
    lines.append(
        f"| {s['step']} | {cell(s['seconds'], '.1f')} | {cell(s['torch_peak_mb'], '.0f')} "
        f"| {cell(s['smi_peak_mb'], 'd')} | {s['result'].replace('|', '/')} |"
    )
lines.append(f"| total | {total:.1f} | | | |")
lines += [
    "",
    "peak MB (torch): torch.cuda.max_memory_allocated over the run (tensors only), from "
    "metrics.jsonl's peak_gpu_mem_mb. peak MB (nvidia-smi): the most memory.used seen on the "
    "GPU while the step ran (sampled every 0.2 s; includes the CUDA context).",
    "",
    "commands:",
    "",
]
lines += [f"    {s['command']}" for s in steps]
markdown = "\n".join(lines) + "\n"
(dest / "gpu_check.md").write_text(markdown)
(dest / "gpu_check.json").write_text(
    json.dumps({"env": env, "steps": steps, "total_seconds": total}, indent=2) + "\n"
)
print()
print(markdown)
print(f"written: {dest / 'gpu_check.md'}, {dest / 'gpu_check.json'}, {dest / 'steps.log'}")
EOF

exit "$failed"
