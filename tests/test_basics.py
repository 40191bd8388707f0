import numpy as np
import pytest
from typer.testing import CliRunner

from facemark import __version__, metrics
from facemark.cli import app
from facemark.files import atomic_write, sha256_file
from facemark.shape import MEAN_SHAPE


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_perfect_prediction_scores_zero() -> None:
    gt = (MEAN_SHAPE * 40 + 100)[None].repeat(3, 0)
    s = metrics.summarize(gt, gt)
    assert s["nme_io"] == 0.0 and s["fr_10"] == 0.0 and s["auc_10"] == pytest.approx(1.0, abs=1e-3)


def test_known_offset_gives_known_nme() -> None:
    gt = np.zeros((2, 68, 2))
    gt[:, 36] = [0, 0]
    gt[:, 45] = [100, 0]
    pred = gt.copy()
    pred[0] += [3, 4]  # every point 5 px off over a 100 px interocular distance
    pred[1] += [12, 0]  # 12% off: a failure at 0.10 and at 0.08
    nme = metrics.nme_io(pred, gt)
    assert nme == pytest.approx([0.05, 0.12])
    assert metrics.failure_rate(nme, 0.10) == 0.5
    # CED: 0 below 0.05, 0.5 from 0.05 to 0.10 -> area 0.5 * 0.05 / 0.10 = 0.25
    assert metrics.auc(nme, 0.10) == pytest.approx(0.25, abs=2e-3)
    assert metrics.region_nme(pred, gt)["jaw"] == pytest.approx((0.05 + 0.12) / 2)


def test_atomic_write_leaves_nothing_on_error(tmp_path) -> None:
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as fh:
            fh.write(b"half")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]
    assert len(sha256_file(target)) == 64


def test_export_checkpoint_is_small_and_loads(tmp_path) -> None:
    import torch

    from facemark.checkpoint import export_checkpoint, load_checkpoint, save_checkpoint

    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8))
    src = save_checkpoint(
        tmp_path / "full.pt",
        {
            "task": "landmarks",
            "arch": "x",
            "arch_kwargs": {},
            "state_dict": net.state_dict(),
            "optimizer": {"big": torch.zeros(1000)},
            "metrics": {"nme_io": 0.05},
        },
    )
    out = load_checkpoint(export_checkpoint(src, tmp_path / "small.pt"), task="landmarks")
    assert "optimizer" not in out and out["metrics"] == {"nme_io": 0.05}
    assert out["state_dict"]["0.weight"].dtype == torch.float16
    assert out["state_dict"]["1.num_batches_tracked"].dtype == torch.int64
    fresh = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8))
    fresh.load_state_dict(out["state_dict"])
    assert torch.allclose(fresh[0].weight, net[0].weight, atol=1e-3)
    assert fresh[0].weight.dtype == torch.float32


def test_a_checkpoint_whose_weights_do_not_fit_says_which(tiny_landmark_checkpoint) -> None:
    """The error used to end mid-sentence ("Error(s) in loading state_dict for HeatmapNet:")."""
    import torch

    from facemark import checkpoint
    from facemark.errors import CheckpointError, first_line
    from facemark.landmarker import Landmarker

    data = checkpoint.load_checkpoint(tiny_landmark_checkpoint)
    data["state_dict"]["head.weight"] = torch.zeros(3, 3, 1, 1)
    with pytest.raises(CheckpointError) as caught:
        Landmarker.from_checkpoint(data)
    message = str(caught.value)
    assert "size mismatch for head.weight" in message and "\n" not in message
    assert first_line(ValueError("")) == "ValueError"
