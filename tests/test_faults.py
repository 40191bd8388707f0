"""Regression tests for faults a new user ran into: one line on stderr, nothing half-written.

Offline and CPU only; HTTP goes to the local server of conftest.py.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import typer
from rich.console import Console
from typer.testing import CliRunner

from facemark import checkpoint, cli, download, hub, paths
from facemark import data as dataset
from facemark.cli import app
from facemark.cli import data as cli_data
from facemark.cli import models as cli_models
from facemark.download import disk, downloader, fetch
from facemark.errors import CheckpointError, FacemarkError, NetworkError
from facemark.shape import LABEL_ORIGIN
from synthetic import make_dataset_zip, paint_face, random_keypoints


def run_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """``facemark ARGS`` through the console-script entry point; returns its exit code."""
    monkeypatch.setattr(sys, "argv", ["facemark", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    return exit_info.value.code


def fake_checkpoint(path: Path, task: str = "landmarks") -> Path:
    payload = {"task": task, "arch": "tiny", "arch_kwargs": {}, "state_dict": {"w": torch.zeros(3)}}
    return checkpoint.save_checkpoint(path, payload)


@pytest.fixture
def fast_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(downloader, "DEFAULT_RETRIES", 1)
    monkeypatch.setattr(downloader, "DEFAULT_BACKOFF", 0.0)


@pytest.fixture(scope="module")
def small_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset_zip(tmp_path_factory.mktemp("zips") / "a.zip", n_train=6, n_test=2, size=48)


# --------------------------------------------------------------------------- 1. bare facemark


def test_bare_facemark_prints_help_and_exits_0(monkeypatch, capsys) -> None:
    assert run_main(monkeypatch) == 0
    out, err = capsys.readouterr()
    assert "Usage" in out and "fetch-data" in out
    assert "error" not in err


# --------------------------------------------------------------------------- 2. FACEMARK_DEBUG


def _raise_not_a_directory(**kwargs: object) -> None:
    raise NotADirectoryError(20, "Not a directory", "/etc/passwd/x")


def test_debug_shows_the_real_traceback(monkeypatch, capsys) -> None:
    monkeypatch.setattr(download, "fetch_dataset", _raise_not_a_directory)
    monkeypatch.setenv("FACEMARK_DEBUG", "1")
    monkeypatch.setattr(sys, "argv", ["facemark", "fetch-data"])
    with pytest.raises(NotADirectoryError):  # not an AttributeError from main's handlers
        cli.main()
    monkeypatch.delenv("FACEMARK_DEBUG")
    assert run_main(monkeypatch, "fetch-data") == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["error: Not a directory: /etc/passwd/x"]


def test_abort_is_one_line(monkeypatch, capsys) -> None:
    def abort(**kwargs: object) -> None:
        raise typer.Abort()

    monkeypatch.setattr(download, "fetch_dataset", abort)
    assert run_main(monkeypatch, "fetch-data") == 1
    assert capsys.readouterr().err.strip().splitlines() == ["error: aborted"]


# --------------------------------------------------------------------------- 3. damaged run


def test_models_lists_a_run_with_a_truncated_best_pt(monkeypatch, tmp_path: Path) -> None:
    run = paths.runs_dir() / "crashed"
    good = fake_checkpoint(tmp_path / "good.pt").read_bytes()
    run.mkdir(parents=True)
    (run / "best.pt").write_bytes(good[: len(good) // 2])
    (run / "config.json").write_text(json.dumps({"task": "landmarks"}))
    entry = next(e for e in hub.list_models() if e["name"] == "crashed")
    assert entry["source"] == "run" and entry["task"] == "landmarks"
    assert entry["arch"] is None and entry["value"] is None
    assert entry["damaged"] == "unreadable best.pt"

    table = io.StringIO()
    monkeypatch.setattr(cli_models, "console", Console(file=table, width=250))
    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    row = next(line for line in table.getvalue().splitlines() if "crashed" in line)
    assert "damaged: unreadable best.pt" in row and " run " in row
    result = CliRunner().invoke(app, ["models", "--json"])
    assert [e["damaged"] for e in json.loads(result.stdout) if e["name"] == "crashed"] == [
        "unreadable best.pt"
    ]

    path = hub.resolve_model("crashed")
    with pytest.raises(CheckpointError) as err:
        checkpoint.load_checkpoint(path)
    assert "\n" not in str(err.value) and "not a facemark checkpoint" in str(err.value)
    with pytest.raises(CheckpointError):
        hub.load_model("crashed")
    with pytest.raises(Exception, match="unknown landmarks model") as err:
        hub.resolve_model("no-such-run")
    assert "crashed" not in str(err.value)  # a damaged run is not offered as available


# --------------------------------------------------------------------------- 4. warnings


@pytest.mark.parametrize("kind", ["plain-dict-protocol-4", "foreign-class"])
def test_foreign_pickle_is_one_line_checkpoint_error_without_warnings(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "model.pkl"
    obj = {"weights": [1, 2, 3]} if kind == "plain-dict-protocol-4" else SimpleNamespace(a=1)
    path.write_bytes(pickle.dumps(obj, protocol=4))
    run = paths.runs_dir() / "foreign"
    run.mkdir(parents=True)
    (run / "best.pt").write_bytes(path.read_bytes())
    with warnings.catch_warnings(record=True) as leaked:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError, match="not a facemark checkpoint") as err:
            checkpoint.load_checkpoint(path)
        listed = [e["damaged"] for e in hub.list_models() if e["name"] == "foreign"]
    assert [str(w.message) for w in leaked] == []
    assert "\n" not in str(err.value)
    assert listed == ["unreadable best.pt"]


def _write_labels(folder: Path, rows: list[list[str]]) -> Path:
    path = folder / "labels.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([""] + [str(i) for i in range(136)])
        writer.writerows(rows)
    return path


def _labelled_folder(folder: Path, n: int = 3) -> list[list[str]]:
    """``n`` painted faces in ``folder`` and their CSV rows."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        name = f"Some_Person_{i:02d}.jpg"
        kps = random_keypoints(rng, 96)
        paint_face(kps, 96, rng).save(folder / name)
        rows.append([name] + [f"{v + LABEL_ORIGIN:.1f}" for v in kps.reshape(-1)])
    return rows


def test_absurd_label_is_a_counted_skip_without_numpy_warnings(tmp_path: Path) -> None:
    rows = _labelled_folder(tmp_path)
    absurd = list(rows[2])
    absurd[5] = "1e308"
    labels = _write_labels(tmp_path, [rows[0], rows[1], absurd])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow RuntimeWarning would raise here
        names, kps, skipped = dataset.read_keypoints_csv(labels)
    assert names == [rows[0][0], rows[1][0]]
    assert np.isfinite(kps).all()
    assert [(s.name, "beyond" in s.reason) for s in skipped] == [(rows[2][0], True)]


def test_duplicate_label_rows_are_dropped_with_one_warning_line(tmp_path: Path) -> None:
    rows = _labelled_folder(tmp_path / "images")
    moved = list(rows[0])
    moved[1] = "1.0"  # same name, other numbers: the first row wins
    labels = _write_labels(tmp_path, [rows[0], rows[1], rows[2], rows[1], moved])
    names, kps, skipped = dataset.read_keypoints_csv(labels)
    assert names == [r[0] for r in rows]
    assert kps[0, 0, 0] == pytest.approx(float(rows[0][1]) - LABEL_ORIGIN)
    assert [s.name for s in skipped] == [rows[1][0], rows[0][0]]
    # What a user sees: the loader behind `evaluate --labels`, in a fresh process, on stderr.
    code = (
        "import sys; from facemark import data as dataset; "
        "faces = dataset.load_labeled_folder(sys.argv[1], sys.argv[2]); print(len(faces))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "images"), str(labels)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "default"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "3"
    assert proc.stderr.strip().splitlines() == [
        "labels.csv: skipped 2 row(s): 2 duplicate image name (first row kept)"
    ]


# --------------------------------------------------------------------------- 6. downloads


def model_cache_files() -> list[str]:
    folder = paths.models_cache_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.mark.usefixtures("fast_network")
def test_failed_model_downloads_leave_nothing_in_the_cache(
    monkeypatch, http_server, tmp_path: Path
) -> None:
    http_server.files["/m.pt"] = fake_checkpoint(tmp_path / "m.pt").read_bytes()
    http_server.cut_next = 2  # every attempt stops half-way: a partial download exists
    with pytest.raises(NetworkError):
        hub.resolve_model(http_server.url("/m.pt"))
    assert model_cache_files() == []
    full = SimpleNamespace(total=10**9, used=10**9 - 1000, free=1000)
    monkeypatch.setattr(disk.shutil, "disk_usage", lambda path: full)
    with pytest.raises(FacemarkError, match="not enough disk space") as err:
        hub.resolve_model(http_server.url("/m.pt"))
    assert "free" in str(err.value) and str(paths.models_cache_dir()) in str(err.value)
    assert model_cache_files() == []


def test_download_keeps_only_a_resumable_partial(monkeypatch, http_server, tmp_path) -> None:
    monkeypatch.setattr(downloader, "DEFAULT_BACKOFF", 0.0)
    http_server.files["/blob"] = bytes(range(256)) * 4000
    http_server.cut_next = 10
    with pytest.raises(NetworkError):
        download.download_file(http_server.url("/blob"), tmp_path / "a" / "blob", retries=0)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["blob.part", "blob.part.json"]
    http_server.cut_next = 10
    with pytest.raises(NetworkError):
        download.download_file(
            http_server.url("/blob"), tmp_path / "b" / "blob", retries=0, keep_partial=False
        )
    assert list((tmp_path / "b").iterdir()) == []


def test_leftovers_of_killed_model_downloads_are_removed(http_server, tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    cache = paths.models_cache_dir()
    cache.mkdir(parents=True)
    orphans = [
        cache / f".0123456789abcdef-big.pt.{dead.pid}.download{s}" for s in (".part", ".part.json")
    ]
    live = cache / f".0123456789abcdef-big.pt.{os.getppid()}.download.part"  # still running
    for path in [*orphans, live]:
        path.write_bytes(b"x" * 100)
    http_server.files["/other.pt"] = fake_checkpoint(tmp_path / "o.pt").read_bytes()
    got = hub.resolve_model(http_server.url("/other.pt"))  # any URL cleans the whole cache
    assert not any(p.exists() for p in orphans)
    assert live.exists()
    assert sorted(model_cache_files()) == sorted([live.name, got.name, got.name + ".json"])


def test_fetch_data_checks_free_space_before_downloading(
    monkeypatch, http_server, small_zip: Path
) -> None:
    data = small_zip.read_bytes()
    http_server.files["/master.zip"] = data
    # room for the archive itself, not for the archive and its unpacked copy (about 2.2x)
    free = download.SPACE_MARGIN_BYTES + int(1.5 * len(data))
    monkeypatch.setattr(
        disk.shutil,
        "disk_usage",
        lambda path: SimpleNamespace(total=2 * free, used=free, free=free),
    )
    for send_length in (True, False):  # without Content-Length, the default URL's known size
        http_server.send_length = send_length
        url = http_server.url("/master.zip")
        if not send_length:
            monkeypatch.setattr(fetch, "DEFAULT_URL", url)
            monkeypatch.setattr(fetch, "DEFAULT_ARCHIVE_BYTES", len(data))
        result = CliRunner().invoke(app, ["fetch-data"] + (["--url", url] if send_length else []))
        assert result.exit_code == 1, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.output, result.stderr
        assert "not enough disk space" in lines[0] and "free" in lines[0]
        assert "unpacked" in lines[0] and str(paths.cache_dir()) in lines[0]
        downloads = paths.cache_dir() / "downloads"
        assert not downloads.exists() or list(downloads.iterdir()) == []
        assert not paths.dataset_dir().exists()


# --------------------------------------------------------------------------- 7. fetch-data streams


def test_fetch_data_progress_on_stderr_result_on_stdout(monkeypatch, small_zip: Path) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr(
        cli_data, "err_console", Console(file=stderr, force_terminal=True, width=100)
    )
    result = CliRunner().invoke(app, ["fetch-data", "--zip", str(small_zip)])
    assert result.exit_code == 0, result.output
    assert "Dataset installed" in result.stdout and "training frames" in result.stdout
    assert "Verifying images" not in result.stdout
    assert "Verifying images" in stderr.getvalue()
    assert "Dataset installed" not in stderr.getvalue()


# --------------------------------------------------------------------------- annotate outputs


def _boxes_file(tmp_path: Path, names: list[str]) -> Path:
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps({n: [[20, 10, 100, 110]] for n in names}))
    return path


def test_csv_of_a_file_name_that_is_not_utf8(tmp_path: Path, tiny_landmark_checkpoint) -> None:
    """It used to exit 70 with UnicodeEncodeError, JSONL written, CSV and summary not."""
    from PIL import Image

    folder = tmp_path / "in"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.png")
    Image.new("RGB", (160, 120), (90, 90, 90)).save(folder / name)
    boxes = _boxes_file(tmp_path, [name])
    result = CliRunner().invoke(
        app,
        ["annotate", str(folder), "-o", str(tmp_path / "out"), "--csv", "--no-draw"]
        + ["--detector", f"boxes:{boxes}", "--model", str(tiny_landmark_checkpoint)],
    )
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "out" / "annotations.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 2 and rows[1].split(",")[0].endswith("in/caf\\udce9.png")
    record = json.loads((tmp_path / "out" / "annotations.jsonl").read_text().splitlines()[0])
    assert record["image"].endswith(f"in/{name}") and len(record["faces"]) == 1


def test_disk_full_keeps_whole_jsonl_lines_and_names_the_file(
    monkeypatch, tmp_path: Path, tiny_landmark_checkpoint
) -> None:
    from PIL import Image

    from facemark import annotator
    from facemark.errors import DataError

    folder = tmp_path / "in"
    folder.mkdir()
    names = [f"{i}.png" for i in range(3)]
    for n in names:
        Image.new("RGB", (160, 120), (90, 90, 90)).save(folder / n)
    boxes = _boxes_file(tmp_path, names)
    real_write = os.write

    def full_disk(fd: int, data: bytes) -> int:
        if b"1.png" in data:  # the second image's line: half of it fits, then ENOSPC
            real_write(fd, data[: len(data) // 2])
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(annotator.outputs, "_os_write", full_disk)
    out = tmp_path / "out"
    config = annotator.AnnotateConfig(
        detector=f"boxes:{boxes}", model=str(tiny_landmark_checkpoint), draw=False, batch_size=1
    )
    with pytest.raises(DataError, match=r"cannot write .*annotations\.jsonl: No space left"):
        annotator.run(folder, out, config)
    lines = (out / "annotations.jsonl").read_text().splitlines(keepends=True)
    assert len(lines) == 1 and lines[0].endswith("\n")
    json.loads(lines[0])


def test_write_errors_name_the_file_not_its_temporary_twin(tmp_path: Path) -> None:
    from facemark.files import atomic_write

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(OSError) as caught:  # its "folder" is a file: mkstemp fails
        with atomic_write(blocker / "out.json", "w") as fh:
            fh.write("{}")
    assert caught.value.filename == str(blocker / "out.json") and ".tmp" not in str(caught.value)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError) as caught:
        with atomic_write(tmp_path / "big.bin") as fh:
            fh.write(b"x")
            disk_full()
    assert caught.value.filename == str(tmp_path / "big.bin")
    assert not list(tmp_path.glob(".big.bin.*"))  # nothing half-written left behind
