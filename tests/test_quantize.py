"""quantize: int8 landmark models (FX, x86), saved as checkpoints that every command loads.

Tiny random networks and the synthetic dataset for the plumbing; the bundled ``default-int8``
for a real model on a face crop.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import facemark
from facemark import checkpoint, export, hub, models, paths, quantize
from facemark.cli import app
from facemark.errors import CheckpointError, UsageError
from facemark.files import sha256_file
from facemark.landmarker import Landmarker

if quantize.unavailable():
    pytest.skip(f"no int8 here: {quantize.unavailable()}", allow_module_level=True)

SIZE = 64
KWARGS = {
    "heatmap": {"img_size": SIZE, "widths": (8, 16, 16, 24, 32), "neck": 16},
    "integral": {"img_size": SIZE, "widths": (8, 16, 16, 24, 32), "neck": 16},
    "regression": {"img_size": SIZE, "widths": (8, 16, 16, 24, 32), "hidden": 32},
    "udacity": {"img_size": 96},
}


def tiny(arch: str = "heatmap") -> tuple[torch.nn.Module, dict]:
    """A small random network (BatchNorm statistics too) and its float checkpoint payload."""
    torch.manual_seed(0)
    model = models.build_landmark_model(arch, **KWARGS[arch])
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    if arch == "heatmap":  # a head that says something, so decoding has peaks to find
        torch.nn.init.normal_(model.head.weight, std=0.3)
    payload = {
        "task": "landmarks",
        "arch": arch,
        "arch_kwargs": KWARGS[arch],
        "img_size": KWARGS[arch]["img_size"],
        "state_dict": model.state_dict(),
        "run_name": f"tiny-{arch}",
    }
    return model.eval(), payload


def crops(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def int8_checkpoint(path: Path, arch: str = "heatmap") -> tuple[Path, torch.nn.Module]:
    """What export_int8 writes, made by hand from a tiny random network."""
    model, payload = tiny(arch)
    q = quantize.quantize_int8(model, crops(16))
    payload |= {
        "state_dict": q.state_dict(),
        "quantized": quantize.SCHEME,
        "quantized_parts": list(q.int8_parts),
    }
    return checkpoint.save_checkpoint(path, payload), q


def one_line_error(args: list[str], code: int) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("arch", ["heatmap", "integral", "regression"])
def test_calibrate_save_load_gives_identical_outputs(arch: str, tmp_path: Path) -> None:
    path, q = int8_checkpoint(tmp_path / "int8.pt", arch)
    assert q.int8_parts == (
        ("norm", "backbone", "neck") if arch != "regression" else ("norm", "backbone")
    )
    saved = checkpoint.load_checkpoint(path)["state_dict"]
    assert any(v.dtype == torch.qint8 for v in saved.values() if isinstance(v, torch.Tensor))
    x = crops(5, seed=1)
    # rebuild_int8 alone, from any float skeleton of the arch (no calibration data)
    skeleton, _ = tiny(arch)
    torch.nn.init.normal_(next(skeleton.parameters()))  # its weights do not matter
    rebuilt = quantize.rebuild_int8(skeleton, saved, q.int8_parts)
    with torch.inference_mode():
        assert torch.equal(rebuilt(x), q(x))
    # and the way every command loads it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lm = Landmarker.from_checkpoint(path)
        kps, conf = lm.predict_crops(x)
    assert not caught, [str(w.message)[:80] for w in caught]  # FX's warnings stay inside
    assert lm.info["quantized"] == quantize.SCHEME and lm.device.type == "cpu"
    calibrated = Landmarker(q, SIZE, "cpu")
    want_kps, want_conf = calibrated.predict_crops(x)
    assert np.array_equal(kps, want_kps) and np.array_equal(conf, want_conf)  # bit-identical
    assert kps.shape == (5, 68, 2) and conf.shape == (5, 68)
    assert np.isfinite(kps).all() and ((conf >= 0) & (conf <= 1)).all()


def test_int8_is_close_to_float_and_flip_works(tmp_path: Path) -> None:
    model, payload = tiny()
    path, _ = int8_checkpoint(tmp_path / "int8.pt")
    fl = Landmarker.from_checkpoint(
        {**payload, "format": checkpoint.FORMAT, "format_version": checkpoint.FORMAT_VERSION}
    )
    q = Landmarker.from_checkpoint(path)
    x = crops(4, seed=3)
    a, b = fl.predict_crops(x)[0], q.predict_crops(x)[0]
    assert np.abs(a - b).mean() < SIZE / 4  # same ballpark on a random network
    kps, conf = q.predict_crops(x, flip=True)
    assert kps.shape == (4, 68, 2) and np.isfinite(kps).all()
    # through the image path and the Python API too
    image = np.random.default_rng(0).integers(0, 256, (120, 100, 3), dtype=np.uint8)
    kps, conf = facemark.load_model(str(path)).predict(image, np.array([[20.0, 20, 80, 90]]))
    assert kps.shape == (1, 68, 2) and np.isfinite(kps).all()


# --------------------------------------------------------------------------- the command


@pytest.mark.slow
def test_export_int8_end_to_end(tiny_landmark_checkpoint: Path, tmp_path: Path) -> None:
    from synthetic import install_synthetic_dataset

    install_synthetic_dataset(n_train=24, n_test=6, size=96)
    out = tmp_path / "tiny-int8.pt"
    args = ["export", str(tiny_landmark_checkpoint), "-f", "int8", "-o", str(out)]
    result = CliRunner().invoke(
        app, [*args, "--calib", "8", "--threads", "1"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    for text in (
        "-> int8",
        "val NME_io (%)",
        "delta (points)",
        "ms/face b1",
        "ms/face b32",
        "8 train-split crops (seed 0)",
        "loaded back",
    ):
        assert text in result.stdout, text
    assert out.is_file() and not list(tmp_path.glob(".*.tmp"))  # renamed into place
    data = checkpoint.load_checkpoint(out, task="landmarks")
    assert data["quantized"] == quantize.SCHEME and data["calibration"]["crops"] == 8
    assert data["calibration"]["split"] == "train" and data["calibration"]["seed"] == 0
    assert (
        data["metrics"]["nme_io"] > 0
        and data["float_metrics"] == checkpoint.load_checkpoint(tiny_landmark_checkpoint)["metrics"]
    )
    assert data["source_sha256"] == sha256_file(tiny_landmark_checkpoint)
    # every command takes it as --model, with no extra flag
    result = CliRunner().invoke(
        app, ["evaluate", str(out), "--split", "test", "--no-timing", "--json"]
    )
    assert result.exit_code == 0, result.output
    (scored,) = json.loads(result.stdout)["models"]
    assert np.isfinite(scored["nme_io"])
    # the same seed and crops make the same file
    again = export.export_int8(
        tiny_landmark_checkpoint, tmp_path / "again.pt", calib=8, check=False
    )
    assert again.metrics == {} and sha256_file(again.path) != ""
    a = Landmarker.from_checkpoint(out).predict_crops(crops(2))[0]
    b = Landmarker.from_checkpoint(again.path).predict_crops(crops(2))[0]
    assert np.array_equal(a, b)


def test_bad_inputs_are_one_line(tmp_path: Path) -> None:
    out = str(tmp_path / "q.pt")
    line = one_line_error(["export", "yunet", "-f", "int8", "-o", out], 2)
    assert "int8 export is for landmark models" in line
    _, udacity = tiny("udacity")
    ud = checkpoint.save_checkpoint(tmp_path / "udacity.pt", udacity)
    line = one_line_error(["export", str(ud), "-f", "int8", "-o", out], 2)
    assert "cannot be quantised to int8" in line and "udacity" in line
    q, _ = int8_checkpoint(tmp_path / "int8.pt")
    line = one_line_error(["export", str(q), "-f", "int8", "-o", out], 2)
    assert "already an int8 model" in line
    line = one_line_error(["export", str(q), "-f", "onnx", "-o", str(tmp_path / "q.onnx")], 2)
    assert "is an int8 checkpoint" in line
    line = one_line_error(["export", "default", "-f", "torchscript", "-o", out, "--calib", "9"], 2)
    assert "are for --format int8" in line
    line = one_line_error(["export", "default", "-f", "int8", "-o", out, "--raw"], 2)
    assert "not for --format int8" in line
    assert not Path(out).exists()
    with pytest.raises(UsageError, match="runs on the CPU only: use --device cpu"):
        Landmarker.from_checkpoint(q, device="cuda")  # refused before touching CUDA
    data = checkpoint.load_checkpoint(q)
    with pytest.raises(CheckpointError, match="quantised as 'int4-magic'"):
        Landmarker.from_checkpoint({**data, "quantized": "int4-magic"})
    broken = dict(data["state_dict"])
    broken.pop(next(iter(broken)))
    with pytest.raises(CheckpointError, match="int8 weights do not load"):
        Landmarker.from_checkpoint({**data, "state_dict": broken})


def test_a_torch_without_fx_quantisation_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    q, _ = int8_checkpoint(tmp_path / "int8.pt")
    monkeypatch.setattr(quantize, "unavailable", lambda: "torch 9.0 has no FX quantisation")
    with pytest.raises(CheckpointError, match="needs FX quantisation: torch 9.0 has no FX"):
        Landmarker.from_checkpoint(q)
    from PIL import Image

    (tmp_path / "photos").mkdir()
    Image.new("RGB", (80, 60), (200, 180, 160)).save(tmp_path / "photos" / "plain.jpg")
    line = one_line_error(["annotate", str(tmp_path / "photos"), "--model", str(q)], 1)
    assert "is an int8 model, which needs FX quantisation" in line


# --------------------------------------------------------------------------- bundled


def test_bundled_default_int8_loads_lists_and_predicts() -> None:
    from synthetic import paint_face, random_keypoints

    weights = paths.bundled_weights_dir()
    card = json.loads((weights / "models.json").read_text())["landmarks-int8"]
    path = hub.resolve_model("default-int8", "landmarks")
    assert path == weights / card["file"] == weights / "landmarks-int8.pt"
    assert path.stat().st_size == card["bytes"] < 3 * 2**20
    assert sha256_file(path) == card["sha256"]
    assert card["from_sha256"] == sha256_file(weights / "landmarks.pt")  # made from today's
    # the float model's faceness head is not carried: the int8 graph gives it no features
    assert "faceness" not in checkpoint.load_checkpoint(path, task="landmarks")
    assert card["calibration"] == {"split": "train", "crops": 200, "seed": 0}
    assert abs(card["delta_nme_points"]) < quantize.NME_TOLERANCE
    listed = {e["name"]: e for e in hub.list_models()}
    assert listed["default-int8"]["task"] == "landmarks"
    assert listed["default-int8"]["value"] == pytest.approx(card["val"]["nme_io"])

    # a face crop painted from the mean shape: int8 and float agree on where the points go
    rng = np.random.default_rng(0)
    kps_true = random_keypoints(rng, 200)
    image = np.asarray(paint_face(kps_true, 200, rng))
    box = np.array([[*kps_true.min(0), *kps_true.max(0)]], dtype=np.float64)
    int8 = facemark.load_model("default-int8")
    kps, conf = int8.predict(image, box)
    want, _ = facemark.load_model("default").predict(image, box)
    assert kps.shape == (1, 68, 2) and np.isfinite(kps).all()
    assert ((conf >= 0) & (conf <= 1)).all()
    eye_dist = np.linalg.norm(kps_true[36] - kps_true[45])
    assert np.abs(kps - want).max() < 0.1 * eye_dist
