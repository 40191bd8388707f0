"""hub: model specs (bundled, run, path, URL), the download cache, listing models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from facemark import checkpoint, devices, hub, paths
from facemark.cli import app
from facemark.download import downloader
from facemark.errors import CheckpointError, DataError, NetworkError, UsageError
from facemark.files import sha256_file


def fake_checkpoint(path: Path, task: str = "landmarks", **extra) -> Path:
    """A valid checkpoint header with a tiny state dict: enough to resolve, cache and list."""
    payload = {"task": task, "arch": "tiny", "arch_kwargs": {}, "state_dict": {"w": torch.zeros(3)}}
    payload.update(extra)
    return checkpoint.save_checkpoint(path, payload)


@pytest.fixture
def bundled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setattr(paths, "bundled_weights_dir", lambda: folder)
    return folder


@pytest.fixture
def fast_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(downloader, "DEFAULT_RETRIES", 1)
    monkeypatch.setattr(downloader, "DEFAULT_BACKOFF", 0.0)


def cache_files() -> list[str]:
    folder = paths.models_cache_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# --------------------------------------------------------------------------- local specs


def test_default_and_bundled_names(bundled: Path) -> None:
    with pytest.raises(UsageError, match="bundled landmarks model is not installed"):
        hub.resolve_model("default", "landmarks")
    fake_checkpoint(bundled / "landmarks.pt")
    fake_checkpoint(bundled / "detector.pt", task="detector")
    fake_checkpoint(bundled / "yunet_n.pt", task="detector")
    fake_checkpoint(bundled / "landmarks-small.pt")
    assert hub.resolve_model("default", "landmarks") == bundled / "landmarks.pt"
    assert hub.resolve_model("default", "detector") == bundled / "yunet_n.pt"
    assert hub.resolve_model("facemark", "detector") == bundled / "detector.pt"
    assert hub.resolve_model("landmarks-small", "landmarks") == bundled / "landmarks-small.pt"


def test_runs_paths_and_unknown_specs(bundled: Path, tmp_path: Path, monkeypatch) -> None:
    run = paths.runs_dir() / "my-run"
    fake_checkpoint(run / "best.pt", metrics={"nme_io": 0.05})
    fake_checkpoint(paths.runs_dir() / "det-run" / "best.pt", task="detector")
    (paths.runs_dir() / "unfinished").mkdir()
    assert hub.resolve_model("my-run") == run / "best.pt"
    assert hub.resolve_model("det-run", "detector") == paths.runs_dir() / "det-run" / "best.pt"
    assert hub.resolve_model(str(run / "best.pt")) == run / "best.pt"
    assert hub.resolve_model(run) == run / "best.pt"  # a run folder (PathLike) works too
    monkeypatch.chdir(tmp_path)
    fake_checkpoint(tmp_path / "mine.pt")
    assert hub.resolve_model("mine.pt") == Path("mine.pt")
    with pytest.raises(UsageError, match="no best.pt yet"):
        hub.resolve_model("unfinished")
    with pytest.raises(UsageError, match="checkpoint not found: nothere/x.pt"):
        hub.resolve_model("nothere/x.pt")
    with pytest.raises(UsageError) as err:
        hub.resolve_model("typo")
    assert "unknown landmarks model 'typo'" in str(err.value) and "my-run" in str(err.value)
    assert "det-run" not in str(err.value)  # only models of the asked task are offered
    assert "\n" not in str(err.value)


def test_load_model_checks_the_task(bundled: Path) -> None:
    fake_checkpoint(bundled / "landmarks.pt", task="detector")
    with pytest.raises(CheckpointError, match="detector model, not a landmarks model"):
        checkpoint.load_checkpoint(hub.resolve_model("default"), task="landmarks")
    from facemark.landmarker import Landmarker

    sentinel = Landmarker(torch.nn.Identity(), 64)
    assert hub.load_model(sentinel) is sentinel  # loaded models pass straight through
    duck = type("Loaded", (), {"predict": lambda *a: None})()
    with pytest.raises(UsageError):  # only Landmarkers do: no duck typing
        hub.load_model(duck)


def test_resolve_device() -> None:
    assert devices.resolve_device("cpu") == "cpu"
    assert devices.resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(UsageError, match="unknown device"):
        devices.resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA GPU"):
            devices.resolve_device("cuda")


# --------------------------------------------------------------------------- URLs


def test_url_downloaded_once_verified_and_cached(http_server, tmp_path: Path) -> None:
    data = fake_checkpoint(tmp_path / "model.pt").read_bytes()
    http_server.files["/models/model.pt"] = data
    digest = sha256_file(tmp_path / "model.pt")
    spec = http_server.url("/models/model.pt") + f"#sha256={digest}"
    first = hub.resolve_model(spec)
    assert first.read_bytes() == data and first.parent == paths.models_cache_dir()
    assert first.name.endswith("-model.pt")
    assert hub.resolve_model(spec) == first
    assert len(http_server.requests) == 1  # the second use is served from the cache
    # the same URL without a pinned hash still uses (and re-verifies) the cached copy
    assert hub.resolve_model(http_server.url("/models/model.pt")) == first
    assert len(http_server.requests) == 1
    assert cache_files() == [first.name, first.name + ".json"]


def test_corrupt_cached_file_is_fetched_again(http_server, tmp_path: Path) -> None:
    data = fake_checkpoint(tmp_path / "model.pt").read_bytes()
    http_server.files["/m.pt"] = data
    url = http_server.url("/m.pt")
    cached = hub.resolve_model(url)
    cached.write_bytes(data[:100])  # bit rot, or a partial copy by another tool
    assert hub.resolve_model(url).read_bytes() == data
    assert len(http_server.requests) == 2


@pytest.mark.usefixtures("fast_network")
def test_failed_downloads_leave_the_cache_clean(http_server, tmp_path: Path) -> None:
    data = fake_checkpoint(tmp_path / "model.pt").read_bytes()
    http_server.files["/m.pt"] = data
    http_server.files["/page.pt"] = b"<html>Sign in to download</html>"
    with pytest.raises(DataError, match="sha256"):
        hub.resolve_model(http_server.url("/m.pt") + "#sha256=" + "0" * 64)
    assert cache_files() == []
    with pytest.raises(NetworkError):
        hub.resolve_model(http_server.url("/missing.pt"))
    assert cache_files() == []
    http_server.cut_next = 2  # both attempts stop half-way
    with pytest.raises(NetworkError):
        hub.resolve_model(http_server.url("/m.pt"))
    assert cache_files() == []
    assert http_server.cut_next == 0
    with pytest.raises(CheckpointError, match="did not deliver a facemark checkpoint"):
        hub.resolve_model(http_server.url("/page.pt"))
    assert cache_files() == []


def test_url_spec_validation() -> None:
    with pytest.raises(UsageError, match="refusing plain http"):
        hub.parse_url_spec("http://example.com/m.pt")
    assert hub.parse_url_spec("http://example.com/m.pt#sha256=" + "A" * 64)[1] == "a" * 64
    with pytest.raises(UsageError, match="sha256"):
        hub.parse_url_spec("https://example.com/m.pt#md5=abc")
    with pytest.raises(UsageError, match="https"):
        hub.resolve_model("ftp://example.com/m.pt")
    url, expected = hub.parse_url_spec("https://example.com/m.pt")
    assert (url, expected) == ("https://example.com/m.pt", None)
    assert hub.cached_path(url) != hub.cached_path("https://example.org/m.pt")


# --------------------------------------------------------------------------- listing


def test_list_models_and_cli(bundled: Path) -> None:
    fake_checkpoint(bundled / "landmarks.pt", metrics={"nme_io": 0.041})
    fake_checkpoint(bundled / "detector.pt", task="detector", metrics={"miss_rate": 0.02})
    fake_checkpoint(paths.runs_dir() / "exp1" / "best.pt", metrics={"val_nme_io": 0.06}, epoch=3)
    (paths.runs_dir() / "broken").mkdir()
    (paths.runs_dir() / "broken" / "best.pt").write_bytes(b"half a checkpoint")
    entries = hub.list_models()
    damaged = [(e["name"], e["damaged"]) for e in entries if e["damaged"]]
    assert damaged == [("broken", "unreadable best.pt")]  # listed as damaged, not hidden
    entries = [e for e in entries if not e["damaged"]]
    summary = [(e["name"], e["task"], e["source"], e["metric"], e["value"]) for e in entries]
    assert summary == [
        ("facemark", "detector", "bundled", "miss_rate", 0.02),  # detector.pt: facemark's own
        ("default", "landmarks", "bundled", "nme_io", 0.041),
        ("exp1", "landmarks", "run", "nme_io", 0.06),
    ]
    runner = CliRunner()
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    listed = [e["name"] for e in json.loads(result.output)]
    assert listed == ["facemark", "default", "broken", "exp1"]
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0 and "exp1" in result.output and "0.0410" in result.output


def test_load_real_tiny_models_by_path_and_run_name(
    tiny_landmark_checkpoint: Path, tiny_detector_checkpoint: Path
) -> None:
    import shutil

    import numpy as np

    import facemark

    shutil.copytree(tiny_detector_checkpoint.parent, paths.runs_dir() / "det")
    from facemark.detectors.facemark import FacemarkDetector

    detector = facemark.load_detector("det", config=facemark.DetectorConfig(threshold=0.0))
    landmarker = facemark.load_model(str(tiny_landmark_checkpoint))
    assert isinstance(detector, facemark.Detector) and isinstance(detector, FacemarkDetector)
    assert isinstance(landmarker, facemark.Landmarker)
    image = np.full((96, 128, 3), 120, np.uint8)
    boxes = detector.detect(image).boxes
    kps, conf = landmarker.predict(image, np.array([[30.0, 20, 90, 80]]))
    assert boxes.shape[1:] == (4,) and kps.shape == (1, 68, 2) and conf.shape == (1, 68)
    with pytest.raises(CheckpointError):
        facemark.load_model("det")  # a detector run is not a landmark model


def test_checkpoints_record_when_they_were_made(tmp_path, tiny_landmark_checkpoint) -> None:
    """`facemark models` showed the install time as a bundled model's date."""
    from facemark import checkpoint, hub

    made = checkpoint.load_checkpoint(tiny_landmark_checkpoint)["created"]
    copy = checkpoint.export_checkpoint(tiny_landmark_checkpoint, tmp_path / "copy.pt")
    assert checkpoint.load_checkpoint(copy)["created"] == made  # a copy keeps the original's
    for entry in hub.list_models():
        if entry["source"] == "bundled":
            payload = checkpoint.load_checkpoint(entry["path"])
            assert entry["date"] == str(payload.get("created") or "")
