"""Geometry of the face crop and the augmentations, checked on painted dots.

Every keypoint is painted as a small Gaussian blob; after a transform we measure where each
blob ended up (intensity centroid) and compare with where the keypoint math says it went.
Nearby points are painted into different channels / images so their blobs never overlap.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facemark import transforms as T
from facemark.errors import UsageError
from facemark.shape import MEAN_SHAPE, REGIONS

SIGMA = 1.6  # blob size in source pixels
WINDOW = 6.0  # centroid window radius in output pixels
MIN_SEP = 18.0  # blobs sharing a channel are at least this far apart in the source


def face_keypoints(scale: float = 90.0, centre=(150.0, 160.0)) -> np.ndarray:
    return (MEAN_SHAPE.astype(np.float64) * scale + np.asarray(centre)).astype(np.float64)


def channel_groups(kps: np.ndarray, min_sep: float) -> list[list[int]]:
    """Greedy colouring: each group holds points at least ``min_sep`` apart."""
    groups: list[list[int]] = []
    for i, p in enumerate(kps):
        for g in groups:
            if all(np.linalg.norm(p - kps[j]) >= min_sep for j in g):
                g.append(i)
                break
        else:
            groups.append([i])
    return groups


def paint_blobs(
    kps: np.ndarray, shape=(320, 300)
) -> tuple[list[np.ndarray], list[tuple[int, int, list[int]]]]:
    """uint8 RGB images with one blob per keypoint; returns images and (image, channel, indices)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    groups = channel_groups(kps, MIN_SEP)
    images, layout = [], []
    for start in range(0, len(groups), 3):
        img = np.zeros((h, w, 3), np.float64)
        for c, g in enumerate(groups[start : start + 3]):
            for j in g:
                x, y = kps[j]
                img[..., c] += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * SIGMA**2))
            layout.append((len(images), c, g))
        images.append(np.clip(img * 255, 0, 255).round().astype(np.uint8))
    return images, layout


def blob_centres(
    outputs: list[np.ndarray], layout, expected: np.ndarray, scale: float = 1.0
) -> np.ndarray:
    """Centroid of each blob in a window around where it is expected (NaN if clipped).

    The window shrinks with the warp's ``scale`` so it never reaches a neighbouring blob.
    """
    window = float(np.clip(0.45 * MIN_SEP * scale, 1.5, WINDOW))
    found = np.full_like(expected, np.nan)
    h, w = outputs[0].shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    for img_i, c, idx in layout:
        chan = outputs[img_i][..., c].astype(np.float64)
        for j in idx:
            ex, ey = expected[j]
            if not (window <= ex <= w - 1 - window and window <= ey <= h - 1 - window):
                continue
            m = ((xx - ex) ** 2 + (yy - ey) ** 2) <= window**2
            wgt = chan * m
            if wgt.sum() > 0:
                found[j] = [(wgt * xx).sum() / wgt.sum(), (wgt * yy).sum() / wgt.sum()]
    return found


def dot_error(kps: np.ndarray, M: np.ndarray, out_size: int) -> tuple[float, int]:
    """Largest distance between the warped blobs and the mapped keypoints, and how many counted."""
    images, layout = paint_blobs(kps)
    outputs = [T.warp_image(img, M, out_size) for img in images]
    expected = T.apply_affine(kps, M)
    found = blob_centres(
        outputs, layout, expected, scale=float(np.sqrt(abs(np.linalg.det(M[:, :2]))))
    )
    ok = ~np.isnan(found[:, 0])
    return float(np.linalg.norm(found[ok] - expected[ok], axis=1).max()), int(ok.sum())


KPS = face_keypoints()


@pytest.mark.parametrize(
    ("M", "size", "tol"),
    [
        (np.array([[1.0, 0, 3.3], [0, 1.0, -7.6]]), 300, 0.05),  # sub-pixel translation
        (np.array([[1.7, 0, -90.0], [0, 1.7, -100.0]]), 300, 0.1),  # enlarge
        (np.array([[0.6, 0, 10.0], [0, 0.6, 5.0]]), 200, 0.1),  # shrink
        (np.array([[0.3, 0, 4.0], [0, 0.3, 2.0]]), 100, 0.35),  # strong shrink: box pre-filter
        (T.similarity(30.0, 1.1, (150, 160), (4.5, -3.2)), 300, 0.3),  # rotation + zoom + shift
        (T.similarity(-25.0, 0.8, (150, 160)), 300, 0.3),
        (T.hflip_matrix(300), 300, 0.05),
    ],
)
def test_dots_follow_the_keypoints(M: np.ndarray, size: int, tol: float) -> None:
    err, counted = dot_error(KPS, M, size)
    assert counted >= 60
    assert err < tol


def test_dots_follow_the_face_crop() -> None:
    box = T.face_box_from_keypoints(KPS)
    for size in (64, 128, 256):
        err, counted = dot_error(KPS, T.crop_matrix(box, size), size)
        assert counted == 68 if size >= 128 else counted > 40
        assert err < 0.5


def test_dots_follow_random_augmentation() -> None:
    """Full random geometry, photometric ops off: blobs land on the returned keypoints."""
    cfg = T.AugmentConfig(
        p_color=0, p_gray=0, p_blur=0, p_lowres=0, p_noise=0, p_jpeg=0, p_occlude=0
    )
    images, layout = paint_blobs(KPS)
    flips = 0
    for index in range(6):
        rng_seed = (7, 3, index)
        outs = []
        for img in images:
            crop, kps_out, M = T.augment(img, KPS, 192, cfg, T.sample_rng(*rng_seed))
            outs.append(crop)
        flipped = np.linalg.det(M[:, :2]) < 0
        flips += flipped
        # blob j sits at the source position of point j; the returned points are renumbered
        by_source = kps_out[T.FLIP_PERM] if flipped else kps_out
        found = blob_centres(outs, layout, by_source)
        ok = ~np.isnan(found[:, 0])
        assert ok.sum() >= 60
        assert np.linalg.norm(found[ok] - by_source[ok], axis=1).max() < 1.0
        assert (kps_out >= 0).all() and (kps_out <= 191).all()  # fit_margin keeps them inside
    assert 0 < flips < 6  # both branches exercised with these seeds


def test_squeeze_narrows_the_face_and_the_dots_follow() -> None:
    """p_squeeze narrows the face across (in its own frame, before rotation), nothing else
    changes for the same seed, and the painted dots land on the returned keypoints."""
    off = dict(p_color=0, p_gray=0, p_blur=0, p_lowres=0, p_noise=0, p_jpeg=0, p_occlude=0)
    plain = T.AugmentConfig(**off, rotation=0.0, p_flip=0.0)
    squeezed = T.AugmentConfig(**off, rotation=0.0, p_flip=0.0, p_squeeze=1.0, squeeze=(0.7, 0.7))
    images, layout = paint_blobs(KPS)
    _, k0, _ = T.augment(images[0], KPS, 192, plain, T.sample_rng(1, 2, 3))
    outs, k1 = [], None
    for img in images:
        crop, k1, _ = T.augment(img, KPS, 192, squeezed, T.sample_rng(1, 2, 3))
        outs.append(crop)
    width = lambda k: np.ptp(k[:, 0])  # noqa: E731
    height = lambda k: np.ptp(k[:, 1])  # noqa: E731
    assert width(k1) / height(k1) == pytest.approx(0.7 * width(k0) / height(k0), rel=1e-6)
    found = blob_centres(outs, layout, k1)
    ok = ~np.isnan(found[:, 0])
    assert ok.sum() >= 60 and np.linalg.norm(found[ok] - k1[ok], axis=1).max() < 1.0
    # with p_squeeze=0 the squeeze draw is skipped: samples are as before the option existed
    again = T.augment(images[0], KPS, 192, T.AugmentConfig(**off), T.sample_rng(4, 5, 6))
    zero = T.augment(
        images[0], KPS, 192, T.AugmentConfig(**off, p_squeeze=0.0), T.sample_rng(4, 5, 6)
    )
    assert np.array_equal(again[1], zero[1])


def test_augment_overrides_parse_and_reject_bad_specs() -> None:
    cfg = T.AugmentConfig.with_overrides("p_squeeze=0.5, squeeze=0.6:0.9,max_occluders=3")
    assert (cfg.p_squeeze, cfg.squeeze, cfg.max_occluders) == (0.5, (0.6, 0.9), 3)
    assert T.AugmentConfig.with_overrides(None) == T.AugmentConfig()
    for bad in ("p_squeeze", "nope=1", "p_squeeze=x", "squeeze=0.5", "p_blur=1.5"):
        with pytest.raises(UsageError):
            T.AugmentConfig.with_overrides(bad)


def test_crop_maps_box_centre_to_crop_centre_and_back() -> None:
    box = np.array([10.0, 20.0, 110.0, 140.0])
    M = T.crop_matrix(box, 128)
    np.testing.assert_allclose(T.apply_affine(np.array([[60.0, 80.0]]), M), [[63.5, 63.5]])
    side = 120 * T.CROP_SCALE
    assert M[0, 0] == pytest.approx(128 / side)
    back = T.apply_affine(T.apply_affine(KPS, M), T.invert_affine(M))
    np.testing.assert_allclose(back, KPS, atol=1e-9)


def test_face_box_covers_keypoints_and_forehead() -> None:
    box = T.face_box_from_keypoints(KPS)
    lo, hi = KPS.min(0), KPS.max(0)
    assert (
        box[0] == pytest.approx(lo[0])
        and box[2] == pytest.approx(hi[0])
        and box[3] == pytest.approx(hi[1])
    )
    assert box[1] == pytest.approx(lo[1] - T.FOREHEAD * (hi[1] - lo[1]), abs=1e-4)
    batch = T.face_box_from_keypoints(np.stack([KPS, KPS + 5]))
    assert batch.shape == (2, 4) and batch[1, 0] == pytest.approx(box[0] + 5)


def test_unaugmented_crop_keeps_every_point_inside_with_margin() -> None:
    for scale, angle in [(60.0, 0.0), (90.0, 15.0)]:
        kps = T.apply_affine(face_keypoints(scale), T.similarity(angle, 1.0, (150, 160)))
        pts = T.apply_affine(kps, T.crop_matrix(T.face_box_from_keypoints(kps), 128))
        assert pts.min() > 8 and pts.max() < 119


# --------------------------------------------------------------------------- mirror


def test_flip_perm_is_an_involution_with_the_right_fixed_points() -> None:
    perm = T.FLIP_PERM
    assert sorted(perm) == list(range(68))
    np.testing.assert_array_equal(perm[perm], np.arange(68))
    assert set(np.flatnonzero(perm == np.arange(68))) == {8, 27, 28, 29, 30, 33, 51, 57, 62, 66}


def test_flip_perm_swaps_left_and_right_features() -> None:
    perm = T.FLIP_PERM
    assert set(perm[36:42]) == set(range(42, 48))  # left eye -> right eye
    assert set(perm[42:48]) == set(range(36, 42))
    assert set(perm[17:22]) == set(range(22, 27))  # brows
    assert perm[36] == 45 and perm[39] == 42 and perm[48] == 54 and perm[0] == 16
    # Mirroring the (nearly symmetric) mean shape and renumbering gives back the mean shape.
    # (A wrong pair, e.g. swapping 40 and 41, would leave an error of 0.14 or more.)
    axis = MEAN_SHAPE[[8, 27, 28, 29, 30, 33, 51, 57, 62, 66], 0].mean()
    mirrored = MEAN_SHAPE.copy()
    mirrored[:, 0] = 2 * axis - mirrored[:, 0]
    assert np.linalg.norm(mirrored[perm] - MEAN_SHAPE, axis=1).max() < 0.08


def test_flip_keeps_anatomy_on_the_correct_side() -> None:
    F = T.hflip_matrix(300)
    out = T.transform_keypoints(KPS, F, flipped=True)
    assert out[36, 0] < out[45, 0]  # point 36 is still the image-left eye corner
    assert out[0, 0] < out[16, 0]
    np.testing.assert_allclose(out[T.FLIP_PERM], T.apply_affine(KPS, F))


def test_flip_twice_is_identity() -> None:
    F = T.hflip_matrix(300)
    twice = T.transform_keypoints(T.transform_keypoints(KPS, F, True), F, True)
    np.testing.assert_allclose(twice, KPS, atol=1e-9)
    img = paint_blobs(KPS)[0][0]
    np.testing.assert_array_equal(T.warp_image(T.warp_image(img, F, 300), F, 300), img[:300, :300])


# --------------------------------------------------------------------------- misc


def test_translation_by_whole_pixels_is_exact() -> None:
    img = np.random.default_rng(0).integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
    out = T.warp_image(img, np.array([[1.0, 0, -5.0], [0, 1.0, -3.0]]), 20)
    np.testing.assert_array_equal(out, img[3:23, 5:25])


def test_to_tensor_layout_and_range() -> None:
    crops = np.zeros((2, 4, 5, 3), np.uint8)
    crops[1, 2, 3] = [255, 0, 51]
    t = T.to_tensor(crops)
    assert t.shape == (2, 3, 4, 5) and t.dtype == torch.float32
    assert t[1, :, 2, 3].tolist() == pytest.approx([1.0, 0.0, 0.2])
    assert T.to_tensor(crops[1]).shape == (3, 4, 5)
    np.testing.assert_array_equal(T.to_uint8(t), crops)
    # channels-last: the same values, the crops' own pixel order kept in memory
    nhwc = T.to_tensor(crops, torch.channels_last)
    assert torch.equal(nhwc, t) and nhwc.is_contiguous(memory_format=torch.channels_last)
    assert nhwc.permute(0, 2, 3, 1).is_contiguous()
    assert torch.equal(T.to_tensor(crops[1], torch.channels_last), t[1])  # one crop: no batch


def test_photometric_keeps_shape_and_is_seeded() -> None:
    crop = paint_blobs(KPS)[0][0][:128, :128]
    cfg = T.AugmentConfig(
        p_color=1, p_gray=0, p_blur=1, p_lowres=1, p_noise=1, p_jpeg=1, p_occlude=1
    )
    a = T.photometric(crop, cfg, T.sample_rng(1, 2, 3))
    b = T.photometric(crop, cfg, T.sample_rng(1, 2, 3))
    c = T.photometric(crop, cfg, T.sample_rng(1, 2, 4))
    assert a.shape == crop.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, crop)
    off = T.AugmentConfig(
        p_color=0, p_gray=0, p_blur=0, p_lowres=0, p_noise=0, p_jpeg=0, p_occlude=0
    )
    np.testing.assert_array_equal(T.photometric(crop, off, T.sample_rng(0, 0, 0)), crop)
    wide = T.photometric(paint_blobs(KPS)[0][0][:60, :200], cfg, T.sample_rng(1, 2, 3))
    assert wide.shape == (60, 200, 3)  # not only square crops (the detector uses whole frames)
    gray = T.photometric(
        crop + 40, T.AugmentConfig(**{**off.to_dict(), "p_gray": 1.0}), T.sample_rng(0, 0, 0)
    )
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()


def test_augment_config_round_trips_through_json_types() -> None:
    cfg = T.AugmentConfig(rotation=10.0, scale=(0.8, 1.2))
    d = cfg.to_dict()
    d["scale"] = list(d["scale"])  # as JSON would give it back
    assert T.AugmentConfig.from_dict({**d, "unknown": 1}) == cfg


def test_regions_cover_the_permutation_consistently() -> None:
    """Each region maps onto itself under the mirror."""
    for a, b in REGIONS.values():
        assert set(T.FLIP_PERM[a:b]) == set(range(a, b))
