"""``facemark evaluate``: metric bookkeeping with stub models, reports, errors and a CLI run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from facemark import evaluate, metrics, transforms
from facemark.cli import app
from facemark.data import FaceSet, load_labeled_folder
from facemark.detectors import Detections, Detector
from facemark.landmarker import Landmarker
from facemark.pipeline import FaceMarker
from synthetic import make_dataset_tree

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPORT_FILES = {"ced.png", "per_image.csv", "subsets.csv", "worst.png", "summary.json"}


def _frame_index(faces: FaceSet, pixels: np.ndarray) -> int:
    """Which frame of ``faces`` these pixels are (the pipeline passes copies, not the arrays)."""
    return next(i for i, im in enumerate(faces.images) if np.array_equal(im, pixels))


class StubModel(Landmarker):
    """Predicts the true points of the frame plus a fixed offset; records each call's batch."""

    def __init__(self, faces: FaceSet, offset=(0.0, 0.0), name: str = "stub") -> None:
        super().__init__(torch.nn.Identity(), 64, info={"run_name": name})
        self.faces, self.offset, self.name = faces, np.asarray(offset, dtype=np.float64), name
        self.calls: list[int] = []

    def _truth(self, pixels: np.ndarray) -> np.ndarray:
        index = _frame_index(self.faces, pixels)
        return self.faces.keypoints[index].astype(np.float64) + self.offset

    def predict_photos(self, photos, boxes, flip=False):
        self.calls.append(len(photos))
        out = []
        for photo, b in zip(photos, boxes, strict=True):
            kps = np.repeat(self._truth(photo.array())[None], len(b), axis=0)
            out.append((kps, np.ones(kps.shape[:2])))
        return out


class StubDetector(Detector):
    """Finds every face except the frames named in ``miss`` (it reports a box beside them)."""

    name = "stub"

    def __init__(self, faces: FaceSet, miss: set[str]) -> None:
        super().__init__()
        self.faces, self.miss = faces, miss

    def detect_batch(self, images, names=None, sizes=None):
        out = []
        for image in images:
            i = _frame_index(self.faces, image)
            box = transforms.face_box_from_keypoints(self.faces.keypoints[i])
            if self.faces.names[i] in self.miss:
                box = box + np.array([500, 500, 500, 500], dtype=np.float32)  # nowhere near
            out.append(Detections(box[None].astype(np.float32), np.array([0.9], np.float32)))
        return out


@pytest.fixture(scope="module")
def synth_tree(tmp_path_factory) -> Path:
    """A tiny synthetic dataset in the archive layout (shared by the tests of this file)."""
    return make_dataset_tree(tmp_path_factory.mktemp("synth"), n_train=12, n_test=6, size=96)


@pytest.fixture(scope="module")
def faces(synth_tree) -> FaceSet:
    data = synth_tree / "data"
    return load_labeled_folder(data / "test", data / "test_frames_keypoints.csv")


# --------------------------------------------------------------------------- scoring


def test_perfect_predictions_score_zero(faces) -> None:
    out = evaluate.evaluate_model(StubModel(faces), faces=faces, timing=False)
    assert out["images"] == len(faces) == 6 and out["missed"] == 0
    assert out["nme_io"] == 0.0 and out["fr_08"] == 0.0 and out["fr_10"] == 0.0
    assert out["auc_10"] == pytest.approx(1.0, abs=2e-3)
    assert set(out["regions"]) == {"jaw", "brows", "nose", "eyes", "mouth"}
    assert all(v == 0.0 for v in out["regions"].values())


def test_known_offset_gives_known_nme(faces) -> None:
    out = evaluate.evaluate_model(StubModel(faces, offset=(3.0, 4.0)), faces=faces, timing=False)
    # every point is 5 px off; each frame's NME is 5 px over its outer-eye-corner distance
    io = np.hypot(*(faces.keypoints[:, 36] - faces.keypoints[:, 45]).T.astype(np.float64))
    assert out["nme_io"] == pytest.approx(np.mean(5.0 / io), rel=1e-6)
    assert out["regions"]["mouth"] == pytest.approx(np.mean(5.0 / io), rel=1e-6)
    assert out["fr_10"] == pytest.approx(np.mean(5.0 / io > 0.10))


def test_batched_and_single_image_calls_agree(faces) -> None:
    single, batched = StubModel(faces, (1.0, -2.0)), StubModel(faces, (1.0, -2.0))
    a = evaluate.evaluate_model(single, faces=faces, timing=False, batch_size=1)
    b = evaluate.evaluate_model(batched, faces=faces, timing=False, batch_size=4)
    assert a["nme_io"] == pytest.approx(b["nme_io"])
    assert single.calls == [1] * 6 and batched.calls == [4, 2]


def test_unmatched_detection_counts_as_failure(faces) -> None:
    missed = faces.names[2]
    out = evaluate.evaluate_models(
        [StubModel(faces)],
        faces=faces,
        boxes="detect",
        detector=StubDetector(faces, {missed}),
        timing=False,
        per_image=True,
    )["models"][0]
    assert out["boxes"] == "detect" and out["missed"] == 1 and out["found"] == 5
    assert out["nme_io"] == 0.0  # the mean is over the faces that were found
    assert out["fr_10"] == pytest.approx(1 / 6) and out["fr_08"] == pytest.approx(1 / 6)
    assert out["auc_10"] == pytest.approx(5 / 6, abs=2e-3)
    rows = {r["image"]: r for r in out["per_image"]}
    assert rows[missed] == {"image": missed, "nme_io": None, "missed": True, "confidence": None}
    # the stub is fully confident: each found face's mean point confidence is 1
    assert {r["confidence"] for name, r in rows.items() if name != missed} == {1.0}


def test_match_detection_picks_best_box_around_the_centroid() -> None:
    kps = np.zeros((68, 2)) + [50.0, 50.0]
    boxes = np.array([[0, 0, 40, 40], [30, 30, 70, 70], [20, 20, 80, 80], [45, 45, 55, 55]], float)
    scores = np.array([0.99, 0.6, 0.8, 0.7])
    assert evaluate.match_detection(boxes, scores, kps) == 2
    assert evaluate.match_detection(boxes[:1], scores[:1], kps) is None
    assert evaluate.match_detection(np.zeros((0, 4)), np.zeros(0), kps) is None


def test_timing_reports_both_batch_sizes(faces) -> None:
    model = StubModel(faces)
    marker = FaceMarker(None, model)
    ms = evaluate.time_inference(
        marker, faces.images, faces.boxes(), min_seconds=0.0, min_repeats=2
    )
    assert set(ms) == {1, 32} and all(v > 0 for v in ms.values())
    assert 32 in model.calls  # a real batch of 32 crops went through


# --------------------------------------------------------------------------- report and JSON


def test_report_files_are_valid(faces, tmp_path) -> None:
    report = tmp_path / "rep"
    result = evaluate.evaluate_models(
        [StubModel(faces, (2.0, 0.0), name="a"), StubModel(faces, (0.0, 6.0), name="b")],
        faces=faces,
        timing=False,
        report=report,
        worst=4,
    )
    assert {p.name for p in report.iterdir()} == REPORT_FILES
    for name in ("ced.png", "worst.png"):
        assert (report / name).read_bytes()[:8] == PNG_MAGIC
        with Image.open(report / name) as im:
            im.verify()
    with open(report / "per_image.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * len(faces)
    assert set(rows[0]) == {"model", "image", "nme_io", "missed", "confidence"}
    assert {float(r["confidence"]) for r in rows} == {1.0}
    a_rows = [r for r in rows if r["model"] == "a"]
    expected = metrics.nme_io(faces.keypoints + [2.0, 0.0], faces.keypoints)
    assert [float(r["nme_io"]) for r in a_rows] == pytest.approx(expected, abs=1e-6)
    summary = json.loads((report / "summary.json").read_text())
    assert [m["model"] for m in summary["models"]] == ["a", "b"]
    assert summary["models"] == result["models"]


def test_worst_gallery_ranks_by_error(faces) -> None:
    nme = np.array([0.01, 0.2, np.inf, 0.05, 0.03, 0.0])
    ev = evaluate.Evaluation({"model": "m"}, list(faces.names), np.zeros((6, 68, 2)), nme)
    assert evaluate.worst_indices([ev], 3) == [2, 1, 3]


# --------------------------------------------------------------------------- CLI errors


def _run(args: list[str]):
    return CliRunner().invoke(app, ["evaluate", *args])


def _one_line_error(result) -> str:
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_csv_with_wrong_columns_is_one_line_error(synth_tree, tmp_path) -> None:
    bad = tmp_path / "labels.csv"
    src = (synth_tree / "data" / "test_frames_keypoints.csv").read_text().splitlines()
    rows = [src[0]] + [",".join(line.split(",")[:-2]) for line in src[1:]]  # drop one point
    bad.write_text("\n".join(rows) + "\n")
    images = str(synth_tree / "data" / "test")
    line = _one_line_error(_run(["--images", images, "--labels", str(bad)]))
    assert "columns" in line and "134 values instead of 136" in line


def test_missing_images_is_one_line_error(synth_tree, tmp_path) -> None:
    images = tmp_path / "imgs"
    images.mkdir()
    names = sorted(p.name for p in (synth_tree / "data" / "test").iterdir())
    for name in names[2:]:
        (images / name).write_bytes((synth_tree / "data" / "test" / name).read_bytes())
    labels = synth_tree / "data" / "test_frames_keypoints.csv"
    line = _one_line_error(_run(["--images", str(images), "--labels", str(labels)]))
    first_listed = next(r[0] for r in csv.reader(labels.open()) if r[0] in names[:2])
    assert "2 of 6" in line and first_listed in line


def test_dataset_not_installed_suggests_fetch_data() -> None:
    line = _one_line_error(_run(["--split", "test"]))
    assert "facemark fetch-data" in line


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--split", "train"], "--split"),
        (["--boxes", "nope"], "--boxes"),
        (["--images", "x"], "--labels"),
        (["--split", "test", "--images", "x", "--labels", "y"], "not both"),
    ],
)
def test_bad_options_are_one_line_errors(args, needle) -> None:
    assert needle in _one_line_error(_run(args))


# --------------------------------------------------------------------------- end to end

REQUIRED_KEYS = {
    "model",
    "images",
    "nme_io",
    "fr_10",
    "auc_10",
    "ms_per_face",
    "fr_08",
    "auc_08",
    "regions",
    "ms_per_face_b32",
    "missed",
    "split",
    "boxes",
    "confidence_vs_error",
}


def test_cli_json_and_report_with_a_real_checkpoint(tiny_landmark_checkpoint, tmp_path) -> None:
    """A trained run by name and its checkpoint by path: side by side, --json, --report.

    With the run's own validation split and ground-truth boxes, evaluate must reproduce the
    NME_io that training recorded for that checkpoint (same crops; NME is scale-free).
    """
    import shutil

    import torch

    from facemark import paths
    from synthetic import install_synthetic_dataset

    install_synthetic_dataset(n_train=24, n_test=6, size=96)  # the frames the run trained on
    shutil.copytree(tiny_landmark_checkpoint.parent, paths.runs_dir() / "tiny")
    report = tmp_path / "report"
    args = ["--split", "val", "--json", "--report", str(report), "--worst", "3", "--threads", "1"]
    result = _run(["tiny", str(tiny_landmark_checkpoint), *args, "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # stdout holds exactly one JSON object
    assert set(data) >= {"models"} and len(data["models"]) == 2
    for row in data["models"]:
        assert REQUIRED_KEYS <= set(row), REQUIRED_KEYS - set(row)
        assert row["split"] == "val" and row["boxes"] == "gt" and row["missed"] == 0
        assert row["images"] == 4 and row["ms_per_face"] > 0 and row["ms_per_face_b32"] > 0
        assert row["val_split"] == {"val_fraction": 0.1, "seed": 0, "val_by": "identity"}
    a, b = data["models"]
    assert a["nme_io"] == pytest.approx(b["nme_io"])
    recorded = torch.load(tiny_landmark_checkpoint, weights_only=True)["metrics"]["nme_io"]
    assert a["nme_io"] == pytest.approx(recorded, rel=1e-4)
    assert {p.name for p in report.iterdir()} == REPORT_FILES
    assert json.loads((report / "summary.json").read_text())["models"] == data["models"]

    quick = ["--no-timing", "--regions", "--limit", "3", "--threads", "1"]
    table = _run(["tiny", "--split", "test", *quick])
    assert table.exit_code == 0, table.output
    assert "NME_io %" in table.stdout and "mouth" in table.stdout and "tiny" in table.stdout


def test_cli_detect_mode_counts_frames_without_detection(tiny_landmark_checkpoint, tmp_path):
    """A real (untrained) detector checkpoint that finds nothing: every frame is a failure."""
    from facemark import checkpoint, detection
    from synthetic import install_synthetic_dataset

    install_synthetic_dataset(n_train=24, n_test=6, size=96)
    det = checkpoint.save_checkpoint(
        tmp_path / "det.pt",
        {
            "task": "detector",
            "arch": detection.DEFAULT_ARCH,
            "arch_kwargs": {},
            "img_size": 96,
            "state_dict": detection.build_detector().state_dict(),
        },
    )
    args = ["--boxes", "detect", "--detector", str(det), "--det-threshold", "1.0", "--no-timing"]
    result = _run([str(tiny_landmark_checkpoint), *args, "--json", "--threads", "1"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["models"][0]
    assert row["boxes"] == "detect" and row["images"] == row["missed"] == 6 and row["found"] == 0
    assert row["nme_io"] is None and row["fr_10"] == 1.0 and row["auc_10"] == 0.0


class MeanShapeModel(Landmarker):
    """Places the mean shape in the box; ``config`` is what a training run would record."""

    def __init__(self, name: str, config: dict) -> None:
        super().__init__(torch.nn.Identity(), 64, info={"run_name": name, "config": config})
        self.name, self.config = name, config

    def predict_crops(self, crops, flip=False):
        from facemark.shape import MEAN_SHAPE

        # in crop pixels: the box is centred, its side img_size / CROP_SCALE
        side = self.img_size / transforms.CROP_SCALE
        kps = (self.img_size - 1) / 2 + MEAN_SHAPE * side / 1.8
        kps = np.repeat(kps[None].astype(np.float32), len(crops), axis=0)
        return kps, np.ones(kps.shape[:2], np.float32)


def test_val_split_follows_each_models_training_config(tmp_path) -> None:
    from synthetic import install_synthetic_dataset

    install_synthetic_dataset(n_train=24, n_test=6, size=96)
    a = MeanShapeModel("a", {"val_fraction": 0.2, "seed": 0, "val_by": "identity"})
    b = MeanShapeModel("b", {"val_fraction": 0.5, "seed": 3, "val_by": "frame"})
    result = evaluate.evaluate_models([a, b], split="val", timing=False, report=tmp_path / "r")
    ra, rb = result["models"]
    assert ra["val_split"] == a.config and rb["val_split"] == b.config
    assert ra["images"] == 4 and rb["images"] == 12  # 1 of 6 persons; 12 of 24 frames
    assert "different frames" in result["warning"]
    assert (tmp_path / "r" / "worst.png").is_file()
    forced = evaluate.evaluate_models([a, b], split="val", timing=False, val_fraction=0.5)
    assert [m["images"] for m in forced["models"]] == [12, 12]  # 3 of 6 persons; 12 frames


def test_a_loaded_run_is_scored_on_its_own_val_split(tiny_landmark_checkpoint) -> None:
    """A model passed loaded (the API) finds its training config as a path spec does; it used
    to read a key never stored and fall back to the default split (issue 23)."""
    import facemark
    from facemark import checkpoint
    from facemark.evaluate.orchestrate import _load_model

    stored = checkpoint.load_checkpoint(tiny_landmark_checkpoint, "landmarks")["config"]
    assert stored["val_fraction"] is not None
    loaded = facemark.load_model(tiny_landmark_checkpoint)
    by_object = _load_model(loaded, "cpu")[2]
    by_path = _load_model(str(tiny_landmark_checkpoint), "cpu")[2]
    assert by_object == by_path == stored
    settings = evaluate.split_settings_from_config(by_object)
    assert settings["val_fraction"] == stored["val_fraction"]


# --------------------------------------------------------------------------- subsets


def _face(yaw: float, eye_distance: float, centre=(100.0, 100.0)) -> np.ndarray:
    """68 points whose yaw proxy and outer-eye-corner distance are the given ones."""
    from facemark.shape import MEAN_SHAPE

    cx, cy = centre
    kps = np.asarray(MEAN_SHAPE, dtype=np.float64) * eye_distance + [cx, cy]
    kps[36] = [cx - eye_distance / 2, cy]
    kps[45] = [cx + eye_distance / 2, cy]
    kps[30] = [cx + yaw * eye_distance, cy + eye_distance / 2]
    return kps


def test_yaw_proxy_and_bins_on_known_faces() -> None:
    gt = np.stack([_face(y, d) for y, d in [(0.05, 20), (0.1, 30), (0.25, 45), (0.6, 80)]])
    gt[1, 30, 0] = gt[1, [36, 45], 0].mean() - 3.0  # turned the other way: 3 px of 30
    assert evaluate.yaw_proxy(gt) == pytest.approx([0.05, 0.1, 0.25, 0.6])
    assert list(evaluate.bin_index(evaluate.yaw_proxy(gt), evaluate.YAW_BINS)) == [0, 1, 2, 3]
    sizes = metrics.interocular(gt)
    assert list(evaluate.bin_index(sizes, evaluate.SIZE_BINS)) == [0, 1, 2, 3]
    # an edge belongs to the bin above it
    edges = evaluate.bin_index([0.0, 0.0999, 0.1, 0.2, 0.3, 5.0], evaluate.YAW_BINS)
    assert list(edges) == [0, 0, 1, 2, 3, 3]
    assert list(evaluate.bin_index([29.9, 30, 40, 50], evaluate.SIZE_BINS)) == [0, 1, 2, 3]


def test_confidence_quartiles() -> None:
    conf = np.array([0.8, 0.1, 0.4, 0.3, np.nan, 0.9, 0.2, 0.6, 0.5])
    quartile, edges = evaluate.confidence_quartile(conf)
    assert list(quartile) == [3, 0, 1, 1, -1, 3, 0, 2, 2]  # two faces each; a miss has none
    assert edges[0] == 0.1 and edges[-1] == 0.9
    assert list(evaluate.confidence_quartile(np.ones(5))[0]) == [0] * 5  # ties go lower
    assert list(evaluate.confidence_quartile(np.full(3, np.nan))[0]) == [-1] * 3


def test_subset_scores_put_each_face_in_its_bin() -> None:
    specs = [(0.05, 20), (0.15, 35), (0.25, 45), (0.6, 80), (0.02, 60)]
    gt = np.stack([_face(y, d) for y, d in specs])
    errors = np.array([1.0, 2.0, 9.0, 4.0, 0.0])  # px on every point; face 3 fails (9/45)
    pred = gt + errors[:, None, None] / np.sqrt(2)
    pred[4] = np.nan  # a miss: yaw bin 0, size >=50
    conf = np.array([0.9, 0.2, 0.5, 0.7, np.nan])
    out = evaluate.subset_scores(pred, gt, conf)
    nme = errors / np.array([d for _, d in specs])

    yaw = out["yaw"]
    assert [r["bin"] for r in yaw] == ["0-0.1", "0.1-0.2", "0.2-0.3", ">=0.3"]
    assert [r["faces"] for r in yaw] == [2, 1, 1, 1]
    assert yaw[0]["nme_io"] == pytest.approx(nme[0])  # the mean is over the found face
    assert yaw[0]["fr_10"] == 0.5 and yaw[0]["auc_10"] == pytest.approx(
        0.5 * (1 - 10 * nme[0]), abs=2e-3
    )
    assert [r["nme_io"] for r in yaw[1:]] == pytest.approx(nme[1:4])
    assert [r["fr_10"] for r in yaw[1:]] == [0.0, 1.0, 0.0]

    size = out["size"]
    assert [r["bin"] for r in size] == ["<30", "30-40", "40-50", ">=50"]
    assert [r["faces"] for r in size] == [1, 1, 1, 2]
    assert size[3]["nme_io"] == pytest.approx(nme[3]) and size[3]["fr_10"] == 0.5

    by_conf = out["confidence"]
    assert [r["faces"] for r in by_conf] == [1, 1, 1, 1]  # the miss has no confidence
    assert [r["nme_io"] for r in by_conf] == pytest.approx(nme[[1, 2, 3, 0]])
    assert by_conf[0]["range"][0] == 0.2 and by_conf[3]["range"][1] == 0.9
    # each bin's figures are exactly score()'s on that bin's faces
    _, whole = evaluate.score(pred[[1]], gt[[1]])
    assert by_conf[0]["auc_10"] == whole["auc_10"]


def test_subsets_are_json_safe_and_in_the_report(faces, tmp_path) -> None:
    report = tmp_path / "rep"
    result = evaluate.evaluate_models(
        [StubModel(faces, (1.0, 0.0), name="a"), StubModel(faces, (0.0, 2.0), name="b")],
        faces=faces,
        timing=False,
        report=report,
    )
    json.dumps(result, allow_nan=False)  # no NaN anywhere
    subsets = result["models"][0]["subsets"]
    assert set(subsets) == {"yaw", "size", "confidence"}
    for rows in subsets.values():
        assert len(rows) == 4
        assert set(rows[0]) >= {"bin", "faces", "nme_io", "fr_10", "auc_10"}
    assert sum(r["faces"] for r in subsets["yaw"]) == sum(r["faces"] for r in subsets["size"]) == 6
    # the stub's confidence is 1 everywhere: all six tie in Q1, the other quartiles are empty
    assert [r["faces"] for r in subsets["confidence"]] == [6, 0, 0, 0]
    assert subsets["confidence"][1]["nme_io"] is None
    summary = json.loads((report / "summary.json").read_text())
    assert summary["models"][1]["subsets"] == result["models"][1]["subsets"]
    with open(report / "subsets.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 3 * 4
    assert list(rows[0]) == ["model", "grouping", "bin", "faces", "nme_io", "fr_10", "auc_10"]
    first = next(r for r in rows if r["model"] == "b" and r["grouping"] == "confidence")
    assert int(first["faces"]) == 6
    assert float(first["nme_io"]) == pytest.approx(result["models"][1]["nme_io"], abs=1e-6)
    # a constant confidence ranks nothing: no correlation, but the pairs are counted
    ranking = result["models"][0]["confidence_vs_error"]
    assert ranking == {"points": None, "faces": None, "n_points": 6 * 68, "n_faces": 6}
    assert summary["models"][0]["confidence_vs_error"] == ranking
    tables = evaluate.subsets_tables(result)
    assert len(tables) == 4 and all(t.row_count == 4 for t in tables[:3])
    assert tables[3].row_count == 2  # confidence vs error: per point, per face


def test_cli_subsets_tables(tiny_landmark_checkpoint) -> None:
    from synthetic import install_synthetic_dataset

    install_synthetic_dataset(n_train=24, n_test=6, size=96)
    args = [str(tiny_landmark_checkpoint), str(tiny_landmark_checkpoint), "--split", "test"]
    args += ["--subsets", "--no-timing", "--threads", "1"]
    result = CliRunner().invoke(app, ["evaluate", *args], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "subsets by yaw" in out and "by face size" in out and "confidence quartile" in out
    assert "0.1-0.2" in out and ">=50" in out and "Q1 (low)" in out and "FR@0.10 %" in out
    assert "confidence vs error (Spearman rho" in out and "per point" in out and "per face" in out


def test_average_ranks_share_ties() -> None:
    assert list(metrics.average_ranks([10, 20, 20, 5])) == [2.0, 3.5, 3.5, 1.0]
    assert list(metrics.average_ranks([3, 3, 3])) == [2.0, 2.0, 2.0]
    assert list(metrics.average_ranks([0.5, -1.0, 7.0, 0.5, 0.5])) == [3.0, 1.0, 5.0, 3.0, 3.0]
    assert metrics.average_ranks([]).shape == (0,)


def test_spearman_against_hand_computed_cases() -> None:
    # no ties: rank differences d = -1, 1, -1, 1, 0, so rho = 1 - 6 * 4 / (5 * (25 - 1)) = 0.8
    assert metrics.spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    # a tie: ranks (1, 2.5, 2.5, 4) and (1, 3, 2, 4); centred, their products sum to 4.5 and
    # their squares to 4.5 and 5, so rho = 4.5 / sqrt(4.5 * 5) = sqrt(0.9)
    assert metrics.spearman([1, 2, 2, 3], [10, 30, 20, 40]) == pytest.approx(np.sqrt(0.9))
    assert metrics.spearman([1, 2, 3], [9, 4, 1]) == pytest.approx(-1.0)  # ranks, not values
    # pairs with a NaN or inf are left out; constant or too short: no correlation
    assert metrics.spearman([1, 2, np.nan, 3, 4], [1, 2, 5, np.inf, 3]) == pytest.approx(1.0)
    assert np.isnan(metrics.spearman([1, 1, 1], [1, 2, 3]))
    assert np.isnan(metrics.spearman([1.0], [2.0]))


def test_confidence_vs_error_pools_points_and_ranks_faces() -> None:
    gt = np.stack([_face(0.1, d) for d in (20.0, 40.0, 60.0, 30.0)])
    index = np.arange(3 * 68, dtype=np.float64).reshape(3, 68)
    pred = gt.copy()
    # each point off by an error (in eye distances) that grows with its index, and less sure
    pred[:3, :, 0] += (1.0 + index) * 1e-4 * metrics.interocular(gt[:3])[:, None]
    conf = np.vstack([1.0 - index / 1000.0, np.full((1, 68), np.nan)])
    pred[3] = np.nan  # a miss: no points, no confidence
    out = evaluate.confidence_vs_error(pred, gt, conf)
    assert out["points"] == pytest.approx(-1.0) and out["faces"] == pytest.approx(-1.0)
    assert (out["n_points"], out["n_faces"]) == (3 * 68, 3)
    # a confidence that rises with the error ranks it the wrong way round
    wrong = evaluate.confidence_vs_error(pred, gt, 1.0 - conf)
    assert wrong["points"] == pytest.approx(1.0) and wrong["faces"] == pytest.approx(1.0)
