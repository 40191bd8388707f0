"""YuNet port: parity with the authors' ONNX export, shipped weights, decode, policy, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from facemark.boxes import box_iou, nms
from facemark.checkpoint import save_checkpoint
from facemark.detectors.base import DetectorConfig
from facemark.detectors.yunet import (
    NMS_IOU,
    OUTPUT_NAMES,
    YuNetDetector,
    YuNetNet,
    calibrate_scores,
    decode_outputs,
    detection_passes,
    raw_score_for,
)
from facemark.errors import CheckpointError
from synthetic import load_tool

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
YUNET_SRC = SHARED / "models" / "yunet"
PHOTOS = SHARED / "photos"
FIXTURE = ROOT / "tests" / "fixtures" / "yunet_parity.npz"
WEIGHTS = ROOT / "src" / "facemark" / "weights"
#: Max abs difference to the ONNX outputs (measured: below 5e-6).
PARITY_TOL = 1e-3
#: Max abs difference between the shipped float16 weights and the float32 port (measured:
#: below 1e-2 on the box and point offsets, in units of the stride; 3e-3 on probabilities).
FP16_TOL = 3e-2


reference = load_tool("yunet_reference")


@pytest.fixture(scope="module")
def fixture():
    data = np.load(FIXTURE)
    return data, json.loads(str(data["recipe_json"]))


def _needs_shared() -> None:
    if not (YUNET_SRC / "yunet_n.pth").is_file():
        pytest.skip(f"the authors' YuNet checkpoints are not at {YUNET_SRC}")


@pytest.fixture(scope="module")
def converted():
    """The authors' checkpoints converted at float32 on the fly, per variant."""
    _needs_shared()
    convert = load_tool("convert_yunet").convert
    return {v: convert(YUNET_SRC / f"yunet_{v}.pth", v, torch.float32) for v in ("n", "s")}


def _inputs(recipe: dict, need_photo: bool = False) -> dict[str, np.ndarray]:
    """The fixture's inputs, remade from the recipe; the photo only when it decodes the same."""
    out = {}
    for item in recipe["inputs"]:
        if item["kind"] == "synthetic":
            arr = reference.synthetic_image(item["seed"], item["height"], item["width"])
            assert reference.sha256_array(arr) == item["sha256"], "synthetic recipe changed"
        else:
            path = PHOTOS / item["file"]
            if not path.is_file():
                if need_photo:
                    pytest.skip(f"photo {path} not available")
                continue
            arr = reference.photo_input(path)
            if reference.sha256_array(arr) != item["sha256"]:
                if need_photo:
                    pytest.skip("this Pillow/libjpeg decodes the photo differently")
                continue
        out[item["name"]] = arr
    return out


def _net(payload: dict) -> YuNetNet:
    net = YuNetNet(payload["arch_kwargs"]["variant"])
    net.load_state_dict(payload["state_dict"])
    return net.eval()


def _x(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0


def _onnx(data, variant: str, name: str) -> list[np.ndarray]:
    return [data[f"{variant}__{name}__{o}"] for o in OUTPUT_NAMES]


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("variant", ["n", "s"])
def test_parity_with_onnx_export(variant, converted, fixture):
    data, recipe = fixture
    net = _net(converted[variant])
    inputs = _inputs(recipe)
    assert {"synthetic_0", "synthetic_1"} <= set(inputs)
    for name, rgb in inputs.items():
        with torch.inference_mode():
            outs = net(_x(rgb))
        for out_name, ours, theirs in zip(
            OUTPUT_NAMES, outs, _onnx(data, variant, name), strict=True
        ):
            assert ours.shape == theirs.shape, (name, out_name)
            diff = float(np.abs(ours.numpy() - theirs).max())
            assert diff < PARITY_TOL, f"{variant} {name} {out_name}: {diff:.2e}"
        # BatchNorm folded into the convs (what the detector runs) gives the same outputs
        fused = _net(converted[variant]).fuse_bn()
        with torch.inference_mode():
            for a, b in zip(fused(_x(rgb)), outs, strict=True):
                assert float((a - b).abs().max()) < 1e-4


@pytest.mark.parametrize("variant", ["n", "s"])
def test_shipped_fp16_weights_match_fp32_port(variant, converted, fixture):
    _, recipe = fixture
    det = YuNetDetector.from_checkpoint(WEIGHTS / f"yunet_{variant}.pt")
    assert det.version.startswith(f"yunet_{variant}-") and len(det.version) == 8 + 12
    meta = det.info["metadata"]
    assert meta["licence"] == "Apache-2.0" and meta["source_commit"].startswith("0047ac24")
    assert 0.0 < det.score_threshold < 1.0
    ref_net = _net(converted[variant])
    for name, rgb in _inputs(recipe).items():
        with torch.inference_mode():
            ours = det.net(_x(rgb))
            theirs = ref_net(_x(rgb))
        for out_name, a, b in zip(OUTPUT_NAMES, ours, theirs, strict=True):
            diff = float((a - b).abs().max())
            assert diff < FP16_TOL, f"{variant} {name} {out_name}: {diff:.2e}"


def test_shipped_weights_load_without_shared():
    for variant in ("n", "s"):
        det = YuNetDetector.from_checkpoint(WEIGHTS / f"yunet_{variant}.pt")
        assert det.variant == variant and det.name == "yunet"
        (res,) = det.detect_batch([np.zeros((100, 80, 3), np.uint8)])
        assert res.boxes.shape == (0, 4) and res.points.shape == (0, 5, 2)


# --------------------------------------------------------------------------- decode + detect


def test_decode_priors_and_layout():
    h, w = 64, 96
    counts = [(h // s) * (w // s) for s in (8, 16, 32)]
    cls = [np.full((1, n, 1), 0.01, np.float32) for n in counts]
    obj = [np.full((1, n, 1), 0.01, np.float32) for n in counts]
    box = [np.zeros((1, n, 4), np.float32) for n in counts]
    kps = [np.zeros((1, n, 10), np.float32) for n in counts]
    # one confident cell: stride 16, row 1, column 2; box offset (0.5, 0.25), size e^0 * 16
    cell = 1 * (w // 16) + 2
    cls[1][0, cell], obj[1][0, cell] = 0.81, 1.0
    box[1][0, cell] = (0.5, 0.25, 0.0, np.log(2.0))
    kps[1][0, cell] = np.arange(10) / 10
    ((boxes, scores, points),) = decode_outputs([*cls, *obj, *box, *kps], (h, w), score_floor=0.5)
    assert scores.tolist() == pytest.approx([0.9])  # sqrt(0.81 * 1)
    cx, cy = 2 * 16 + 0.5 * 16, 1 * 16 + 0.25 * 16
    np.testing.assert_allclose(boxes[0], [cx - 8, cy - 16, cx + 8, cy + 16], atol=1e-5)
    expect = np.array([32.0, 16.0]) + (np.arange(10) / 10).reshape(5, 2) * 16
    np.testing.assert_allclose(points[0], expect, atol=1e-5)
    with pytest.raises(ValueError):
        decode_outputs([*cls, *obj, *box, *kps], (h + 32, w))


def test_calibration_maps_operating_score_to_half():
    assert calibrate_scores(np.array([0.6]), 0.6)[0] == pytest.approx(0.5, abs=1e-6)
    raw = np.linspace(0.01, 0.99, 50)
    cal = calibrate_scores(raw, 0.6)
    assert np.all(np.diff(cal) > 0) and cal.min() > 0 and cal.max() < 1
    for t in (0.05, 0.3, 0.5, 0.9):
        assert calibrate_scores(np.array([raw_score_for(t, 0.6)]), 0.6)[0] == pytest.approx(t)


def _onnx_faces(data, variant, name, hw, score_threshold, threshold=0.5):
    boxes, raw, points = decode_outputs(_onnx(data, variant, name), hw, score_floor=0.05)[0]
    scores = calibrate_scores(raw, score_threshold)
    keep = scores >= threshold
    boxes, scores, points = boxes[keep], scores[keep], points[keep]
    keep = nms(boxes, scores, NMS_IOU)
    return boxes[keep], scores[keep], points[keep]


@pytest.mark.parametrize("variant", ["n", "s"])
def test_detect_real_photo_matches_onnx(variant, converted, fixture):
    data, recipe = fixture
    rgb = _inputs(recipe, need_photo=True)["photo"]
    h, w = rgb.shape[:2]
    payload = {"format": "facemark-checkpoint", "format_version": 1, **converted[variant]}
    # at its own size, the detector's network input is exactly the fixture's input
    det = YuNetDetector.from_checkpoint(payload, config=DetectorConfig(det_size=w, min_face=0))
    res = det.detect(rgb)
    boxes, scores, points = _onnx_faces(data, variant, "photo", (h, w), det.score_threshold)
    assert len(res) == len(boxes) == 6  # the six faces of the photo, nothing else
    order = np.argsort(-scores, kind="stable")
    np.testing.assert_allclose(res.boxes, boxes[order], atol=1e-2)
    np.testing.assert_allclose(res.scores, scores[order], atol=1e-4)
    np.testing.assert_allclose(res.points, points[order], atol=1e-2)
    # points: the eye on the image's left (the subject's right eye) first, eyes above mouth
    assert np.all(res.points[:, 0, 0] < res.points[:, 1, 0])
    assert np.all(res.points[:, 3, 0] < res.points[:, 4, 0])
    assert np.all(res.points[:, :2, 1].max(1) < res.points[:, 3:, 1].min(1))
    # the default policy (upscaled to 320) finds the same six faces
    auto = YuNetDetector.from_checkpoint(payload, config=DetectorConfig(min_face=0)).detect(rgb)
    assert len(auto) == 6
    assert np.all(box_iou(auto.boxes, res.boxes).max(1) > 0.7)


def _test_images(recipe: dict) -> list[np.ndarray]:
    images = [
        reference.synthetic_image(0, 160, 160),
        reference.synthetic_image(1, 128, 224),
        reference.synthetic_image(2, 160, 160),  # same canvas as the first: batched together
        np.repeat(np.repeat(reference.synthetic_image(3, 180, 240), 3, 0), 3, 1),  # 540 x 720
        reference.synthetic_image(4, 100, 60),  # upscaled to 320
    ]
    photo = _inputs(recipe).get("photo")
    if photo is not None:
        images += [photo, np.ascontiguousarray(photo[::-1])]
    return images


@pytest.mark.parametrize("variant", ["n", "s"])
def test_batch_equals_single(variant, fixture):
    _, recipe = fixture
    cfg = DetectorConfig(threshold=0.1, min_face=0)
    det = YuNetDetector.from_checkpoint(WEIGHTS / f"yunet_{variant}.pt", config=cfg)
    images = _test_images(recipe)
    batch = det.detect_batch(images)
    assert len(batch) == len(images)
    found = 0
    for image, res in zip(images, batch, strict=True):
        single = det.detect(image)
        assert len(single) == len(res)
        np.testing.assert_allclose(res.scores, single.scores, atol=1e-5)
        np.testing.assert_allclose(res.boxes, single.boxes, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(res.points, single.points, atol=1e-5, rtol=1e-5)
        assert res.boxes.dtype == res.scores.dtype == res.points.dtype == np.float32
        found += len(res)
    assert found > 0
    assert det.detect_batch([]) == []


def test_threshold_and_options():
    img = reference.synthetic_image(1, 128, 224)
    low = YuNetDetector.from_checkpoint(
        WEIGHTS / "yunet_s.pt", config=DetectorConfig(threshold=0.05, min_face=0)
    ).detect(img)
    high = YuNetDetector.from_checkpoint(
        WEIGHTS / "yunet_s.pt", config=DetectorConfig(threshold=0.4, min_face=0)
    ).detect(img)
    assert len(low) > len(high)
    assert np.all(np.diff(low.scores) <= 0) and np.all(low.scores >= 0.05)
    capped = YuNetDetector.from_checkpoint(
        WEIGHTS / "yunet_s.pt", config=DetectorConfig(threshold=0.05, min_face=0, max_faces=1)
    ).detect(img)
    assert len(capped) == 1 and capped.scores[0] == pytest.approx(low.scores[0])


# --------------------------------------------------------------------------- policy


def test_detection_passes_policy():
    assert detection_passes(100, 60) == ((320, None),)  # small: upscaled to 320
    assert detection_passes(480, 320) == ((480, None),)  # own size
    assert detection_passes(640, 427) == ((640, None),)
    assert detection_passes(1000, 1500) == ((640, None),)  # photo: YuNet's 640
    assert detection_passes(1600, 1067) == ((640, None),)
    big = detection_passes(3000, 4000)  # 12 MP: coarse pass + fine pass at a quarter size
    assert big == ((640, None), (992, 200.0))  # rounded down: a 1/4 reduction holds it
    assert detection_passes(1700, 1200) == ((640, None), (960, 85.0))
    assert detection_passes(2903, 4352) == ((640, None), (1088, pytest.approx(217.6)))
    assert detection_passes(6000, 9000)[1][0] == 1280
    assert detection_passes(3000, 4000, det_size=960) == ((960, None),)
    for h, w in [(10, 10), (333, 777), (2000, 3001), (5000, 100)]:
        for size, _ in detection_passes(h, w):
            assert size >= 320


# --------------------------------------------------------------------------- errors


def _payload(**changes):
    net = YuNetNet("s")
    data = {
        "format": "facemark-checkpoint",
        "format_version": 1,
        "task": "detector",
        "arch": "yunet",
        "arch_kwargs": {"variant": "s"},
        "state_dict": net.state_dict(),
    }
    data.update(changes)
    return data


def test_wrong_checkpoints_raise_checkpoint_error(tmp_path):
    YuNetDetector.from_checkpoint(_payload())  # the reference payload loads
    bad = [
        _payload(task="landmarks"),
        _payload(arch="facedet"),
        _payload(arch_kwargs={"variant": "xl"}),
        _payload(arch_kwargs={"variant": "n"}),  # s weights into the n network
        _payload(state_dict={"stem.conv.weight": torch.zeros(1)}),
        {"format": "something else"},
        _payload(format_version=99),
    ]
    for data in bad:
        with pytest.raises(CheckpointError):
            YuNetDetector.from_checkpoint(data)
    path = save_checkpoint(
        tmp_path / "lm.pt",
        {
            k: v
            for k, v in _payload(task="landmarks").items()
            if k not in ("format", "format_version")
        },
    )
    with pytest.raises(CheckpointError):
        YuNetDetector.from_checkpoint(path)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        YuNetDetector.from_checkpoint(junk)
    bundled = WEIGHTS / "detector.pt"
    if bundled.is_file():  # facemark's own detector is not a YuNet
        with pytest.raises(CheckpointError):
            YuNetDetector.from_checkpoint(bundled)
