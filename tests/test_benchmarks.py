"""The benchmark harness (benchmarks/): scoring, dlib's box map, timing, run records, report,
and one end-to-end run on a synthetic dataset with tiny checkpoints.

dlib itself lives in a separate virtual environment; the test that runs it is skipped (with the
reason) where that venv is absent, as in CI.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import bench_timing, bench_wild, dlib_runner, report, scoring  # noqa: E402

from facemark import evaluate, metrics, runs, transforms  # noqa: E402
from facemark.shape import MEAN_SHAPE  # noqa: E402

DLIB_PYTHON = dlib_runner.DEFAULT_PYTHON


def faces(n: int, seed: int = 0) -> np.ndarray:
    """``n`` plausible ground-truth shapes, (n, 68, 2)."""
    rng = np.random.default_rng(seed)
    scale = rng.uniform(30, 60, size=(n, 1, 1))
    centre = rng.uniform(80, 120, size=(n, 1, 2))
    return MEAN_SHAPE[None].astype(np.float64) * scale + centre


# --------------------------------------------------------------------------- scoring


def test_score_counts_a_miss_as_failure_but_not_in_the_mean():
    gt = faces(4)
    iod = metrics.interocular(gt)
    pred = [gt[0], gt[1] + [0.05 * iod[1], 0.0], None, gt[3] + [0.0, 0.2 * iod[3]]]
    result = scoring.score(pred, gt)
    assert (result["images"], result["found"], result["missed"]) == (4, 3, 1)
    assert result["nme_io"] == pytest.approx((0.0 + 0.05 + 0.2) / 3)
    assert result["fr_10"] == pytest.approx(2 / 4)  # the miss and the 0.2 face
    assert result["per_image_nme"][2] is None
    assert result["per_image_nme"][1] == pytest.approx(0.05)
    # the same figures as evaluate's own scoring of a NaN-for-miss array
    arr = np.stack([p if p is not None else np.full((68, 2), np.nan) for p in pred])
    _, summary = evaluate.score(arr, gt)
    assert result["auc_10"] == pytest.approx(summary["auc_10"])


def test_score_rejects_a_length_mismatch():
    with pytest.raises(ValueError):
        scoring.score([None], faces(2))


def test_low_confidence_rule_pools_the_val_sets_with_gt_boxes():
    conf = list(np.linspace(0.3, 0.99, 100))
    nme = [0.08 if c < 0.31 else 0.04 for c in conf]  # the least confident faces err most
    row = {"model": "m", "boxes": "gt", "per_image_confidence": conf, "per_image_nme": nme}
    rows = [
        {**row, "set": "udacity_val"},
        {**row, "set": "wild_val", "per_image_confidence": conf[:50] + [None] * 50},
        {**row, "set": "udacity_test", "per_image_confidence": [0.0] * 100},  # not val: ignored
        {**row, "set": "wild_val", "boxes": "detect", "per_image_confidence": [0.0] * 100},
    ]
    rule = bench_wild.low_confidence_rule(rows)["m"]
    assert rule["faces"] == 150  # two val sets with gt boxes; a face without confidence drops
    pooled = np.array(conf + conf[:50])
    assert rule["p02"] == pytest.approx(np.percentile(pooled, 2))
    assert rule["threshold"] == round(rule["p02"], 2) == 0.31
    assert rule["below"] == int((pooled < rule["threshold"]).sum()) > 0
    assert rule["nme_io_below"] > rule["nme_io_rest"]


def test_by_folder_scores_each_source_folder_over_its_faces_found():
    names = ["helen_train/1.jpg", "afw_train/2_1.jpg", "helen_train/3.jpg", "afw_train/2_2.jpg"]
    out = bench_wild.by_folder([0.02, 0.06, 0.04, None], names)  # None: a face missed
    assert out == {
        "afw_train": {"faces": 2, "nme_io": pytest.approx(0.06)},
        "helen_train": {"faces": 2, "nme_io": pytest.approx(0.03)},
    }
    assert bench_wild.by_folder([0.05], ["frame.jpg"]) == {"": {"faces": 1, "nme_io": 0.05}}


def test_matched_picks_the_detection_containing_the_face():
    gt = faces(1)
    box = transforms.face_box_from_keypoints(gt[0]).tolist()
    far = [500.0, 500.0, 600.0, 600.0]
    answer = {
        "images": [
            {
                "detections": [
                    {"box": far, "score": 2.0, "keypoints": []},
                    {"box": box, "score": 0.5, "keypoints": gt[0].tolist()},
                ]
            }
        ]
    }
    found = dlib_runner.matched(answer, gt)
    assert found[0]["box"] == box
    assert dlib_runner.matched({"images": [{"detections": [{"box": far, "score": 1.0}]}]}, gt) == [
        None
    ]


# --------------------------------------------------------------------------- dlib box map


def test_box_map_recovers_a_known_linear_map():
    rng = np.random.default_rng(1)
    x0, y0 = rng.uniform(0, 100, 50), rng.uniform(0, 100, 50)
    w, h = rng.uniform(40, 90, 50), rng.uniform(50, 110, 50)
    src = np.stack([x0, y0, x0 + w, y0 + h], axis=1)
    true = {"dx": [0.05, -0.02], "dy": [0.1, 0.08], "side": [0.6, 0.4]}
    hog = dlib_runner.apply_box_map(true, src)
    fitted = dlib_runner.fit_box_map(src, hog)
    for key, pair in true.items():
        assert fitted["coef"][key] == pytest.approx(pair, abs=1e-9)
    assert fitted["iou_mean"] == pytest.approx(1.0)
    side = hog[:, 2] - hog[:, 0]
    assert np.allclose(side, hog[:, 3] - hog[:, 1])  # dlib's boxes are square, so are ours
    assert np.allclose(side, 0.6 * w + 0.4 * h)


def test_box_map_is_translation_equivariant_and_needs_data():
    src = np.array([[0, 0, 50, 60], [10, 20, 80, 100], [5, 5, 45, 40.0]])
    coef = {"dx": [0.1, 0.0], "dy": [0.0, 0.2], "side": [0.5, 0.5]}
    moved = dlib_runner.apply_box_map(coef, src + [7, -3, 7, -3])
    assert np.allclose(moved, dlib_runner.apply_box_map(coef, src) + [7, -3, 7, -3])
    with pytest.raises(ValueError):
        dlib_runner.fit_box_map(src[:2], src[:2])


def test_source_boxes():
    gt = faces(3)
    assert np.allclose(dlib_runner.source_boxes(gt, "face"), transforms.face_box_from_keypoints(gt))
    inner = dlib_runner.source_boxes(gt, "inner")
    assert np.allclose(inner[:, :2], gt[:, 17:].min(axis=1))
    assert np.allclose(inner[:, 2:], gt[:, 17:].max(axis=1))
    with pytest.raises(ValueError):
        dlib_runner.source_boxes(gt, "nose")


def test_probe_explains_a_missing_or_broken_dlib_venv(tmp_path):
    with pytest.raises(dlib_runner.DlibUnavailable, match="no Python at"):
        dlib_runner.probe(tmp_path / "nope" / "python")
    with pytest.raises(dlib_runner.DlibUnavailable, match="cannot import dlib"):
        dlib_runner.probe(sys.executable)  # the project venv has no dlib, by design


@pytest.mark.skipif(
    not DLIB_PYTHON.exists(), reason=f"no dlib venv at {DLIB_PYTHON} (see benchmarks/README.md)"
)
def test_dlib_baseline_runs_on_given_boxes_and_times(tmp_path):
    from synthetic import paint_face, random_keypoints

    rng = np.random.default_rng(0)
    kps = [random_keypoints(rng, 160) for _ in range(2)]
    images = [np.asarray(paint_face(k, 160, rng)) for k in kps]
    paths = []
    for i, im in enumerate(images):
        from PIL import Image

        paths.append(tmp_path / f"f{i}.png")
        Image.fromarray(im).save(paths[-1])
    boxes = [[transforms.face_box_from_keypoints(k).tolist()] for k in kps]
    answer = dlib_runner.run(DLIB_PYTHON, images, boxes=boxes, timing_paths=paths, repeats=1)
    assert len(answer["images"]) == 2
    for rec, im in zip(answer["images"], images, strict=True):
        assert (rec["width"], rec["height"]) == (im.shape[1], im.shape[0])
        assert np.asarray(rec["given"][0]["keypoints"]).shape == (68, 2)
        assert isinstance(rec["detections"], list)
    timing = answer["timing"]
    assert timing["images"] == 2 and timing["detect_ms_per_image"] > 0
    assert timing["pipeline_images_per_s"] > 0


# --------------------------------------------------------------------------- timing


def test_interleaved_takes_turns_and_reports_ms_per_item():
    calls: list[str] = []
    passes = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    ms = bench_timing.interleaved(passes, repeats=3, count=4, warmup=1)
    assert calls == ["a", "b"] * 4  # one warm-up round, then three timed, alternating
    assert set(ms) == {"a", "b"} and all(v >= 0 for v in ms.values())


def test_median_pass_and_merge():
    calls = []
    out = bench_timing.median_pass(lambda: calls.append(1), repeats=3, count=10)
    assert len(calls) == 3 and len(out["runs"]) == 3 and out["median"] >= 0
    rounds = [
        {
            "threads": 2,
            "detect_ms_per_image": 9.0,
            "detect_ms_per_image_runs": [1.0],
            "pipeline_ms_per_image": 9.0,
            "pipeline_ms_per_image_runs": [10.0],
        },
        {
            "threads": 2,
            "detect_ms_per_image": 9.0,
            "detect_ms_per_image_runs": [3.0, 2.0],
            "pipeline_ms_per_image": 9.0,
            "pipeline_ms_per_image_runs": [20.0, 30.0],
        },
    ]
    merged = bench_timing.merge(rounds)
    assert merged["detect_ms_per_image_runs"] == [1.0, 3.0, 2.0]
    assert merged["detect_ms_per_image"] == 2.0
    assert merged["pipeline_ms_per_image"] == 20.0
    assert merged["pipeline_images_per_s"] == pytest.approx(50.0)
    assert merged["rounds"] == 2 and merged["threads"] == 2
    with pytest.raises(ValueError):
        bench_timing.median_pass(lambda: None, repeats=0, count=1)


# --------------------------------------------------------------------------- training time


def test_training_time_sums_epoch_times_up_to_the_best_epoch(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    rows = [
        {"epoch": 1, "seconds": 10.0, "val_seconds": 1.0, "val_nme_io": 0.09, "elapsed": 12},
        {"epoch": 2, "seconds": 10.0, "val_seconds": 1.0, "val_nme_io": 0.05, "elapsed": 23},
        # resumed: the elapsed clock restarted, the epoch times did not
        {"epoch": 3, "seconds": 10.0, "val_seconds": 1.0, "val_nme_io": 0.06, "elapsed": 11},
    ]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    (run / "config.json").write_text(json.dumps({"arch": "heatmap", "name": "run"}))
    (run / "env.json").write_text(json.dumps({"device": "cpu"}))
    info = runs.describe(run / "best.pt")
    assert info["best_epoch"] == 2 and info["epochs"] == 3
    assert info["time_to_best_s"] == pytest.approx(22.0)
    assert info["total_s"] == pytest.approx(33.0)
    assert info["metric"] == "val_nme_io" and info["best_value"] == pytest.approx(0.05)
    assert info["config_arch"] == "heatmap" and info["device"] == "cpu"
    assert runs.describe(tmp_path / "elsewhere" / "best.pt") == {
        "note": "no run records found (pass --model-run/--baseline-run)"
    }
    assert runs.describe(None, run=str(run))["best_epoch"] == 2
    assert "with_init_to_best_s" not in info  # trained from scratch


def test_training_time_with_init_follows_the_chain_of_runs(tmp_path):
    def make(name: str, seconds: float, init: str | None) -> Path:
        run = tmp_path / name
        run.mkdir()
        rec = {"epoch": 1, "seconds": seconds, "val_seconds": 0.0, "val_nme_io": 0.05}
        (run / "metrics.jsonl").write_text(json.dumps(rec) + "\n")
        (run / "config.json").write_text(json.dumps({"name": name, "init": init}))
        return run

    make("a", 100.0, None)
    make("b", 20.0, str(tmp_path / "a" / "best.pt"))  # --init as a checkpoint path
    c = make("c", 3.0, str(tmp_path / "b"))  # as the run folder
    assert runs.init_seconds(c) == pytest.approx(120.0)
    assert runs.describe(None, run=str(c))["with_init_to_best_s"] == pytest.approx(123.0)
    lost = make("d", 1.0, "default")  # a bundled model: its time is not on this machine
    assert runs.init_seconds(lost) is None
    # unless the caller knows that model's time (tools/bundle_models.py: the bundled card)
    assert runs.init_seconds(lost, missing=lambda spec: 50.0 if spec == "default" else None) == (
        pytest.approx(50.0)
    )
    assert "with_init_to_best_s" not in runs.describe(None, run=str(lost))
    assert runs.init_seconds(tmp_path / "a") == 0.0


# --------------------------------------------------------------------------- report


def _row(model, split, boxes, nme, missed=0):
    return {
        "model": model,
        "split": split,
        "boxes": boxes,
        "images": 160,
        "found": 160 - missed,
        "missed": missed,
        "nme_io": nme,
        "fr_10": 0.05,
        "auc_10": 0.4,
        "fr_08": 0.1,
        "auc_08": 0.3,
        "regions": {"jaw": nme, "eyes": nme},
    }


def test_targets_and_markdown():
    results = {
        "date": "2025-01-01T00:00:00+00:00",
        "command": "python benchmarks/run.py",
        "commit": "abc",
        "settings": {"repeats": 3},
        "machine": {"cpu": "test cpu", "cpu_count": 2},
        "data": {"val": 360, "test": 160},
        "models": {"facemark": {"checkpoint": "x.pt"}},
        "accuracy": [
            _row("facemark", "test", "gt", 0.045),
            _row("dlib", "test", "gt", 0.065),
            _row("facemark", "test", "detect", 0.055, 2),
            _row("dlib", "test", "detect", 0.066, 6),
            _row("facemark", "val", "gt", None),
        ],
        "speed": {
            "test": {
                "facemark@2": {
                    "threads": 2,
                    "images": 160,
                    "rounds": 3,
                    "landmarks_ms_per_face": 2.0,
                    "detect_ms_per_image": 5.0,
                    "pipeline_images_per_s": 40.0,
                },
                "dlib@1": {
                    "threads": 1,
                    "images": 160,
                    "rounds": 3,
                    "landmarks_ms_per_face": 1.0,
                    "detect_ms_per_image": 10.0,
                    "pipeline_images_per_s": 50.0,
                },
            },
            "photos": {
                "facemark@2": {
                    "threads": 2,
                    "images": 2,
                    "rounds": 3,
                    "pipeline_images_per_s": 8.0,
                },
                "dlib@1": {"threads": 1, "images": 2, "rounds": 3, "pipeline_images_per_s": 2.0},
            },
        },
        "training": {
            "facemark": {
                "best_epoch": 3,
                "epochs": 4,
                "time_to_best_s": 3725,
                "total_s": 4000,
                "metric": "val_nme_io",
                "best_value": 0.05,
            },
            "udacity": {"note": "no run records found"},
        },
        "skipped": {"udacity": "unknown landmarks model 'udacity'"},
    }
    t = report.targets(results)
    assert t["nme_gain_gt"]["gain"] == pytest.approx(1 - 0.045 / 0.065) and t["nme_gain_gt"]["met"]
    assert not t["nme_gain_detect"]["met"]  # 0.055 vs 0.066 is 16.7 % lower
    assert t["speed_ratio"]["ratio"] == pytest.approx(0.8) and not t["speed_ratio"]["met"]
    results["targets"] = t
    md = report.markdown(results)
    assert "| facemark (default) | ground-truth boxes | 160 | 4.50% | 5.0% | 0.400 | 0 |" in md
    assert "**missed** by 8.3 percentage points" in md  # 25 % target, 16.7 % reached
    assert "**missed**: 20% slower" in md
    assert "2.00 (0.50×)" in md and "5.00 (2.00×)" in md  # ratios against dlib
    assert "### 2 photos (`--photos`), 3 passes" in md and "8.0 (4.00×)" in md
    assert "1 h 02 min" in md and "no run records found" in md
    assert "udacity: unknown landmarks model" in md
    assert "| facemark (default) | ground-truth boxes | 160 | – |" in md  # a None figure, no crash


# --------------------------------------------------------------------------- end to end


def test_run_end_to_end_on_synthetic_data(
    tmp_path, tiny_landmark_checkpoint, tiny_detector_checkpoint
):
    """The whole harness on a synthetic dataset: facemark rows, a baseline given by run name,
    dlib skipped with its reason, speed and training time, the report and the JSON."""
    from benchmarks import run

    from facemark import paths
    from synthetic import install_synthetic_dataset

    root = install_synthetic_dataset(n_train=24, n_test=6, size=96)
    photos_dir = tmp_path / "photos"
    photos_dir.mkdir()
    for name in sorted(p.name for p in (root / "test").iterdir())[:2]:
        shutil.copy(root / "test" / name, photos_dir / name)
    runs = paths.runs_dir()
    shutil.copytree(Path(tiny_landmark_checkpoint).parent, runs / "base")
    out_md, out_json = tmp_path / "bench.md", tmp_path / "bench.json"
    code = run.main(
        [
            "--model",
            str(tiny_landmark_checkpoint),
            "--detector",
            str(tiny_detector_checkpoint),
            "--baseline",
            "base",
            "--dlib-python",
            str(tmp_path / "no-dlib" / "python"),
            "--photos",
            str(photos_dir),
            "--repeats",
            "1",
            "--threads",
            "1",
            "--out-md",
            str(out_md),
            "--out-json",
            str(out_json),
        ]
    )
    assert code == 0
    results = json.loads(out_json.read_text())
    rows = {(r["model"], r["split"], r["boxes"]): r for r in results["accuracy"]}
    for model in ("facemark", "udacity"):
        for split in ("val", "test"):
            for boxes in ("gt", "detect"):
                row = rows[(model, split, boxes)]
                assert row["images"] == results["data"][split]
                assert row["found"] + row["missed"] == row["images"]
    assert rows[("facemark", "test", "gt")]["missed"] == 0
    assert "no Python at" in results["skipped"]["dlib"]
    speed = results["speed"]["test"]["facemark@1"]
    assert speed["landmarks_ms_per_face"] > 0 and speed["pipeline_images_per_s"] > 0
    assert "landmarks_ms_per_face" in results["speed"]["test"]["udacity@1"]
    photos = results["speed"]["photos"]["facemark@1"]  # --photos: end to end, no landmark pass
    assert photos["images"] == 2 and "landmarks_ms_per_face" not in photos
    assert "udacity@1" not in results["speed"]["photos"]
    assert results["training"]["facemark"]["best_epoch"] == 1
    assert results["training"]["udacity"]["time_to_best_s"] > 0
    md = out_md.read_text()
    assert "## Accuracy" in md and "## Speed (CPU)" in md and "## Training time" in md
    assert "dlib: no Python at" in md


def test_speed_target_uses_the_fastest_thread_count_and_flags_contention():
    def timing(threads, lm, e2e):
        return {"threads": threads, "landmarks_ms_per_face": lm, "pipeline_images_per_s": e2e}

    results = {
        "speed": {
            "test": {
                "facemark@2": timing(2, 40.0, 20.0),  # slower with more threads: a busy machine
                "facemark@1": timing(1, 4.0, 60.0),
                "dlib@1": timing(1, 1.0, 50.0),
            }
        }
    }
    assert report.best_speed(results, "facemark")["threads"] == 1
    assert report.targets(results)["speed_ratio"]["ratio"] == pytest.approx(1.2)
    assert "ran slower with 2 threads than with 1" in report.contention(results)
    results["speed"]["test"]["facemark@2"] = timing(2, 3.0, 70.0)
    assert report.contention(results) is None
    assert report.best_speed(results, "facemark")["threads"] == 2
