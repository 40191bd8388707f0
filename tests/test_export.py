"""export: TorchScript and ONNX files of landmark models and detectors, checked against torch.

TorchScript is always tested; the ONNX tests need ``onnx`` and ``onnxruntime`` (the
``export`` extra) and are skipped without them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from facemark import checkpoint, export, models
from facemark.cli import app
from facemark.detection import build_detector
from facemark.errors import CheckpointError, FacemarkError, UsageError
from facemark.export import options as export_options
from facemark.hub import load_detector
from facemark.landmarker import Landmarker

SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}


def _need(fmt: str) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnx", reason="ONNX export needs the export extra (onnx)")
        pytest.importorskip("onnxruntime", reason="the ONNX check needs onnxruntime")


FORMATS = ["torchscript", "onnx"]


def _run(path: Path, fmt: str, x: torch.Tensor) -> list[np.ndarray]:
    return export.runner(path, fmt)(x.numpy())


def _landmarks_torch(ckpt: Path | dict, x: torch.Tensor) -> list[np.ndarray]:
    lm = Landmarker.from_checkpoint(ckpt)
    with torch.inference_mode():
        return [o.numpy() for o in lm.model.decode(lm.model(x))]


# --------------------------------------------------------------------------- landmark models


@pytest.mark.parametrize("fmt", FORMATS)
def test_landmark_export_matches_torch_at_any_batch(
    fmt: str, tiny_landmark_checkpoint: Path, tmp_path: Path
) -> None:
    _need(fmt)
    out = tmp_path / f"face68{SUFFIX[fmt]}"
    result = export.export_model(tiny_landmark_checkpoint, fmt, out, timing=False)
    assert result.path == out and out.is_file() and result.size == out.stat().st_size
    assert result.task == "landmarks" and result.output_names == ("keypoints", "confidence")
    assert result.ok and result.max_abs_diff is not None and result.max_abs_diff < 1e-4
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temporary left

    size = Landmarker.from_checkpoint(tiny_landmark_checkpoint).img_size
    for batch in (1, 3):  # dynamic batch
        x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(batch))
        got, want = _run(out, fmt, x), _landmarks_torch(tiny_landmark_checkpoint, x)
        assert [g.shape for g in got] == [(batch, 68, 2), (batch, 68)]
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, atol=1e-4)

    meta = export.read_metadata(out)
    data = checkpoint.load_checkpoint(tiny_landmark_checkpoint)
    assert meta["task"] == "landmarks" and meta["arch"] == data["arch"] == "heatmap"
    assert meta["format"] == fmt and meta["img_size"] == str(size)
    assert meta["input_size"] == f"{size}x{size}" and meta["decoded"] == "true"
    assert json.loads(meta["arch_kwargs"]) == dict(data["arch_kwargs"])
    from facemark import __version__

    assert meta["facemark_version"] == __version__


# what a deployer runs: torch itself calls its own loader deprecated, which is not ours to fix
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_metadata_is_an_extra_file(
    tiny_landmark_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "m.pt"
    export.export_model(tiny_landmark_checkpoint, "torchscript", out, check=False)
    extra = {export.METADATA_FILE: ""}
    torch.jit.load(str(out), _extra_files=extra)
    assert json.loads(extra[export.METADATA_FILE])["task"] == "landmarks"


def test_onnx_metadata_props_and_dynamic_batch(
    tiny_landmark_checkpoint: Path, tmp_path: Path
) -> None:
    onnx = pytest.importorskip("onnx", reason="ONNX export needs the export extra (onnx)")
    out = tmp_path / "m.onnx"
    export.export_model(tiny_landmark_checkpoint, "onnx", out, check=False)
    proto = onnx.load(str(out))
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["task"] == "landmarks" and props["opset"] == str(export.DEFAULT_OPSET)
    (graph_input,) = proto.graph.input
    assert graph_input.name == export.INPUT_NAME
    dims = graph_input.type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [3, 64, 64]
    assert [o.name for o in proto.graph.output] == ["keypoints", "confidence"]
    # fixed sizes, not the exporter's "Subkeypoints_dim_1"
    shapes = [[d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
              for o in proto.graph.output]  # fmt: skip
    assert shapes == [["batch", 68, 2], ["batch", 68]]


@pytest.mark.parametrize(
    ("arch", "kwargs"),
    [
        ("heatmap", {"img_size": 64}),
        ("integral", {"img_size": 64}),
        ("regression", {"img_size": 64}),
        ("udacity", {"img_size": 96}),
    ],
)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_landmark_arch_exports(fmt: str, arch: str, kwargs: dict, tmp_path: Path) -> None:
    _need(fmt)
    torch.manual_seed(0)
    net = models.build_landmark_model(arch, **kwargs)
    path = checkpoint.save_checkpoint(
        tmp_path / f"{arch}.pt",
        {
            "task": "landmarks",
            "arch": arch,
            "arch_kwargs": kwargs,
            "img_size": kwargs["img_size"],
            "state_dict": net.state_dict(),
        },
    )
    result = export.export_model(path, fmt, tmp_path / f"{arch}-out{SUFFIX[fmt]}", timing=False)
    assert result.arch == arch and result.ok, result.diffs
    assert result.max_abs_diff < 1e-3  # keypoints in pixels: float32 rounding only


def test_raw_landmark_outputs(tiny_landmark_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "raw.pt"
    result = export.export_model(
        tiny_landmark_checkpoint, "torchscript", out, raw=True, timing=False
    )
    assert result.output_names == ("outputs",) and result.metadata["decoded"] == "false"
    lm = Landmarker.from_checkpoint(tiny_landmark_checkpoint)
    x = torch.rand(2, 3, lm.img_size, lm.img_size)
    with torch.inference_mode():
        want = lm.model(x).numpy()
    (got,) = _run(out, "torchscript", x)
    np.testing.assert_allclose(got, want, atol=1e-4)


# --------------------------------------------------------------------------- detectors


@pytest.mark.parametrize("fmt", FORMATS)
def test_yunet_export_matches_torch_at_any_batch_and_size(fmt: str, tmp_path: Path) -> None:
    _need(fmt)
    out = tmp_path / f"yunet_s{SUFFIX[fmt]}"
    result = export.export_model("yunet_s", fmt, out, timing=False)
    assert result.task == "detector" and result.arch == "yunet" and result.ok
    det = load_detector("yunet_s")
    for shape in [(1, 3, 160, 224), (3, 3, 96, 64)]:  # dynamic batch, height and width
        x = torch.rand(*shape, generator=torch.Generator().manual_seed(shape[0]))
        with torch.inference_mode():
            want = [o.numpy() for o in det.net(x)]
        got = _run(out, fmt, x)
        assert len(got) == 12
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, atol=1e-4)
    meta = export.read_metadata(out)
    assert meta["task"] == "detector" and meta["variant"] == "s"
    assert float(meta["score_threshold"]) == det.score_threshold
    assert meta["outputs"].split(",")[0] == "cls_8" and meta["strides"] == "8,16,32"
    box_map = json.loads(meta["box_map"])
    assert (box_map is None) == (det.box_map is None)
    if box_map is not None:
        np.testing.assert_allclose(np.array(box_map), det.box_map)


def test_yunet_n_metadata_has_its_box_map(tmp_path: Path) -> None:
    out = tmp_path / "yunet.pt"
    export.export_model("yunet", "torchscript", out, check=False)
    det = load_detector("yunet")
    assert det.box_map is not None
    box_map = np.array(json.loads(export.read_metadata(out)["box_map"]))
    np.testing.assert_allclose(box_map, det.box_map)


def test_facemark_detector_exports(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = build_detector("facedet")
    path = checkpoint.save_checkpoint(
        tmp_path / "det.pt",
        {
            "task": "detector",
            "arch": "facedet",
            "arch_kwargs": {},
            "img_size": 128,
            "state_dict": net.state_dict(),
        },
    )
    out = tmp_path / "det.ts"
    result = export.export_model(path, "torchscript", out, timing=False)
    assert result.arch == "facedet" and result.output_names == ("heat", "box") and result.ok
    x = torch.rand(2, 3, 96, 160)
    got = _run(out, "torchscript", x)
    assert got[0].shape == (2, 1, 12, 20) and got[1].shape == (2, 4, 12, 20)


def test_the_task_comes_from_the_name_or_the_checkpoint(tiny_landmark_checkpoint: Path) -> None:
    assert export.resolve("default")[1]["task"] == "landmarks"
    assert export.resolve("yunet_s")[1]["arch"] == "yunet"
    assert export.resolve("facemark")[1]["task"] == "detector"
    assert export.resolve("default", "detector")[1]["arch"] == "yunet"
    assert export.resolve(tiny_landmark_checkpoint)[1]["task"] == "landmarks"
    with pytest.raises(CheckpointError, match="holds a detector model, not a landmarks model"):
        export.resolve("yunet_s", "landmarks")
    with pytest.raises(UsageError, match="--task must be one of landmarks, detector"):
        export.resolve("default", "faces")
    with pytest.raises(CheckpointError, match="not a detector model"):
        export.resolve(tiny_landmark_checkpoint, "detector")


def test_dynamo_exporter(tiny_landmark_checkpoint: Path, tmp_path: Path) -> None:
    _need("onnx")
    pytest.importorskip("onnxscript", reason="the dynamo ONNX exporter needs onnxscript")
    out = tmp_path / "dynamo.onnx"
    result = export.export_model(tiny_landmark_checkpoint, "onnx", out, dynamo=True, timing=False)
    assert result.ok and result.max_abs_diff < 1e-4
    assert export.read_metadata(out)["task"] == "landmarks"


# --------------------------------------------------------------------------- the CLI


def test_cli_exports_and_prints_the_parity_table(
    tiny_landmark_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "face68.pt"
    args = ["export", str(tiny_landmark_checkpoint), "--format", "torchscript", "--out", str(out)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert out.is_file()
    for text in ("max abs diff", "ms/face b1", "ms/face b32", "torchscript", "keypoints"):
        assert text in result.stdout


def test_cli_onnx_detector(tmp_path: Path) -> None:
    _need("onnx")
    out = tmp_path / "yunet.onnx"
    args = ["export", "yunet_s", "-f", "onnx", "-o", str(out), "--threads", "1"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "ms/image b1" in result.stdout and out.is_file()


def test_cli_help() -> None:
    result = CliRunner().invoke(app, ["export", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "<bool>" not in result.output
    assert "--format" in result.output and f"default: {export.DEFAULT_OPSET}" in result.output


def _one_line_error(args: list[str], code: int) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_bad_inputs_are_one_line(tmp_path: Path) -> None:
    out = str(tmp_path / "m.onnx")
    line = _one_line_error(["export", "default", "--format", "tflite", "--out", out], 2)
    assert "unknown --format 'tflite'" in line and "onnx, torchscript" in line
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    out_pt = str(tmp_path / "m.pt")
    line = _one_line_error(["export", str(junk), "--format", "torchscript", "--out", out_pt], 1)
    assert "not a facemark checkpoint" in line
    photo = tmp_path / "ok.jpg"
    photo.write_bytes(b"a photo")
    line = _one_line_error(["export", "default", "-f", "onnx", "-o", str(photo), "--no-check"], 2)
    assert "does not end in .onnx" in line and photo.read_bytes() == b"a photo"
    taken = tmp_path / "taken.onnx"
    taken.write_bytes(b"an earlier export")
    line = _one_line_error(["export", "default", "-f", "onnx", "-o", str(taken)], 2)
    assert "exists; pass --force" in line and taken.read_bytes() == b"an earlier export"
    line = _one_line_error(["export", "default", "-f", "torchscript", "-o", str(tmp_path)], 2)
    assert "is a folder" in line
    line = _one_line_error(["export", "nosuchmodel", "-f", "torchscript", "-o", out_pt], 2)
    assert "unknown landmarks model 'nosuchmodel'" in line
    line = _one_line_error(["export", "default", "-f", "onnx", "-o", out, "--opset", "99"], 2)
    assert "--opset must be between 17 and" in line


def test_force_replaces_and_a_missing_folder_is_made(
    tiny_landmark_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "new" / "folder" / "m.pt"
    args = ["export", str(tiny_landmark_checkpoint), "-f", "torchscript", "-o", str(out)]
    result = CliRunner().invoke(app, [*args, "--no-check"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] == b"PK\x03\x04"  # a TorchScript archive
    out.write_bytes(b"stale")
    assert CliRunner().invoke(app, [*args, "--no-check"]).exit_code == 2
    result = CliRunner().invoke(app, [*args, "--no-check", "--force"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] == b"PK\x03\x04"


def test_onnx_without_the_extra_names_the_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(export_options, "_installed", lambda module: False)
    line = _one_line_error(["export", "default", "-f", "onnx", "-o", str(tmp_path / "m")], 1)
    assert "pip install 'facemark[export]'" in line and "onnx and onnxruntime" in line
    with pytest.raises(FacemarkError, match=r"facemark\[export\]"):
        export.export_model("default", "onnx", tmp_path / "m.onnx", check=False)
    assert not (tmp_path / "m.onnx").exists()
