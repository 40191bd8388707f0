"""Reading the installed dataset, splits, fingerprints and the torch Dataset."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facemark import data as dataset
from facemark import paths, transforms
from facemark.errors import DataError, UsageError
from facemark.images import load_image
from synthetic import PERSONS, install_synthetic_dataset


@pytest.fixture
def ds_dir() -> Path:
    """A synthetic dataset installed where ``fetch-data`` would put it (30 train frames)."""
    return install_synthetic_dataset(n_train=30, n_test=6, size=96, seed=3)


def _rewrite_rows(csv_path: Path, edit) -> None:
    lines = csv_path.read_text().splitlines()
    lines = [lines[0]] + [edit(i, line) for i, line in enumerate(lines[1:])]
    csv_path.write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- reading


def test_load_split_defaults_to_the_installed_dataset(ds_dir: Path) -> None:
    assert ds_dir == paths.dataset_dir()
    faces = dataset.load_split("trainval")
    assert len(faces) == 30 and faces.skipped == []
    assert faces.keypoints.shape == (30, 68, 2) and faces.keypoints.dtype == np.float32
    img = faces.images[0]
    assert img.dtype == np.uint8 and img.shape == (96, 96, 3)
    # labels are read as written, moved from the file's 1-based origin to 0-based pixels
    first = (ds_dir / dataset.TRAIN_CSV).read_text().splitlines()[1].split(",")
    assert faces.names[0] == first[0]
    np.testing.assert_array_equal(
        faces.keypoints[0].reshape(-1), np.array(first[1:], dtype=np.float32) - 1.0
    )


def test_missing_dataset_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="fetch-data"):
        dataset.load_split("train")


def test_bad_rows_are_reported_and_skipped(ds_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    def edit(i: int, line: str) -> str:
        cells = line.split(",")
        if i == 0:
            cells[5] = ""  # missing value
        elif i == 1:
            cells[9] = "nan"
        elif i == 2:
            cells[1] = "500"  # x far outside the 96 px image
        elif i == 3:
            cells = cells[:-2]  # too few values
        elif i == 4:
            cells[0] = "Nobody_Here_01.jpg"  # image file missing
        return ",".join(cells)

    _rewrite_rows(ds_dir / dataset.TRAIN_CSV, edit)
    with caplog.at_level(logging.WARNING):
        faces = dataset.load_split("trainval")
    assert len(faces) == 25
    reasons = sorted(s.reason for s in faces.skipped)
    assert reasons == sorted(
        [
            "missing or NaN keypoints",
            "missing or NaN keypoints",
            "keypoints outside the image",
            "134 values instead of 136",
            "image file missing",
        ]
    )
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        len(warning) == 1 and "skipped 5 row(s)" in warning[0] and "2 missing or NaN" in warning[0]
    )


def test_points_on_the_border_pixel_are_inside() -> None:
    kps = np.zeros((68, 2), np.float32)
    kps[0] = [95, 95]
    assert dataset.points_inside(kps, 96, 96)
    kps[0] = [96, 95]
    assert not dataset.points_inside(kps, 96, 96)
    kps[0] = [-1, 0]
    assert not dataset.points_inside(kps, 96, 96)


def test_images_are_rgb_with_exif_orientation_applied(tmp_path: Path) -> None:
    """The loaders decode through facemark.images.load_image (transparency composited as it
    does); a missing file is None (a skipped row), an unreadable one a DataError."""
    rgba = Image.new("RGBA", (40, 20), (10, 20, 30, 128))
    rgba.save(tmp_path / "a.png")
    read = dataset.folder_reader(tmp_path)
    arr = read("a.png")
    assert arr.shape == (20, 40, 3)
    np.testing.assert_array_equal(arr, load_image(tmp_path / "a.png"))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.new("RGB", (40, 20), (200, 0, 0)).save(tmp_path / "r.jpg", exif=exif)
    assert read("r.jpg").shape == (40, 20, 3)
    assert read("missing.jpg") is None
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(DataError, match="cannot read .*bad.jpg"):
        read("bad.jpg")


def test_load_labeled_folder(ds_dir: Path) -> None:
    faces = dataset.load_labeled_folder(ds_dir / "test", ds_dir / dataset.TEST_CSV)
    assert len(faces) == 6
    with pytest.raises(DataError, match="labels file not found"):
        dataset.load_labeled_folder(ds_dir / "test", ds_dir / "nope.csv")


def test_csv_without_header_is_read(tmp_path: Path, ds_dir: Path) -> None:
    lines = (ds_dir / dataset.TEST_CSV).read_text().splitlines()[1:]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    names, kps, skipped = dataset.read_keypoints_csv(tmp_path / "labels.csv")
    assert len(names) == 6 and kps.shape == (6, 68, 2) and not skipped


# --------------------------------------------------------------------------- splits


def test_identity_split_never_shares_a_person(ds_dir: Path) -> None:
    names = dataset.read_keypoints_csv(ds_dir / dataset.TRAIN_CSV)[0]
    for seed in range(5):
        train, val = dataset.split_indices(names, val_fraction=0.34, seed=seed)
        assert sorted(train + val) == list(range(len(names)))
        ids_train = {dataset.identity_of(names[i]) for i in train}
        ids_val = {dataset.identity_of(names[i]) for i in val}
        assert ids_val and not ids_train & ids_val
        assert len(ids_val) == 2  # round(0.34 * 6 persons)
    assert dataset.split_indices(names, 0.34, seed=1) == dataset.split_indices(names, 0.34, seed=1)
    assert any(
        dataset.split_indices(names, 0.34, seed=s) != dataset.split_indices(names, 0.34, 0)
        for s in (1, 2, 3)
    )


def test_frame_split_and_edge_cases(ds_dir: Path) -> None:
    names = dataset.read_keypoints_csv(ds_dir / dataset.TRAIN_CSV)[0]
    train, val = dataset.split_indices(names, 0.2, seed=0, val_by="frame")
    assert len(val) == 6 and len(train) == 24
    assert dataset.split_indices(names, 0.0)[1] == []
    assert len(dataset.split_indices(names, 0.01)[1]) > 0  # a requested val split is never empty
    with pytest.raises(UsageError):
        dataset.split_indices(names, 1.0)
    with pytest.raises(UsageError):
        dataset.split_indices(names, 0.1, val_by="person")


def test_identity_of_names() -> None:
    assert dataset.identity_of("Luis_Fonsi_21.jpg") == "Luis_Fonsi"
    assert dataset.identity_of("Madonna_00.jpg") == "Madonna"
    assert dataset.identity_of("no_digits.jpg") == "no_digits"


def test_split_sizes_and_loaded_splits_agree(ds_dir: Path) -> None:
    sizes = dataset.split_sizes(val_fraction=0.2)
    assert sizes["trainval"] == {"frames": 30, "identities": len(PERSONS)}
    assert sizes["train"]["frames"] + sizes["val"]["frames"] == 30
    assert sizes["test"]["frames"] == 6
    train = dataset.load_split("train", val_fraction=0.2)
    val = dataset.load_split("val", val_fraction=0.2)
    assert len(train) == sizes["train"]["frames"] and len(val) == sizes["val"]["frames"]
    assert not set(train.identities) & set(val.identities)
    with pytest.raises(UsageError, match="split must be one of"):
        dataset.load_split("validation")


def test_limit_decodes_a_seeded_subset(ds_dir: Path) -> None:
    a = dataset.load_split("trainval", limit=5, limit_seed=1)
    b = dataset.load_split("trainval", limit=5, limit_seed=1)
    assert len(a) == 5 and a.names == b.names


def test_fingerprint_prefers_the_manifest_and_tracks_the_csvs(ds_dir: Path) -> None:
    manifest = json.loads((ds_dir / "manifest.json").read_text())
    assert dataset.dataset_fingerprint() == manifest["fingerprint"]
    (ds_dir / "manifest.json").unlink()
    fp = dataset.dataset_fingerprint(ds_dir)
    assert len(fp) == 64 and fp == dataset.dataset_fingerprint(ds_dir)
    _rewrite_rows(
        ds_dir / dataset.TEST_CSV, lambda i, line: line.replace(",", ",1", 1) if i == 0 else line
    )
    assert dataset.dataset_fingerprint(ds_dir) != fp


# --------------------------------------------------------------------------- torch Dataset


def test_unaugmented_sample_is_exactly_the_inference_crop(ds_dir: Path) -> None:
    faces = dataset.load_split("test")
    ds = dataset.LandmarkDataset(faces, 64, augment=False)
    for i in range(len(faces)):
        image, kps = ds[i]
        assert (
            image.shape == (3, 64, 64)
            and image.dtype == torch.float32
            and kps.dtype == torch.float32
        )
        box = transforms.face_box_from_keypoints(faces.keypoints[i])
        crop, M = transforms.crop_face(faces.images[i], box, 64)
        assert torch.equal(image, transforms.to_tensor(crop))
        np.testing.assert_allclose(
            kps.numpy(), transforms.apply_affine(faces.keypoints[i], M), atol=1e-4
        )
        back = transforms.apply_affine(kps.numpy().astype(np.float64), transforms.invert_affine(M))
        np.testing.assert_allclose(back, faces.keypoints[i], atol=1e-3)


def test_augmentation_is_a_function_of_seed_epoch_index(ds_dir: Path) -> None:
    faces = dataset.load_split("test")
    ds = dataset.LandmarkDataset(faces, 48, augment=True, seed=5)
    a0, k0 = ds[2]
    a1, k1 = ds[2]
    assert torch.equal(a0, a1) and torch.equal(k0, k1)
    ds.set_epoch(1)
    b, kb = ds[2]
    assert not torch.equal(a0, b) and not torch.equal(k0, kb)
    other = dataset.LandmarkDataset(faces, 48, augment=True, seed=5)
    other.set_epoch(1)
    assert torch.equal(other[2][0], b)  # a fresh (resumed) dataset reproduces epoch 1
    assert not torch.equal(ds[3][1], kb)
    assert image_range_ok(b)


def image_range_ok(t: torch.Tensor) -> bool:
    return bool(t.min() >= 0 and t.max() <= 1)


def test_set_epoch_reaches_persistent_workers(ds_dir: Path) -> None:
    faces = dataset.load_split("test")
    ds = dataset.LandmarkDataset(faces, 32, augment=True, seed=1)
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=1, persistent_workers=True)
    seen = {}
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        seen[epoch] = torch.cat([k for _, k in loader])
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        expected = torch.stack([ds[i][1] for i in range(len(ds))])
        assert torch.equal(seen[epoch], expected)
    assert not torch.equal(seen[0], seen[1])


# --------------------------------------------------------------------------- decoded cache


def _cache_files() -> list[Path]:
    folder = paths.cache_dir() / "decoded"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_decoded_cache_is_built_once_and_gives_the_same_pixels(ds_dir: Path) -> None:
    direct = dataset.load_split("trainval", cache=False)
    assert _cache_files() == []
    first = dataset.load_split("trainval")  # builds the cache
    assert [p.suffix for p in _cache_files()] == [".json", ".u8"]
    second = dataset.load_split("train")  # reads it
    assert not second.images[0].flags.writeable  # memory-mapped, shared between processes
    by_name = dict(zip(direct.names, direct.images, strict=True))
    for faces in (first, second):
        for name, img in zip(faces.names, faces.images, strict=True):
            np.testing.assert_array_equal(img, by_name[name])


def test_small_loads_do_not_build_the_cache(ds_dir: Path) -> None:
    dataset.load_split("trainval", limit=3)
    assert _cache_files() == []


def test_a_damaged_cache_is_ignored(ds_dir: Path) -> None:
    dataset.load_split("trainval")
    blob = next(p for p in _cache_files() if p.suffix == ".u8")
    blob.write_bytes(blob.read_bytes()[:-10])
    faces = dataset.load_split("trainval")  # rebuilt, not read short
    assert len(faces) == 30 and faces.images[-1].shape == (96, 96, 3)


def test_folders_without_a_manifest_are_not_cached(ds_dir: Path) -> None:
    (ds_dir / "manifest.json").unlink()
    dataset.load_split("trainval")
    assert _cache_files() == []
