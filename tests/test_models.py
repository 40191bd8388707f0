"""Landmark networks (shapes, exact sub-pixel decoding, learning) and the Landmarker."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facemark import models, transforms
from facemark.checkpoint import save_checkpoint
from facemark.errors import CheckpointError, UsageError
from facemark.landmarker import Landmarker
from facemark.shape import NUM_POINTS
from synthetic import paint_face, random_keypoints

SIZE = 64  # small inputs keep these tests fast; every arch accepts it
ARCHS = list(models.ARCHS)


def _model(arch: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return models.build_landmark_model(arch, img_size=SIZE, **kwargs)


def _batch(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic painted faces already at crop size, with their keypoints in crop pixels."""
    rng = np.random.default_rng(seed)
    images, kps = [], []
    for _ in range(n):
        k = random_keypoints(rng, SIZE)
        images.append(np.asarray(paint_face(k, SIZE, rng)))
        kps.append(k)
    return transforms.to_tensor(np.stack(images)), torch.from_numpy(np.stack(kps))


def _fractional_kps(b: int, seed: int = 1) -> torch.Tensor:
    """Sub-pixel targets spread over the crop's interior (what integer labels can't show)."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, NUM_POINTS, 2, generator=g) * (SIZE - 16) + 8


def _perfect_outputs(model: torch.nn.Module, kps: torch.Tensor) -> torch.Tensor:
    """Raw outputs that encode ``kps`` exactly, built by hand for each design."""
    b = kps.shape[0]
    if isinstance(model, models.HeatmapNet):
        g, s = model.grid, model.stride
        u = (kps + 0.5) / s - 0.5
        out = torch.zeros(b, 3, NUM_POINTS, g, g)
        cells = torch.arange(g, dtype=torch.float32)
        out[:, 1] = u[..., 0, None, None] - cells[None, None, None, :]  # every cell votes right
        out[:, 2] = u[..., 1, None, None] - cells[None, None, :, None]
        cx, cy = u[..., 0].round().long(), u[..., 1].round().long()
        out[:, 0].view(b, NUM_POINTS, -1).scatter_(-1, (cy * g + cx)[..., None], 20.0)
        return out
    if isinstance(model, models.IntegralNet):
        # Bilinear weights on the four cells around the point: their expectation is exact.
        g, s = model.grid, model.stride
        c = (kps - (s - 1) / 2) / s
        lo = c.floor().long()
        frac = c - lo
        prob = torch.zeros(b, NUM_POINTS, g, g)
        for dy in (0, 1):
            for dx in (0, 1):
                wx = frac[..., 0] if dx else 1 - frac[..., 0]
                wy = frac[..., 1] if dy else 1 - frac[..., 1]
                idx = ((lo[..., 1] + dy) * g + lo[..., 0] + dx)[..., None]
                prob.view(b, NUM_POINTS, -1).scatter_add_(-1, idx, (wx * wy)[..., None])
        return prob.clamp_min(1e-30).log()
    if isinstance(model, models.RegressionNet):
        out = torch.zeros(b, 2, NUM_POINTS, 2)
        out[:, 0] = (kps - model.mean_shape) / (SIZE / 4)
        return out
    if isinstance(model, models.UdacityNet):
        centre, unit = model._scale()
        return (kps - centre) / unit
    raise AssertionError(f"no perfect outputs for {type(model).__name__}")


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_loss_decode_shapes(arch: str) -> None:
    model = _model(arch)
    images, kps = _batch(3)
    out = model(images)
    loss = model.loss(out, kps)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    with torch.no_grad():
        pts, conf = model.decode(model(images))
    assert pts.shape == (3, NUM_POINTS, 2) and conf.shape == (3, NUM_POINTS)
    assert torch.isfinite(pts).all() and (conf >= 0).all() and (conf <= 1).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_decode_of_perfect_outputs_is_subpixel_exact(arch: str) -> None:
    model = _model(arch)
    kps = _fractional_kps(2)
    pts, conf = model.decode(_perfect_outputs(model, kps))
    assert torch.allclose(pts, kps, atol=1e-3), (pts - kps).abs().max()
    # the perfect encoding also scores a lower loss than a one-pixel-off one
    assert model.loss(_perfect_outputs(model, kps), kps) < model.loss(
        _perfect_outputs(model, kps + 1.0), kps
    )


def test_heatmap_confidence_follows_peak_sharpness() -> None:
    model = _model("heatmap")
    kps = _fractional_kps(1)
    sharp = _perfect_outputs(model, kps)
    flat = sharp.clone()
    flat[:, 0] = 0.0  # uniform scores: the point could be anywhere
    _, c_sharp = model.decode(sharp)
    _, c_flat = model.decode(flat)
    assert (c_sharp > 0.99).all() and (c_flat < 0.5).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_overfits_one_small_batch(arch: str) -> None:
    model = _model(arch, **({"dropout": 0.0} if arch == "udacity" else {}))
    images, kps = _batch(4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    losses = []
    for _ in range(60):
        loss = model.loss(model(images), kps)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3]), (losses[:3], losses[-5:])


@pytest.mark.parametrize("arch", ARCHS)
def test_channels_last_and_autocast_give_the_same_answer(arch: str) -> None:
    """The GPU path (channels-last memory, bf16 autocast) checked on the CPU: same layout
    semantics, and the output layer stays float32 under autocast."""
    model = _model(arch).eval()
    images, kps = _batch(2)
    with torch.no_grad():
        ref, _ = model.decode(model(images))
        model_cl = model.to(memory_format=torch.channels_last)
        out = model_cl(images.contiguous(memory_format=torch.channels_last))
        got, _ = model_cl.decode(out)
        assert torch.allclose(got, ref, atol=1e-3)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model_cl(images)
            loss = model_cl.loss(out, kps)
        assert out.dtype == torch.float32 and torch.isfinite(loss)


def test_bad_arch_and_size_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown arch 'nope'"):
        models.build_landmark_model("nope")
    with pytest.raises(UsageError, match="multiple of 32"):
        models.build_landmark_model("heatmap", img_size=100)
    with pytest.raises(UsageError, match="does not accept"):
        models.build_landmark_model("heatmap", colour="red")


def test_arch_variants_parse_into_keyword_arguments() -> None:
    name, kwargs = models.parse_arch("heatmap:stride=16,neck=96,widths=16x32x64x96x128,sigma=0.5")
    assert name == "heatmap"
    assert kwargs == {"stride": 16, "neck": 96, "widths": (16, 32, 64, 96, 128), "sigma": 0.5}
    model = models.build_landmark_model(name, img_size=SIZE, **kwargs)
    assert model.grid == SIZE // 16
    for bad in ("heatmap:stride", "heatmap:stride=fast", "nope:stride=8"):
        with pytest.raises(UsageError):
            models.parse_arch(bad)
    with pytest.raises(UsageError, match="cannot be built"):
        models.build_landmark_model("heatmap", img_size=SIZE, widths=(8, 16))


# --------------------------------------------------------------------------- Landmarker


class _Centroid(torch.nn.Module):
    """A stand-in network whose every point is the brightness centroid of its crop: exact
    under the crop's resampling, so it checks the geometry of the inference path."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(1)

    def decode(self, gray: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = gray - gray.amin(dim=(1, 2), keepdim=True)
        w = w / w.sum(dim=(1, 2), keepdim=True)
        idx = torch.arange(gray.shape[-1], dtype=torch.float32)
        xy = torch.stack([(w.sum(1) * idx).sum(-1), (w.sum(2) * idx).sum(-1)], -1)
        return xy[:, None].expand(-1, NUM_POINTS, 2).clone(), torch.ones(gray.shape[0], NUM_POINTS)


def _blob_image(cx: float, cy: float, shape=(120, 160)) -> np.ndarray:
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 4.0**2))
    return np.repeat((blob * 255).round().astype(np.uint8)[..., None], 3, axis=2)


@pytest.mark.parametrize("flip", [False, True])
def test_predict_maps_points_back_to_image_pixels(flip: bool) -> None:
    lm = Landmarker(_Centroid(), img_size=SIZE)
    image = _blob_image(70.3, 55.6)
    boxes = np.array([[40, 30, 100, 90], [45.5, 20.0, 95.0, 80.5]])  # two crops, other scales
    kps, conf = lm.predict(image, boxes, flip=flip)
    assert kps.shape == (2, NUM_POINTS, 2) and conf.shape == (2, NUM_POINTS)
    assert kps.dtype == np.float32
    np.testing.assert_allclose(kps[:, 0], [[70.3, 55.6]] * 2, atol=0.05)


def test_predict_with_no_boxes() -> None:
    lm = Landmarker(_Centroid(), img_size=SIZE)
    kps, conf = lm.predict(_blob_image(50, 50), np.zeros((0, 4)))
    assert kps.shape == (0, NUM_POINTS, 2) and conf.shape == (0, NUM_POINTS)


def _payload(model: torch.nn.Module, arch: str = "heatmap", **extra) -> dict:
    return {
        "task": "landmarks",
        "arch": arch,
        "arch_kwargs": {"img_size": SIZE},
        "img_size": SIZE,
        "state_dict": model.state_dict(),
        **extra,
    }


def test_checkpoint_round_trip_predicts_the_same(tmp_path) -> None:
    model = _model("heatmap").eval()
    path = save_checkpoint(tmp_path / "m.pt", _payload(model, metrics={"nme_io": 0.05}))
    lm = Landmarker.from_checkpoint(path)
    assert lm.img_size == SIZE and lm.arch == "heatmap" and lm.info["metrics"]["nme_io"] == 0.05
    images, _ = _batch(2)
    with torch.no_grad():
        expected, _ = model.decode(model(images))
    got, conf = lm.predict_crops(images)
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-5)
    from_dict = Landmarker.from_checkpoint(torch.load(path, weights_only=True))
    np.testing.assert_allclose(from_dict.predict_crops(images)[0], got, atol=1e-6)


def test_flip_tta_leaves_a_mirror_symmetric_model_unchanged() -> None:
    """Flip averaging of a model that is exactly mirror-symmetric changes nothing."""
    lm = Landmarker(_Centroid(), img_size=SIZE)
    crops = np.asarray(_blob_image(30.0, 41.5, (SIZE, SIZE)))[None]
    a, _ = lm.predict_crops(crops)
    b, _ = lm.predict_crops(crops, flip=True)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_wrong_checkpoints_are_rejected(tmp_path) -> None:
    model = _model("heatmap")
    detector = save_checkpoint(tmp_path / "d.pt", {**_payload(model), "task": "detector"})
    with pytest.raises(CheckpointError, match="detector model, not a landmarks model"):
        Landmarker.from_checkpoint(detector)
    alien = save_checkpoint(tmp_path / "a.pt", _payload(model, arch="hourglass-9000"))
    with pytest.raises(CheckpointError, match="architecture 'hourglass-9000'"):
        Landmarker.from_checkpoint(alien)
    mismatch = save_checkpoint(tmp_path / "m.pt", _payload(model, arch="integral"))
    with pytest.raises(CheckpointError, match="does not match architecture 'integral'"):
        Landmarker.from_checkpoint(mismatch)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(CheckpointError, match="not a facemark checkpoint"):
        Landmarker.from_checkpoint(junk)
    # a loaded dict gets the same checks as a file (checkpoint.validate): the task ...
    with pytest.raises(CheckpointError, match="detector model, not a landmarks model"):
        Landmarker.from_checkpoint(torch.load(detector, weights_only=True))
    # ... and the format: a bare dict that was never a facemark checkpoint is refused
    with pytest.raises(CheckpointError, match="not a facemark checkpoint"):
        Landmarker.from_checkpoint({**_payload(model), "task": "detector"})
