"""benchmarks/gpu_check.sh (issue 13): the whole script end to end on CPU with a tiny synthetic
dataset (DEVICE=cpu, 1 epoch), a fake nvidia-smi for the memory sampling, and its failure paths.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from synthetic import install_synthetic_dataset, tiny_train_config

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
BASH = shutil.which("bash")
STEPS = ["train", "evaluate-run", "annotate", "evaluate-default"]

pytestmark = pytest.mark.skipif(BASH is None, reason="bash is not installed")

FAKE_SMI = """#!/usr/bin/env bash
case "$*" in
    *-lms*) echo 1500; while :; do echo 1234; sleep 0.05; done ;;
    *--query-gpu=name*) echo "Fake GPU, 0.0, 2048 MiB" ;;
    *) echo "fake nvidia-smi" ;;
esac
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    smi = fake_bin / "nvidia-smi"
    smi.write_text(FAKE_SMI)
    smi.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("OUT", "EPOCHS", "DATA", "PHOTOS")}
    env.update(
        PATH=f"{fake_bin}{os.pathsep}{env.get('PATH', '')}",
        FACEMARK_CMD=f"{sys.executable} -m facemark",
        PYTHON=sys.executable,
        DEVICE="cpu",
        SAMPLE_GPU_MEM="1",
        EPOCHS="1",
        WORKERS="0",
        NAME="check",
        TRAIN_ARGS="--batch-size 8 --img-size 64",
        EVAL_ARGS="--no-timing",
        TMPDIR=str(tmp_path),
    )
    env.update(extra)
    return env


def _run(env: dict[str, str], dest: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BASH, str(SCRIPT), str(dest)], env=env, capture_output=True, text=True, timeout=300
    )


def test_gpu_check_runs_every_step_and_writes_the_summary(tmp_path: Path) -> None:
    root = install_synthetic_dataset(tmp_path / "dataset", n_train=24, n_test=6, size=96)
    photos = tmp_path / "photos"
    photos.mkdir()
    for jpg in sorted((root / "test").glob("*.jpg"))[:3]:
        shutil.copy(jpg, photos / jpg.name)
    dest = tmp_path / "results"
    proc = _run(_env(tmp_path, DATA=str(root), PHOTOS=str(photos)), dest)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    summary = json.loads((dest / "gpu_check.json").read_text())
    steps = {s["step"]: s for s in summary["steps"]}
    assert list(steps) == STEPS
    for step in steps.values():
        assert step["status"] == "ok"
        assert step["seconds"] > 0
        assert step["smi_peak_mb"] == 1500  # the fake's peak, sampled during every step
        assert step["torch_peak_mb"] is None  # CPU: no CUDA allocator peak
    train = steps["train"]["details"]
    assert train["epochs_run"] == 1 and train["device"] == "cpu"
    assert 0 < train["best_val_nme_io"] < 10
    for name in ("evaluate-run", "evaluate-default"):
        assert 0 < steps[name]["details"]["nme_io"] < 10
    assert steps["evaluate-default"]["details"]["model"] == "default"
    assert steps["annotate"]["details"]["images"] == 3
    assert isinstance(steps["annotate"]["details"]["faces"], int)
    assert summary["env"]["gpu"] == "Fake GPU, 0.0, 2048 MiB"
    assert summary["total_seconds"] == pytest.approx(sum(s["seconds"] for s in steps.values()))

    markdown = (dest / "gpu_check.md").read_text()
    assert "| step | seconds | peak MB (torch) | peak MB (nvidia-smi) | result |" in markdown
    for name in STEPS:
        row = next(line for line in markdown.splitlines() if line.startswith(f"| {name} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        float(cells[1])
        assert cells[3] == "1500" and cells[4] != "-"
    assert "| total |" in markdown and markdown in proc.stdout
    for name in ("steps.log", "metrics.jsonl", "env.json", "nvidia-smi.txt"):
        assert (dest / name).is_file(), name
    assert "training summary" in (dest / "steps.log").read_text()


def test_gpu_check_records_failed_and_skipped_steps_and_carries_on(tmp_path: Path) -> None:
    dest = tmp_path / "results"
    env = _env(tmp_path, DATA=str(tmp_path / "no-such-data"), PHOTOS=str(tmp_path / "none"))
    proc = _run(env, dest)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    steps = {s["step"]: s for s in json.loads((dest / "gpu_check.json").read_text())["steps"]}
    assert list(steps) == STEPS
    assert steps["train"]["status"].startswith("failed")
    assert steps["evaluate-run"]["status"] == steps["annotate"]["status"] == "skipped"
    assert steps["evaluate-default"]["status"].startswith("failed")  # ran despite the others
    assert "FAILED" in proc.stdout


def test_gpu_check_says_in_one_line_when_facemark_is_missing(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}  # no facemark, no FACEMARK_CMD
    proc = _run(env, tmp_path / "results")
    assert proc.returncode == 127
    assert proc.stderr.count("\n") == 1 and "'facemark' is not on PATH" in proc.stderr
    assert not (tmp_path / "results").exists()


# --- train's peak GPU memory record (what the script's "peak MB (torch)" column reads) ---


def test_peak_gpu_mem_is_none_off_cuda_and_mib_on_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from facemark import train

    assert train.peak_gpu_mem_mb(torch.device("cpu")) is None
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 3 * 2**20 + 2**19)
    assert train.peak_gpu_mem_mb(torch.device("cuda", 0)) == 3.5


def test_train_records_the_peak_per_epoch_and_in_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from rich.console import Console

    from facemark import train
    from facemark.train import loop

    root = install_synthetic_dataset(tmp_path / "dataset", n_train=24, n_test=6, size=96)
    monkeypatch.setattr(loop, "peak_gpu_mem_mb", lambda device: 42.0)  # as if on CUDA
    cfg = tiny_train_config(root, "peak")
    out = io.StringIO()
    result = train.train(cfg, console=Console(file=out, width=200))
    rows = [
        json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["peak_gpu_mem_mb"] for r in rows] == [42.0]
    assert "peak GPU memory" in out.getvalue() and "42 MiB" in out.getvalue()
