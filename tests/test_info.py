"""facemark info: folders, dataset state, bundled models, torch and CUDA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from facemark import download, paths
from facemark.cli import app
from synthetic import make_dataset_zip


def info_json() -> dict:
    result = CliRunner().invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_info_before_install(facemark_home: Path) -> None:
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "not installed" in result.stdout and "fetch-data" in result.stdout
    assert torch.__version__ in result.stdout
    report = info_json()
    assert report["dataset"] is None
    assert report["data_dir"] == str(facemark_home / "data")
    assert report["cache_dir"] == str(facemark_home / "cache")
    assert report["runs_dir"] == str(paths.runs_dir())
    assert report["torch"] == torch.__version__
    assert report["cuda_available"] == torch.cuda.is_available()
    assert report["cpu_threads"] == torch.get_num_threads()


def test_info_after_install_and_when_damaged(tmp_path: Path) -> None:
    archive = make_dataset_zip(tmp_path / "a.zip", n_train=8, n_test=3, size=48)
    assert CliRunner().invoke(app, ["fetch-data", "--zip", str(archive)]).exit_code == 0
    report = info_json()
    assert report["dataset"]["intact"] is True
    assert report["dataset"]["counts"] == {"train": 8, "test_labeled": 3, "test_unlabeled": 0}
    result = CliRunner().invoke(app, ["info"])
    assert "8 training frames" in result.stdout and "3 labeled test" in result.stdout
    (paths.dataset_dir() / download.TRAIN_CSV).write_text("edited\n")
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 0 and "damaged" in result.stdout and "--force" in result.stdout


def test_info_lists_bundled_models(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "landmarks.pt").write_bytes(b"x")
    (weights / "yunet_n.pt").write_bytes(b"x")
    (weights / "notes.txt").write_text("not a model")
    monkeypatch.setattr(paths, "bundled_weights_dir", lambda: weights)
    # the names --model and --detector take, not file names
    assert info_json()["bundled_models"] == [
        "--model default",
        "--detector default / yunet / yunet_n",
    ]
    monkeypatch.setattr(paths, "bundled_weights_dir", lambda: tmp_path / "absent")
    assert info_json()["bundled_models"] == []
