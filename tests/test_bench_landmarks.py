"""benchmarks/bench_landmarks.py: every inference variant timed and scored, in quick mode, on a
tiny randomly initialised checkpoint and a synthetic dataset."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import bench_landmarks  # noqa: E402

from facemark import checkpoint, models  # noqa: E402

NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?(e[+-]?\d+)?$")


def tiny_checkpoint(path: Path) -> Path:
    """A small heatmap network, random weights (BatchNorm statistics too), 64 px crops."""
    kwargs = {"img_size": 64, "widths": (8, 16, 16, 24, 32), "neck": 16}
    torch.manual_seed(0)
    model = models.build_landmark_model("heatmap", **kwargs)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    payload = {
        "task": "landmarks",
        "arch": "heatmap",
        "arch_kwargs": kwargs,
        "img_size": 64,
        "state_dict": model.state_dict(),
        "run_name": "tiny-random",
    }
    return checkpoint.save_checkpoint(path, payload)


@pytest.mark.slow
def test_quick_mode_reports_every_variant(tmp_path):
    from synthetic import install_synthetic_dataset

    install_synthetic_dataset(n_train=24, n_test=6, size=96)
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    out_md, out_json = tmp_path / "speed.md", tmp_path / "speed.json"
    threads = torch.get_num_threads()
    try:
        code = bench_landmarks.main(
            ["--model", str(ckpt), "--quick", "--threads", "1"]
            + ["--out", str(out_md), "--out-json", str(out_json)]
        )
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    md = out_md.read_text()
    assert "torch threads" in md and "Machine:" in md
    onnx = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))
    rows = {}
    for line in md.splitlines():
        key = line.split(":", 1)[0].lstrip("| ").strip()
        if line.startswith("| ") and key in bench_landmarks.VARIANTS:
            rows[key] = [c.strip() for c in line.strip("|").split("|")]
    assert list(rows) == list(bench_landmarks.VARIANTS)
    for key, cells in rows.items():
        if key == "onnxruntime" and not onnx:
            assert "skipped: onnx / onnxruntime not installed" in cells[-1]
            continue
        assert all(NUMBER.match(c) for c in cells[1:6]), (key, cells)  # ms b1/b32, NME, FR, diff
    record = json.loads(out_json.read_text())
    by_key = {v["key"]: v for v in record["variants"]}
    assert by_key["eager"]["max_diff_px"] == 0
    assert by_key["channels_last"]["max_diff_px"] < 1e-3
    assert by_key["torchscript"]["max_diff_px"] < 1e-3
    assert by_key["int8_dynamic"]["max_diff_px"] == 0  # no nn.Linear: nothing to quantise
    assert "changes nothing" in by_key["int8_dynamic"]["note"]
    assert record["val"]["faces"] > 0 and record["settings"]["calibration_crops"] > 0
    assert record["environment"]["torch_threads"] == 1
