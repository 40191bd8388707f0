"""The face detector: targets, decoding, NMS, canvas synthesis, inference API, training task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from facemark import boxes as boxes_mod
from facemark import detection, transforms
from facemark.boxes import GREY, box_iou, letterbox, map_boxes, nms
from facemark.checkpoint import load_checkpoint, save_checkpoint
from facemark.data import FaceSet
from facemark.data.canvas import CanvasSynthesizer, SynthConfig
from facemark.detection import (
    decode,
    detection_metrics,
    encode_targets,
    ltrb_to_raw,
    match_detections,
)
from facemark.detectors import Detections, DetectorConfig
from facemark.detectors.facemark import FacemarkDetector
from facemark.errors import CheckpointError, UsageError
from facemark.tasks.detector import DetectorDataset, DetectorTask
from synthetic import install_synthetic_dataset, random_keypoints

RED, BLUE = (255, 0, 0), (0, 0, 255)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These networks are tiny: one thread is as fast, and immune to a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _as_outputs(targets: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """The network outputs that would reproduce ``targets`` exactly."""
    heat = torch.from_numpy(targets["heatmap"])[None].clamp(1e-6, 1 - 1e-6)
    return torch.logit(heat), torch.from_numpy(ltrb_to_raw(targets["box_target"]))[None]


# --------------------------------------------------------------------------- targets


def test_encode_decode_round_trip() -> None:
    boxes = np.array(
        [[10.3, 20.0, 40.0, 61.5], [100.0, 118.0, 251.2, 300.0], [200.0, 30.0, 222.0, 58.0]],
        np.float32,
    )
    targets = encode_targets(boxes, np.zeros((0, 4)), 320, 320)
    assert targets["heatmap"].shape == (1, 40, 40)
    assert int((targets["heatmap"] == 1.0).sum()) == 3  # one exact peak per face
    heat, raw = _as_outputs(targets)
    ((decoded, scores),) = decode(heat, raw, threshold=0.99)
    order = np.argsort(decoded[:, 0])
    np.testing.assert_allclose(decoded[order], boxes[np.argsort(boxes[:, 0])], atol=1e-3)
    assert scores.shape == (3,)


def test_encode_ignore_mask_and_empty() -> None:
    ignore = np.array([[0.0, 0.0, 63.0, 63.0]])
    targets = encode_targets(np.zeros((0, 4)), ignore, 128, 128)
    assert targets["heatmap"].max() == 0 and targets["box_weight"].max() == 0
    mask = targets["heat_mask"][0]
    assert mask[:8, :8].sum() == 0 and mask[8:, 8:].min() == 1  # cells of 8 px: first 8 masked


def test_overlapping_faces_each_keep_their_peak() -> None:
    boxes = np.array([[40.0, 40.0, 120.0, 140.0], [70.0, 50.0, 150.0, 150.0]], np.float32)
    targets = encode_targets(boxes, np.zeros((0, 4)), 192, 192)
    heat, raw = _as_outputs(targets)
    ((decoded, _),) = decode(heat, raw, threshold=0.99)
    assert len(decoded) == 2
    assert box_iou(decoded, boxes).max(axis=1).min() > 0.999


def test_loss_rewards_the_targets_and_survives_empty_batches() -> None:
    boxes = np.array([[10.0, 12.0, 40.0, 50.0], [60.0, 20.0, 120.0, 100.0]], np.float32)
    targets = {k: torch.from_numpy(v)[None] for k, v in encode_targets(boxes, [], 128, 128).items()}
    perfect, parts = detection.detection_loss(
        *_as_outputs(encode_targets(boxes, [], 128, 128)), targets
    )
    assert float(parts["giou"]) < 1e-4
    heat = torch.full((1, 1, 16, 16), -4.6, requires_grad=True)
    raw = torch.zeros((1, 4, 16, 16), requires_grad=True)
    naive, _ = detection.detection_loss(heat, raw, targets)
    assert perfect.item() < 0.1 * naive.item()
    none = {k: torch.from_numpy(v)[None] for k, v in encode_targets([], [], 128, 128).items()}
    empty, _ = detection.detection_loss(heat, raw, none)
    empty.backward()
    assert torch.isfinite(empty) and torch.isfinite(heat.grad).all() and raw.grad.abs().sum() == 0


# --------------------------------------------------------------------------- NMS and metrics


def test_box_iou_and_nms() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.5]], float)
    scores = np.array([0.6, 0.9, 0.5, 0.3])
    assert box_iou(boxes[:1], boxes[2:3])[0, 0] == 0
    np.testing.assert_allclose(box_iou(boxes[:1], boxes[:1]), [[1.0]])
    keep = nms(boxes, scores, iou_threshold=0.4)
    assert keep.tolist() == [1, 2]  # best of the cluster first, the far box survives
    assert nms(np.zeros((0, 4)), np.zeros(0)).shape == (0,)


def test_matching_and_metrics() -> None:
    gt = np.array([[0, 0, 10, 10], [50, 50, 60, 60]], float)
    dets = np.array([[0, 0, 10, 10], [0.5, 0, 10, 10], [50, 50, 60, 61], [80, 80, 90, 90]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    tp, counted = match_detections(dets, scores, gt, ignore=np.array([[79, 79, 91, 91]]))
    assert tp.tolist() == [True, False, True, False]  # a duplicate is a false positive
    assert counted.tolist() == [True, True, True, False]  # inside an ignored face: not counted
    m = detection_metrics(
        [(dets, scores, gt, np.zeros((0, 4))), (np.zeros((0, 4)), np.zeros(0), gt, [])]
    )
    assert m["recall"] == pytest.approx(0.5)  # 2 of 4 faces at threshold 0.5
    assert m["fp_per_image"] == pytest.approx(1.0)  # the duplicate and the far box, 2 images
    assert m["miss_rate"] == pytest.approx(0.75)  # FP budget 0.1/image: only the first detection
    assert 0 < m["ap50"] < 1


# --------------------------------------------------------------------------- canvases


def _red_box_frames(n: int, size: int = 96, seed: int = 0) -> FaceSet:
    """Blue frames whose face box (THE box of their keypoints) is painted solid red."""
    rng = np.random.default_rng(seed)
    images, kps = [], []
    for _ in range(n):
        k = random_keypoints(rng, size)
        x0, y0, x1, y1 = transforms.face_box_from_keypoints(k)
        img = np.zeros((size, size, 3), np.uint8)
        img[:] = BLUE
        img[int(np.ceil(y0)) : int(np.floor(y1)) + 1, int(np.ceil(x0)) : int(np.floor(x1)) + 1] = (
            RED
        )
        images.append(img)
        kps.append(k)
    return FaceSet([f"P_{i}_00.jpg" for i in range(n)], images, np.stack(kps))


class _BlackBackground(CanvasSynthesizer):
    def _background(self, rng, w, h):
        return np.zeros((h, w, 3), np.uint8)


def _red(img: np.ndarray) -> np.ndarray:
    return (img[..., 0] > 200) & (img[..., 1] < 55) & (img[..., 2] < 55)


def test_canvas_boxes_match_painted_faces() -> None:
    """Every target box covers its painted face exactly, and no face goes unlabelled."""
    faces = _red_box_frames(12)
    frame_w = float(np.median(faces.boxes()[:, 2] - faces.boxes()[:, 0]))
    cfg = SynthConfig(
        p_rotate=0.0, p_feather=0.0, photometric=None, paste_exposure=0.0, p_paste_gray=0.0,
        max_cover=0.0,
    )  # fmt: skip
    synth = _BlackBackground(faces, 128, cfg)
    n_faces = 0
    for i, kind in enumerate(["scene", "grid", "closeup", "negative"] * 8):
        c = synth.canvas(np.random.default_rng(i), kind=kind)
        assert c.image.shape == (128, 128, 3) and c.image.dtype == np.uint8
        red = _red(c.image)
        ys, xs = np.mgrid[0:128, 0:128]
        covered = np.zeros_like(red)
        if kind == "negative":
            assert len(c.boxes) == 0 and not red.any()
        for box in np.concatenate([c.boxes, c.ignore]):
            tol = 1.5 + (box[2] - box[0]) / frame_w
            covered |= (
                (xs >= box[0] - tol)
                & (xs <= box[2] + tol)
                & (ys >= box[1] - tol)
                & (ys <= box[3] + tol)
            )
        assert not (red & ~covered).any(), f"canvas {i} ({kind}): red pixels outside every box"
        for box in c.boxes:
            n_faces += 1
            tol = 1.5 + (box[2] - box[0]) / frame_w
            inner = (
                (xs >= box[0] + tol)
                & (xs <= box[2] - tol)
                & (ys >= box[1] + tol)
                & (ys <= box[3] - tol)
            )
            assert red[inner].mean() > 0.97, f"canvas {i} ({kind}): box {box} is not on its face"
    assert n_faces > 30


def test_canvas_is_reproducible_and_varies() -> None:
    faces = _red_box_frames(6)
    synth = CanvasSynthesizer(faces, 96)
    a = synth.canvas(np.random.default_rng([1, 2, 3]))
    b = synth.canvas(np.random.default_rng([1, 2, 3]))
    c = synth.canvas(np.random.default_rng([1, 2, 4]))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.boxes, b.boxes)
    assert not np.array_equal(a.image, c.image)


def test_dataset_items_and_epochs() -> None:
    faces = _red_box_frames(5)
    train = DetectorDataset(faces, 64, train=True, seed=3)
    item = train[2]
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (3, 64, 64)
    assert item["heatmap"].shape == (1, 8, 8) and item["boxes"].shape == (detection.MAX_BOXES, 4)
    assert torch.equal(train[2]["image"], item["image"])
    train.set_epoch(1)
    assert not torch.equal(train[2]["image"], item["image"])
    val = DetectorDataset(faces, 64, train=False)
    assert len(val) == 2 * len(faces)
    frame = val[len(faces)]  # the first real frame, letterboxed
    assert int(frame["kind"]) == 1 and int(frame["num_boxes"]) == 1
    _, M = letterbox(faces.images[0], 64)
    np.testing.assert_allclose(
        frame["boxes"][0].numpy(), map_boxes(faces.boxes()[:1], M)[0], atol=1e-5
    )
    with pytest.raises(UsageError):
        DetectorDataset(faces, 100, train=True)


def test_letterbox_maps_pixels() -> None:
    img = np.zeros((90, 200, 3), np.uint8)
    img[40:60, 90:110] = 255
    canvas, M = letterbox(img, 64)
    assert canvas.shape == (32, 64, 3)  # 200 -> 64 wide, 90 -> 29 rows, padded to 32
    assert (canvas[29:] == GREY).all() and not (canvas[:29] == GREY).all()
    box = map_boxes(np.array([[89.5, 39.5, 109.5, 59.5]]), M)[0]  # outer edges of the square
    ys, xs = np.nonzero(canvas[:29, :, 0] > 160)  # the square, not the grey padding
    assert abs(xs.min() - box[0]) <= 1 and abs(xs.max() - box[2]) <= 1
    assert abs(ys.min() - box[1]) <= 1 and abs(ys.max() - box[3]) <= 1
    square, _ = letterbox(img, 64, pad_to=(64, 64))
    assert square.shape == (64, 64, 3) and (square[32:] == GREY).all()


# --------------------------------------------------------------------------- inference API


@pytest.fixture
def detector() -> FacemarkDetector:
    """An untrained network whose heatmap sits around 0.5, so thresholds cut both ways."""
    torch.manual_seed(0)
    model = detection.build_detector(width=0.25)
    torch.nn.init.zeros_(model.heat[-1].bias)
    return FacemarkDetector(model, input_size=64)


def _with(detector: FacemarkDetector, **options) -> FacemarkDetector:
    """The same network with other detection options (they are the detector's config now)."""
    return FacemarkDetector(detector.model, detector.input_size, config=DetectorConfig(**options))


def test_detect_on_blank_image_is_empty_arrays(detector: FacemarkDetector) -> None:
    found = _with(detector, threshold=1.0).detect(np.zeros((50, 70, 3), np.uint8))
    boxes, scores = found.boxes, found.scores
    assert boxes.shape == (0, 4) and boxes.dtype == np.float32
    assert scores.shape == (0,) and scores.dtype == np.float32


def test_detect_shapes_order_and_limits(detector: FacemarkDetector) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(120, 90, 3), dtype=np.uint8)
    everything = _with(detector, threshold=0.0, min_face=0)
    found = everything.detect(image)
    boxes, scores = found.boxes, found.scores
    assert len(boxes) > 3 and boxes.shape == (len(scores), 4)
    assert (np.diff(scores) <= 0).all()
    assert box_iou(boxes, boxes)[np.triu_indices(len(boxes), 1)].max() <= boxes_mod.NMS_IOU + 1e-6
    top = _with(detector, threshold=0.0, min_face=0, max_faces=2).detect(image).boxes
    np.testing.assert_array_equal(top, boxes[:2])
    wide = _with(detector, threshold=0.0, min_face=30).detect(image).boxes
    assert ((wide[:, 2] - wide[:, 0]) >= 30).all()
    # grayscale, RGBA and PIL inputs are accepted and give the same answer
    gray = image[..., 0]
    np.testing.assert_array_equal(
        everything.detect(gray).boxes,
        everything.detect(np.repeat(gray[..., None], 3, 2)).boxes,
    )
    rgba = np.concatenate([image, np.full((120, 90, 1), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(everything.detect(rgba).boxes, boxes)
    np.testing.assert_array_equal(everything.detect(Image.fromarray(image)).boxes, boxes)
    with pytest.raises(UsageError):
        detector.detect(image.astype(np.float32))
    with pytest.raises(UsageError):
        _with(detector, threshold=1.5)


def test_detect_batch_agrees_with_detect(detector: FacemarkDetector) -> None:
    rng = np.random.default_rng(1)
    images = [
        rng.integers(0, 256, size=s, dtype=np.uint8)
        for s in [(60, 80, 3), (120, 160, 3), (30, 40, 3)]
    ]
    cut = float(np.median(_with(detector, threshold=0.0, min_face=0).detect(images[0]).scores))
    at_cut = _with(detector, threshold=cut, min_face=0)
    batch = at_cut.detect_batch(images)
    assert len(batch) == 3
    for image, found in zip(images, batch, strict=True):
        single = at_cut.detect(image)
        assert len(single.boxes) == len(found.boxes) > 0
        np.testing.assert_allclose(found.boxes, single.boxes, atol=1e-3)
        np.testing.assert_allclose(found.scores, single.scores, atol=1e-5)
    assert detector.detect_batch([]) == []


def test_boxes_come_back_in_image_pixels() -> None:
    """Letterbox and its inverse: a box in network pixels maps back to the same image box."""
    _, M = letterbox(np.zeros((300, 500, 3), np.uint8), 64)
    box = np.array([[120.0, 80.0, 220.0, 210.0]], np.float32)
    boxes, scores = map_boxes(box, M), np.array([0.9], np.float32)
    keep = nms(boxes, scores)  # what FacemarkDetector.detect_batch does with decoded boxes
    back = Detections(map_boxes(boxes[keep], transforms.invert_affine(M)), scores[keep])
    back = back.finish(DetectorConfig(min_face=0))
    np.testing.assert_allclose(back.boxes, box, atol=1e-3)


# ------------------------------------------------------------------- checkpoints and training


def test_detector_refuses_a_landmark_checkpoint(tmp_path) -> None:
    path = save_checkpoint(
        tmp_path / "landmarks.pt",
        {"task": "landmarks", "arch": "heatmap", "arch_kwargs": {}, "state_dict": {}},
    )
    with pytest.raises(CheckpointError, match="landmarks model, not a detector"):
        FacemarkDetector.from_checkpoint(path)
    data = torch.load(path, weights_only=True)
    with pytest.raises(CheckpointError, match="landmarks model, not a detector"):
        FacemarkDetector.from_checkpoint(data)
    with pytest.raises(CheckpointError, match="not found"):
        FacemarkDetector.from_checkpoint(tmp_path / "missing.pt")


def _train_args(root, img_size: int, name: str) -> list[str]:
    return [
        "train", "--task", "detector", "--epochs", "1", "--batch-size", "4",
        "--img-size", str(img_size), "--device", "cpu", "--workers", "0",
        "--name", name, "--data", str(root),
    ]  # fmt: skip


def test_train_detector_cli_smoke(tmp_path) -> None:
    """`facemark train --task detector` end to end on synthetic data, then load and detect."""
    from facemark import paths
    from facemark.cli import app

    root = install_synthetic_dataset(tmp_path / "ds", n_train=18, n_test=3, size=96)
    result = CliRunner().invoke(app, _train_args(root, 64, "det"))
    assert result.exit_code == 0, result.output
    best = paths.runs_dir() / "det" / "best.pt"
    data = load_checkpoint(best, task="detector")
    assert data["img_size"] == 64 and data["arch"] == "facedet"
    assert {"miss_rate", "ap50", "recall", "frame_recall", "score_offset"} <= set(data["metrics"])
    det = FacemarkDetector.from_checkpoint(best, config=DetectorConfig(threshold=0.0))
    assert det.input_size == 64 and np.isfinite(det.score_offset)
    found = det.detect(np.asarray(Image.new("RGB", (96, 80), (90, 120, 60))))
    assert found.boxes.shape == (len(found.scores), 4)
    bad = CliRunner().invoke(app, _train_args(root, 100, "bad"))
    assert bad.exit_code == 2 and "multiple of 32" in bad.output
    bad = CliRunner().invoke(app, [*_train_args(root, 64, "bad"), "--arch", "heatmap"])
    assert bad.exit_code == 2 and "unknown detector arch 'heatmap'" in bad.output


def test_validation_calibrates_the_default_threshold() -> None:
    """A model whose raw peak scores are all 0.2 still reads 0.5 at its best operating point."""
    val = DetectorDataset(_red_box_frames(4), 64, train=False)
    batch = next(iter(torch.utils.data.DataLoader(val, batch_size=len(val))))
    low = float(torch.logit(torch.tensor(0.2)))

    class Oracle(torch.nn.Module):  # perfect boxes from the targets, weak scores
        stride = detection.STRIDE

        def forward(self, x):
            heat = torch.where(batch["heatmap"] >= 1, low, -9.0)
            return heat, ltrb_to_raw(batch["box_target"])

    metrics = DetectorTask().validate(Oracle(), [batch], "cpu")
    assert metrics["recall"] == pytest.approx(1.0) and metrics["fp_per_image"] == 0.0
    assert metrics["frame_recall"] == pytest.approx(1.0) and metrics["miss_rate"] == 0.0
    assert metrics["score_offset"] == pytest.approx(low, abs=1e-4)


def test_empty_validation_split() -> None:
    empty = FaceSet([], [], np.zeros((0, 68, 2), np.float32))
    assert len(DetectorDataset(empty, 64, train=False)) == 0
