"""tools/average_runs.py: the weights of fine-tunes of one run, averaged into a new run that
every command takes as a trained one (the shipped default is such an average)."""

from __future__ import annotations

import json

import pytest
import torch
from rich.console import Console
from torch.utils.data import DataLoader

from facemark import hub, paths, runs, train
from facemark.checkpoint import load_checkpoint
from facemark.config import TrainConfig
from facemark.errors import UsageError
from facemark.files import sha256_file
from facemark.tasks.landmarks import LandmarkTask
from synthetic import install_synthetic_dataset, load_tool

tool = load_tool("average_runs")
QUIET = Console(quiet=True)


@pytest.fixture
def lineage() -> str:
    """Runs ``base`` -> ``b``, ``c`` (two fine-tunes of it) on a tiny synthetic dataset."""
    root = str(install_synthetic_dataset(n_train=24, n_test=6, size=80))

    def run(name: str, **extra) -> None:
        cfg = TrainConfig(
            epochs=1, batch_size=8, img_size=64, workers=0, device="cpu", data_root=root
        )
        train.train(TrainConfig(**{**cfg.to_dict(), "name": name, **extra}), console=QUIET)

    run("base")
    run("b", init="base", lr=1e-3)
    run("c", init="base", lr=3e-3)
    return root


def test_average_is_the_mean_of_the_weights_and_a_run_like_any(lineage: str) -> None:
    run_dir = tool.average_runs(["b", "c"], "soup")
    sources = [load_checkpoint(paths.runs_dir() / r / "best.pt") for r in ("b", "c")]
    soup = load_checkpoint(run_dir / "best.pt")
    for key, value in soup["state_dict"].items():
        a, b = (s["state_dict"][key] for s in sources)
        if value.is_floating_point():
            assert torch.allclose(value, (a + b) / 2, atol=1e-6), key
        else:  # BatchNorm's batch counter: the first run's
            assert torch.equal(value, a)
    assert soup["averaged_from"] == ["b", "c"] and soup["config"]["init"] is None

    # its figures are the averaged network's on the split the runs share
    [record] = runs.read_records(run_dir)
    task = LandmarkTask()
    cfg = TrainConfig.from_dict(soup["config"])
    _, val = task.datasets(cfg)
    net = task.build_model(cfg)
    net.load_state_dict(soup["state_dict"])
    again = task.validate(net.eval(), DataLoader(val, batch_size=8), torch.device("cpu"))
    assert record["val_nme_io"] == pytest.approx(again["nme_io"])
    assert soup["metrics"]["nme_io"] == pytest.approx(again["nme_io"])
    # it differs from both runs it averages (they drifted apart)
    assert all(abs(record["val_nme_io"] - s["metrics"]["nme_io"]) > 0 for s in sources)

    made = json.loads((run_dir / tool.AVERAGED_FILE).read_text())
    assert [r["run"] for r in made["runs"]] == ["b", "c"]
    assert made["runs"][0]["sha256"] == sha256_file(paths.runs_dir() / "b" / "best.pt")
    # training time: both fine-tunes and the run they share, that one once
    own = {r: runs.summarize(runs.read_records(paths.runs_dir() / r))["total_s"] for r in "bc"}
    base = runs.summarize(runs.read_records(paths.runs_dir() / "base"))["total_s"]
    assert runs.init_seconds(run_dir) == pytest.approx(own["b"] + own["c"] + base)
    assert runs.parent_runs(run_dir) == ["b", "c"]

    # every command's loader takes it by name, and it can start a fine-tune
    assert hub.load_model("soup").img_size == 64
    train.train(
        TrainConfig(
            epochs=1, batch_size=8, workers=0, device="cpu", data_root=lineage, init="soup"
        ),
        console=QUIET,
    )


def test_runs_that_cannot_be_averaged_are_refused(
    lineage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = dict(epochs=1, batch_size=8, workers=0, device="cpu", data_root=lineage)
    train.train(TrainConfig(**base, name="seeded", seed=3, img_size=64), console=QUIET)
    train.train(TrainConfig(**base, name="bigger", img_size=96), console=QUIET)
    with pytest.raises(UsageError, match="--seed"):  # its training faces: b's validation
        tool.average_runs(["b", "seeded"], "x")
    with pytest.raises(UsageError, match="img_size"):
        tool.average_runs(["b", "bigger"], "x")
    with pytest.raises(UsageError, match="at least two"):
        tool.average_runs(["b"], "x")
    with pytest.raises(UsageError, match="named twice"):
        tool.average_runs(["b", "b"], "x")
    with pytest.raises(UsageError, match="already exists") as exists:
        tool.average_runs(["b", "c"], "base")
    assert "--resume" not in str(exists.value)  # an average is not resumed
    with pytest.raises(UsageError, match="plain folder name"):
        tool.average_runs(["b", "c"], "../x")
    assert not (paths.runs_dir() / "x").exists()  # nothing half-written
    crashed = paths.runs_dir() / "crashed"  # a training run that never saved a checkpoint
    crashed.mkdir()
    (crashed / "config.json").write_text("{}")
    with pytest.raises(UsageError, match="holds files"):
        tool.average_runs(["b", "c"], "crashed")
    assert (crashed / "config.json").read_text() == "{}"
    assert not list(paths.runs_dir().glob(".*"))  # the hidden folder it was written in: gone
    (paths.runs_dir() / "empty").mkdir()  # an empty one is taken
    assert (tool.average_runs(["b", "c"], "empty") / "best.pt").is_file()

    assert tool.main(["b", "no-such-run", "--name", "y"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "no-such-run" in err and "\n" not in err
    assert tool.main(["b", "c", "--name", "y"]) == 0
    assert "nme_io" in capsys.readouterr().out


def test_average_state_dicts_keeps_integer_buffers_and_dtypes() -> None:
    states = [
        {
            "w": torch.tensor([1.0, 3.0]),
            "h": torch.tensor([2.0], dtype=torch.float16),
            "n": torch.tensor(5),
        },
        {
            "w": torch.tensor([3.0, 5.0]),
            "h": torch.tensor([4.0], dtype=torch.float16),
            "n": torch.tensor(9),
        },
    ]
    out = tool.average_state_dicts(states)
    assert torch.equal(out["w"], torch.tensor([2.0, 4.0]))
    assert out["h"].dtype == torch.float16 and float(out["h"]) == 3.0
    assert int(out["n"]) == 5
    with pytest.raises(UsageError, match="differ"):
        tool.average_state_dicts([states[0], {**states[1], "w": torch.zeros(3)}])
