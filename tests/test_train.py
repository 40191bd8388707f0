"""The training loop: run records, exact resume, Ctrl-C, option errors, the CLI, DDP."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from facemark import paths, train
from facemark.checkpoint import load_checkpoint, save_checkpoint
from facemark.cli import app
from facemark.config import DEFAULTS
from facemark.data import split_unit
from facemark.errors import CheckpointError, UsageError
from facemark.files import sha256_file
from facemark.landmarker import Landmarker
from facemark.tasks import get_task
from facemark.tasks.landmarks import LandmarkTask, balance_weights
from facemark.train import EpochSampler, TrainConfig, lr_factor, resolve_config
from facemark.train.resolve import split_mismatch
from synthetic import install_synthetic_dataset

QUIET = Console(quiet=True)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One tiny synthetic dataset for the module: 36 frames of 6 persons (1 held out)."""
    return str(
        install_synthetic_dataset(
            tmp_path_factory.mktemp("ds") / "dataset", n_train=36, n_test=6, size=80
        )
    )


def _cfg(data_root: str, **overrides) -> TrainConfig:
    values = dict(
        epochs=2,
        batch_size=8,
        img_size=64,
        workers=0,
        data_root=data_root,
        name="run",
        device="cpu",
    )
    values.update(overrides)
    return TrainConfig(**values)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["state_dict"]


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


# --------------------------------------------------------------------------- pure parts


def test_defaults_come_from_the_task_and_the_arch() -> None:
    task = get_task("landmarks")
    cfg = resolve_config(TrainConfig(), task)
    assert (
        cfg.arch == "heatmap" and cfg.img_size == 128 and cfg.epochs and cfg.lr and cfg.batch_size
    )
    udacity = resolve_config(TrainConfig(arch="udacity"), task)
    assert udacity.img_size == 224
    mine = resolve_config(TrainConfig(arch="udacity", img_size=96, epochs=3), task)
    assert (mine.img_size, mine.epochs) == (96, 3)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"epochs": 0}, "--epochs"),
        ({"lr": -1.0}, "--lr"),
        ({"val_fraction": 1.0}, "--val-fraction"),
        ({"max_minutes": 0.0}, "--max-minutes"),
    ],
)
def test_bad_values_are_usage_errors(change: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        resolve_config(TrainConfig(**change), get_task("landmarks"))


def test_unknown_task() -> None:
    with pytest.raises(UsageError, match="unknown task"):
        get_task("pose")


def test_schedule_warms_up_then_decays() -> None:
    assert lr_factor(0, 100, 10) == pytest.approx(0.01)
    assert lr_factor(10, 100, 10) == pytest.approx(1.0)
    values = [lr_factor(s, 100, 10) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    assert values[-1] == pytest.approx(train.FINAL_LR_FRACTION)


def test_sampler_order_is_a_function_of_seed_and_epoch() -> None:
    s = EpochSampler(50, batch_size=4, seed=3)
    s.set_epoch(2)
    full = list(s)
    assert len(full) == 48 and len(set(full)) == 48  # only full batches
    assert list(s) == full
    s.set_epoch(3)
    assert list(s) != full
    s.set_epoch(2, skip_batches=5)
    assert list(s) == full[20:] and len(s) == 28
    ranks = [EpochSampler(50, 4, 3, rank=r, world_size=2) for r in (0, 1)]
    for r in ranks:
        r.set_epoch(2)
    a, b = list(ranks[0]), list(ranks[1])
    assert len(a) == len(b) == 24 and not set(a) & set(b)


def test_weighted_sampler_is_seeded_and_follows_the_weights() -> None:
    weights = np.array([0.7] + [0.3 / 49] * 49)
    s = EpochSampler(50, batch_size=5, seed=1, weights=weights)
    s.set_epoch(0)
    counts = np.zeros(50)
    for epoch in range(40):
        s.set_epoch(epoch)
        order = list(s)
        assert len(order) == 50
        counts += np.bincount(order, minlength=50)
    assert counts[0] / counts.sum() == pytest.approx(0.7, abs=0.03)
    s.set_epoch(3)
    assert list(s) == list(s)
    s.set_epoch(3, skip_batches=2)
    full = EpochSampler(50, 5, 1, weights=weights)
    full.set_epoch(3)
    assert list(s) == list(full)[10:]


def test_balance_weights_even_out_the_yaw_bins() -> None:
    yaw = np.array([0.05] * 8 + [0.15] * 1 + [0.5] * 1)
    w = balance_weights(yaw, 1.0)
    assert w.sum() == pytest.approx(1.0)
    # power 1: every occupied bin is drawn equally often overall
    assert [w[:8].sum(), w[8], w[9]] == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    assert np.allclose(balance_weights(yaw, 0.0), 0.1)


def test_balance_applies_to_landmarks_only(data_root: str) -> None:
    with pytest.raises(UsageError, match="--balance"):
        resolve_config(TrainConfig(task="detector", balance=0.5), get_task("detector"))
    with pytest.raises(UsageError, match="--balance"):
        resolve_config(TrainConfig(balance=-1.0), get_task("landmarks"))
    with pytest.raises(UsageError, match="--augment"):
        resolve_config(TrainConfig(task="detector", augment="p_squeeze=1"), get_task("detector"))
    with pytest.raises(UsageError, match="--augment takes key=value"):
        resolve_config(TrainConfig(augment="nope=1"), get_task("landmarks"))
    cfg = resolve_config(TrainConfig(), get_task("landmarks"))
    assert cfg.balance == DEFAULTS["landmarks"].balance


def test_balanced_run_with_augment_overrides_trains(data_root: str) -> None:
    result = train.train(
        _cfg(data_root, epochs=1, balance=0.5, augment="p_squeeze=0.5"), console=QUIET
    )
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["balance"] == 0.5 and config["augment"] == "p_squeeze=0.5"


def test_result_to_dict_is_plain_json(tmp_path: Path) -> None:
    result = train.TrainResult(
        run_dir=tmp_path / "r",
        metric_name="nme_io",
        best_metric=float("inf"),
        best_epoch=0,
        epochs_run=0,
        seconds=1.5,
        interrupted=True,
        last_metrics={"nme_io": 0.25, "other": float("nan")},
    )
    d = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert d["run_dir"] == str(tmp_path / "r")
    assert d["best_checkpoint"] == str(tmp_path / "r" / "best.pt")
    assert d["last_checkpoint"] == str(tmp_path / "r" / "last.pt")
    assert d["best_metric"] is None and d["last_metrics"] == {"nme_io": 0.25, "other": None}
    assert (d["metric_name"], d["epochs_run"], d["seconds"]) == ("nme_io", 0, 1.5)
    assert d["interrupted"] and not d["stopped_by_time"]


# --------------------------------------------------------------------------- runs


def test_two_epochs_write_every_record(data_root: str) -> None:
    result = train.train(_cfg(data_root), console=QUIET)
    run = paths.runs_dir() / "run"
    assert result.run_dir == run and result.epochs_run == 2 and not result.interrupted
    for name in ("best.pt", "last.pt", "config.json", "metrics.jsonl", "curves.png", "env.json"):
        assert (run / name).is_file(), name
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(r["train_loss"] > 0 and 0 < r["val_nme_io"] < 5 for r in rows)
    config = json.loads((run / "config.json").read_text())
    assert config["arch"] == "heatmap" and config["img_size"] == 64 and config["name"] == "run"
    env = json.loads((run / "env.json").read_text())
    assert env["torch"] == torch.__version__ and len(env["dataset"]["fingerprint"]) == 64
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = load_checkpoint(run / "best.pt", task="landmarks")
    assert best["img_size"] == 64 and "optimizer" not in best
    assert best["metrics"]["nme_io"] == pytest.approx(result.best_metric)
    last = load_checkpoint(run / "last.pt")
    assert last["epoch"] == 2 and {"optimizer", "scheduler", "scaler", "rng"} <= last.keys()
    lm = Landmarker.from_checkpoint(run / "best.pt")
    assert lm.img_size == 64
    # a second run with the same name is refused rather than overwritten
    with pytest.raises(UsageError, match="already exists"):
        train.train(_cfg(data_root), console=QUIET)


def test_arch_variant_is_recorded_as_name_plus_arguments(data_root: str) -> None:
    cfg = _cfg(data_root, arch="heatmap:stride=16,neck=64", epochs=1, name="variant")
    result = train.train(cfg, console=QUIET)
    best = load_checkpoint(result.best_checkpoint)
    assert best["arch"] == "heatmap" and best["arch_kwargs"] == {
        "img_size": 64,
        "stride": 16,
        "neck": 64,
    }
    assert Landmarker.from_checkpoint(best).model.grid == 4


def test_resume_continues_exactly(data_root: str) -> None:
    straight = train.train(_cfg(data_root, name="straight"), console=QUIET)
    # stop after the first epoch (the time limit is already passed), then resume
    first = train.train(_cfg(data_root, name="halves", max_minutes=1e-9), console=QUIET)
    assert first.stopped_by_time and first.epochs_run == 1
    assert load_checkpoint(first.last_checkpoint)["epoch"] == 1
    resumed = train.train(TrainConfig(resume="halves", device="cpu", workers=0), console=QUIET)
    assert resumed.run_dir == first.run_dir and resumed.epochs_run == 2
    _assert_same_weights(straight.last_checkpoint, resumed.last_checkpoint)
    lines = (resumed.run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
    with pytest.raises(UsageError, match="already finished"):
        train.train(TrainConfig(resume="halves", device="cpu", workers=0), console=QUIET)


def test_ctrl_c_saves_mid_epoch_and_resume_is_exact(
    data_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    straight = train.train(_cfg(data_root, name="straight", epochs=1), console=QUIET)
    calls = {"n": 0}
    original = LandmarkTask.loss

    def loss_with_ctrl_c(self, model, batch, device):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # as if the user pressed Ctrl-C mid-step
        return original(self, model, batch, device)

    monkeypatch.setattr(LandmarkTask, "loss", loss_with_ctrl_c)
    shown = io.StringIO()
    stopped = train.train(
        _cfg(data_root, name="ctrlc", epochs=1), console=Console(file=shown, width=200)
    )
    assert stopped.interrupted and stopped.epochs_run == 0
    assert "no epoch finished yet" in shown.getvalue() and "0.0 s per epoch" not in shown.getvalue()
    state = load_checkpoint(stopped.last_checkpoint)
    assert (state["epoch"], state["step_in_epoch"]) == (0, 2)
    assert not (stopped.run_dir / "best.pt").exists()
    monkeypatch.setattr(LandmarkTask, "loss", original)
    resumed = train.train(
        TrainConfig(resume=str(stopped.last_checkpoint), workers=0), console=QUIET
    )
    assert resumed.epochs_run == 1 and not resumed.interrupted
    _assert_same_weights(straight.last_checkpoint, resumed.last_checkpoint)


def test_bad_resume_targets(data_root: str, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a facemark checkpoint"):
        train.train(TrainConfig(resume=str(junk)), console=QUIET)
    lean = save_checkpoint(
        tmp_path / "best.pt",
        {"task": "landmarks", "arch": "heatmap", "arch_kwargs": {}, "state_dict": {}},
    )
    with pytest.raises(CheckpointError, match="cannot be resumed"):
        train.train(TrainConfig(resume=str(lean)), console=QUIET)
    with pytest.raises(UsageError, match="no checkpoint"):
        train.train(TrainConfig(resume=str(tmp_path / "missing")), console=QUIET)


# --------------------------------------------------------------------------- CLI


def _invoke(*args: str):
    return CliRunner().invoke(app, ["train", *args])


def _one_line_error(result, code: int, text: str) -> None:
    assert result.exit_code == code, result.output
    out = result.output.strip()
    assert out.startswith("error:") and text in out and "Traceback" not in out
    assert len(out.splitlines()) == 1, out


def test_cli_smoke(data_root: str) -> None:
    result = _invoke(
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--img-size",
        "64",
        "--workers",
        "0",
        "--data",
        data_root,
        "--name",
        "cli",
        "--device",
        "cpu",
    )
    assert result.exit_code == 0, result.output
    assert "training summary" in result.output and "val nme_io" in result.output
    assert (paths.runs_dir() / "cli" / "best.pt").is_file()
    common = ["--epochs", "1", "--batch-size", "8", "--workers", "0", "--device", "cpu"]
    taught = _invoke(
        *common,
        "--data",
        data_root,
        "--init",
        "cli",
        "--teacher",
        "cli",
        "--teacher",
        str(paths.runs_dir() / "cli" / "last.pt"),
        "--name",
        "cli2",
    )
    assert taught.exit_code == 0, taught.output  # fmt: skip
    saved = json.loads((paths.runs_dir() / "cli2" / "config.json").read_text())
    assert saved["teacher"] == ["cli", str(paths.runs_dir() / "cli" / "last.pt")]
    assert len(load_checkpoint(paths.runs_dir() / "cli2" / "last.pt")["teacher_sha256"]) == 2


def test_cli_bad_options_fail_with_one_line(data_root: str) -> None:
    _one_line_error(_invoke("--arch", "nope", "--data", data_root), 2, "unknown arch 'nope'")
    _one_line_error(_invoke("--epochs", "0", "--data", data_root), 2, "--epochs")
    _one_line_error(_invoke("--gpu", "--device", "cpu"), 2, "--gpu contradicts")
    _one_line_error(_invoke("--img-size", "100", "--data", data_root), 2, "multiple of 32")
    # nothing installed in this test's FACEMARK_HOME
    _one_line_error(_invoke("--epochs", "1"), 1, "facemark fetch-data")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cli_gpu_without_cuda(data_root: str) -> None:
    _one_line_error(_invoke("--gpu", "--data", data_root), 2, "no CUDA GPU is available")


# --------------------------------------------------------------------------- DDP


@pytest.mark.slow
def test_ddp_two_processes_on_cpu(data_root: str, tmp_path: Path) -> None:
    """torchrun with 2 CPU processes (gloo): trains, and only rank 0 writes the run."""
    env = {**os.environ, "FACEMARK_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "facemark",
        "train",
        "--device",
        "cpu",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--img-size",
        "64",
        "--workers",
        "0",
        "--data",
        data_root,
        "--name",
        "ddp",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = tmp_path / "home" / "data" / "runs" / "ddp"
    assert sorted(p.name for p in (tmp_path / "home" / "data" / "runs").iterdir()) == ["ddp"]
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert json.loads((run / "env.json").read_text())["world_size"] == 2
    assert proc.stdout.count("training summary") == 1  # rank 1 prints nothing
    Landmarker.from_checkpoint(run / "best.pt")


def test_mirroring_is_one_setting_and_refused_for_the_detector() -> None:
    """--hflip duplicated --augment p_flip and was silently ignored with --task detector
    (issue 23): one setting now, refused where it does nothing; saved runs keep theirs."""
    from facemark.tasks import get_task
    from facemark.transforms import AugmentConfig

    old = train.TrainConfig.from_dict({"hflip": 0.0, "augment": "rotation=40", "epochs": 2})
    assert old.augment == "rotation=40,p_flip=0" and old.epochs == 2
    assert AugmentConfig.with_overrides(old.augment).p_flip == 0.0
    with pytest.raises(UsageError, match="--augment applies to landmark training"):
        train.resolve_config(
            train.TrainConfig(task="detector", augment="p_flip=0"), get_task("detector")
        )
    assert get_task("landmarks").augment_config(old).rotation == 40.0


def test_config_file_is_a_recipe_the_command_line_overrides(tmp_path, monkeypatch) -> None:
    """train --config takes a saved run's config.json (or TOML); options given override it;
    the saved run's name and resume point are not taken."""
    import types

    from typer.testing import CliRunner

    import facemark.train
    from facemark.cli import app

    saved = TrainConfig(epochs=3, lr=5e-4, name="old", resume="old", augment="rotation=40")
    (tmp_path / "config.json").write_text(json.dumps(saved.to_dict()))
    (tmp_path / "recipe.toml").write_text('epochs = 4\nval_by = "photo"\n')
    seen: list[TrainConfig] = []

    def fake_train(cfg, console=None):
        seen.append(cfg)
        return types.SimpleNamespace(interrupted=False)

    monkeypatch.setattr(facemark.train, "train", fake_train)
    runner = CliRunner()
    done = runner.invoke(app, ["train", "--config", str(tmp_path / "config.json"), "--lr", "1e-3"])
    assert done.exit_code == 0, done.output
    cfg = seen[-1]
    assert (cfg.epochs, cfg.lr, cfg.augment) == (3, 1e-3, "rotation=40")
    assert cfg.name is None and cfg.resume is None
    done = runner.invoke(app, ["train", "--config", str(tmp_path / "recipe.toml"), "--seed", "2"])
    assert done.exit_code == 0, done.output
    assert (seen[-1].epochs, seen[-1].val_by, seen[-1].seed) == (4, "photo", 2)
    (tmp_path / "bad.json").write_text("{nope")
    done = runner.invoke(app, ["train", "--config", str(tmp_path / "bad.json")])
    assert done.exit_code == 2 and "not valid JSON" in done.output


def test_the_detector_trains_on_one_dataset_root_only() -> None:
    from facemark.tasks import get_task

    for bad in (
        TrainConfig(task="detector", data_root=["a", "b"]),
        TrainConfig(task="detector", val_data="v.jsonl"),
    ):
        with pytest.raises(UsageError, match="trains on a dataset root only"):
            resolve_config(bad, get_task("detector"))


def test_init_fine_tunes_from_a_run_and_checks_the_arch(data_root: str) -> None:
    base = train.train(_cfg(data_root, name="base", epochs=1), console=QUIET)
    tuned = train.train(
        _cfg(data_root, name="tuned", epochs=1, init="base", augment="p_flip=0"), console=QUIET
    )
    start = load_checkpoint(base.run_dir / "best.pt")["state_dict"]
    cfg = json.loads((tuned.run_dir / "config.json").read_text())
    assert cfg["init"] == "base" and cfg["augment"] == "p_flip=0"
    # a one-epoch fine-tune stays much closer to its start than a fresh network would be
    fresh = train.train(_cfg(data_root, name="fresh", epochs=1, seed=5), console=QUIET)

    def dist(run) -> float:
        sd = load_checkpoint(run.run_dir / "last.pt")["state_dict"]
        return sum(
            float((sd[k].float() - start[k].float()).abs().sum())
            for k in start
            if start[k].is_floating_point()
        )

    assert dist(tuned) < dist(fresh)
    with pytest.raises(UsageError, match="--init"):
        train.train(_cfg(data_root, name="bad", epochs=1, init="nonexistent-run"), console=QUIET)


def test_distill_loss_is_lowest_where_student_and_teacher_agree() -> None:
    from facemark.models import build_landmark_model

    net = build_landmark_model("heatmap", img_size=64)
    teacher = torch.randn(2, 3, 68, net.grid, net.grid)
    student = teacher.clone().requires_grad_(True)
    at_teacher = net.distill_loss(student, teacher)
    at_teacher.backward()
    at_teacher = at_teacher.detach()
    assert float(student.grad.abs().max()) < 1e-6  # the teacher's outputs are the optimum
    moved = net.distill_loss(teacher + 0.3 * torch.randn_like(teacher), teacher)
    assert float(moved) > float(at_teacher)


def test_teacher_pulls_the_student_towards_its_outputs(data_root: str) -> None:
    train.train(_cfg(data_root, name="teacher", epochs=2), console=QUIET)
    plain = train.train(_cfg(data_root, name="plain", seed=3), console=QUIET)
    taught = train.train(
        _cfg(data_root, name="taught", seed=3, teacher="teacher", distill=20.0), console=QUIET
    )
    cfg = json.loads((taught.run_dir / "config.json").read_text())
    assert cfg["teacher"] == "teacher" and cfg["distill"] == 20.0
    teacher = Landmarker.from_checkpoint(paths.runs_dir() / "teacher" / "best.pt").model
    task = get_task("landmarks")
    _, val = task.datasets(resolve_config(_cfg(data_root), task))
    crops = torch.stack([val[i][0] for i in range(len(val))])  # what the networks train on
    with torch.no_grad():
        target = teacher(crops)

    def gap(run) -> float:
        net = Landmarker.from_checkpoint(run.run_dir / "last.pt").model
        with torch.no_grad():
            return float(net.distill_loss(net(crops), target))

    floor = float(teacher.distill_loss(target, target))  # the teacher's own entropy
    assert gap(taught) - floor < 0.8 * (gap(plain) - floor)


def test_resume_checks_the_teacher_is_the_same_file(data_root: str, tmp_path: Path) -> None:
    t1 = train.train(_cfg(data_root, name="t1", epochs=1), console=QUIET)
    t2 = train.train(_cfg(data_root, name="t2", epochs=1, seed=5), console=QUIET)
    teacher = tmp_path / "teacher.pt"
    teacher.write_bytes(t1.best_checkpoint.read_bytes())
    cfg = _cfg(data_root, name="taught", teacher=str(teacher), max_minutes=1e-9)
    first = train.train(cfg, console=QUIET)  # stops after epoch 1 of 2
    assert first.stopped_by_time
    recorded = load_checkpoint(first.last_checkpoint)["teacher_sha256"]
    assert recorded == [sha256_file(teacher)]
    teacher.write_bytes(t2.best_checkpoint.read_bytes())  # "--teacher" now names another model
    again = TrainConfig(resume="taught", device="cpu", workers=0)
    with pytest.raises(CheckpointError, match="--teacher .* no longer what this run started with"):
        train.train(again, console=QUIET)
    teacher.write_bytes(t1.best_checkpoint.read_bytes())
    task = LandmarkTask()
    task.teacher_sha256 = [recorded[0]]
    task.check_resume(cfg, {"teacher_sha256": recorded[0]})  # one sha as a plain string
    assert train.train(again, console=QUIET).epochs_run == 2


def test_several_teachers_teach_their_average() -> None:
    net = LandmarkTask().build_model(TrainConfig(arch="heatmap", img_size=64))
    a = torch.randn(2, 3, 68, net.grid, net.grid)
    b = torch.randn(2, 3, 68, net.grid, net.grid)
    assert net.average_outputs([a]) is a
    same = net.average_outputs([a, a])
    torch.testing.assert_close(same[:, 0].flatten(2).softmax(-1), a[:, 0].flatten(2).softmax(-1))
    torch.testing.assert_close(same[:, 1:], a[:, 1:])
    both = net.average_outputs([a, b])
    prob = lambda o: o[:, 0].flatten(2).softmax(-1)  # noqa: E731
    torch.testing.assert_close(prob(both), (prob(a) + prob(b)) / 2)
    # the offsets follow the teacher that puts more probability on a cell
    pa, pb = prob(a), prob(b)
    w = (pa / (pa + pb)).view_as(a[:, 0])[:, None]
    torch.testing.assert_close(both[:, 1:], w * a[:, 1:] + (1 - w) * b[:, 1:])


def test_teacher_must_fit_the_student(data_root: str) -> None:
    train.train(_cfg(data_root, name="t96", epochs=1, img_size=96), console=QUIET)
    with pytest.raises(UsageError, match="cannot teach"):
        train.train(_cfg(data_root, name="s64", epochs=1, teacher="t96"), console=QUIET)
    with pytest.raises(UsageError, match="--teacher"):
        train.train(_cfg(data_root, name="s64b", epochs=1, teacher="no-such-run"), console=QUIET)
    train.train(_cfg(data_root, name="t64", epochs=1), console=QUIET)
    with pytest.raises(UsageError, match="--teacher t96: .* cannot teach"):  # one of several
        train.train(_cfg(data_root, name="s64c", epochs=1, teacher=["t64", "t96"]), console=QUIET)
    with pytest.raises(UsageError, match="--distill"):
        resolve_config(TrainConfig(teacher="t96", distill=-1.0), get_task("landmarks"))
    with pytest.raises(UsageError, match="--teacher applies to landmark training"):
        resolve_config(TrainConfig(task="detector", teacher="t96"), get_task("detector"))
    with pytest.raises(UsageError, match="give --teacher"):  # a weight for nothing
        resolve_config(TrainConfig(distill=2.0), get_task("landmarks"))
    for bad in ([], [""], 5, ["t96", 3]):  # e.g. from a --config file
        with pytest.raises(UsageError, match="--teacher takes model names"):
            resolve_config(TrainConfig(teacher=bad), get_task("landmarks"))
    with pytest.raises(UsageError, match="unknown task"):  # before --init is looked for
        train.train(_cfg(data_root, task="nope", init="t96"), console=QUIET)


def test_init_trained_on_another_split_of_the_same_data_is_named(
    data_root: str, tmp_path: Path
) -> None:
    other = tmp_path / "other"  # not read: it is in no config the init shares
    state = {"config": {"data_root": [data_root], "val_by": "photo", "seed": 0}}
    cfg = TrainConfig(init="base", data_root=[data_root, str(other)], val_by="frame", seed=0)
    note = split_mismatch(cfg, state)
    assert note is not None and "--val-by photo (this run frame)" in note
    assert "--seed" not in note
    # a dataset root splits by person for "identity" and "photo" alike: the same split
    assert split_mismatch(dataclasses.replace(cfg, val_by="identity"), state) is None
    assert split_mismatch(dataclasses.replace(cfg, data_root=str(other)), state) is None
    seeded = split_mismatch(dataclasses.replace(cfg, val_by="photo", seed=3), state)
    assert seeded is not None and "--seed 0 (this run 3)" in seeded
    assert split_mismatch(cfg, {"state_dict": {}}) is None  # no record: nothing to say
    assert split_mismatch(cfg, None) is None
    # validating on --val-data: only whether the init trained on it matters
    assert "trained on" in split_mismatch(dataclasses.replace(cfg, val_data=data_root), state)
    assert split_mismatch(dataclasses.replace(cfg, val_data=str(other)), state) is None
    # an init that validated on --val-data trained on all of its --data
    full = {"config": {**state["config"], "val_by": "frame", "val_data": str(other)}}
    assert "all of" in split_mismatch(cfg, full)
    assert split_mismatch(dataclasses.replace(cfg, val_fraction=0.0), full) is None


def test_split_unit_says_which_val_by_give_the_same_split() -> None:
    assert split_unit("identity", udacity=True) == split_unit("photo", udacity=True) == "person"
    assert split_unit("frame", udacity=True) == "frame"
    assert split_unit("photo", udacity=False) == "photo"
    assert split_unit("identity", udacity=False) == split_unit("frame", udacity=False) == "file"


def test_train_warns_when_init_was_split_otherwise(data_root: str) -> None:
    train.train(_cfg(data_root, name="base", epochs=1), console=QUIET)
    out = io.StringIO()
    console = Console(file=out, width=200)
    train.train(_cfg(data_root, name="tuned", epochs=1, init="base", seed=4), console=console)
    assert "--init base was trained on this data split with --seed 0 (this run 4)" in (
        out.getvalue()
    )
    # a teacher's outputs on its training faces carry their labels: the same warning
    out.seek(0), out.truncate()
    train.train(_cfg(data_root, name="taught", epochs=1, teacher=["base"], seed=4), console=console)
    assert "--teacher base was trained on this data split with --seed 0" in out.getvalue()
    out.seek(0), out.truncate()
    train.train(_cfg(data_root, name="taught0", epochs=1, teacher=["base"]), console=console)
    assert "warning" not in out.getvalue()


def test_data_paths_are_recorded_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a later run (--init, --teacher) or evaluate --split val may start in another folder
    monkeypatch.chdir(tmp_path)
    task = get_task("landmarks")
    cfg = resolve_config(TrainConfig(data_root=["a", "../b"], val_data="v"), task)
    assert cfg.data_root == [str(tmp_path / "a"), str(tmp_path.parent / "b")]
    assert cfg.val_data == str(tmp_path / "v")
    assert resolve_config(TrainConfig(), task).data_root is None  # the installed dataset
    saved = {"config": {"data_root": [str(tmp_path / "a")], "seed": 0}}
    monkeypatch.chdir(tmp_path.parent)  # the init's record still names the same folder
    note = split_mismatch(
        resolve_config(TrainConfig(data_root=f"{tmp_path.name}/a", seed=1), task), saved
    )
    assert note is not None and "--seed 0 (this run 1)" in note
