"""facemark.data.open_labels: one entry point for every format --data reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemark import coco, data
from facemark.config import SplitConfig
from facemark.errors import DataError, UsageError
from facemark.images import load_image
from facemark.shape import LABEL_ORIGIN
from synthetic import install_synthetic_dataset, paint_face, random_keypoints

SIZE = 64


def _face(seed: int) -> tuple[Image.Image, np.ndarray]:
    rng = np.random.default_rng(seed)
    kps = random_keypoints(rng, SIZE)
    return paint_face(kps, SIZE, rng), kps


def _write_pts(path: Path, kps: np.ndarray) -> None:
    """An iBUG .pts file (1-based, as the 300-W originals)."""
    points = [f"{x + LABEL_ORIGIN:.3f} {y + LABEL_ORIGIN:.3f}" for x, y in kps]
    path.write_text("\n".join(["version: 1", "n_points: 68", "{", *points, "}"]) + "\n")


def _pts_folder(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, kps = _face(i)
        image.save(folder / f"face_{i}.jpg", quality=95)
        _write_pts(folder / f"face_{i}.pts", kps)
    return folder


def _jsonl(folder: Path, n: int) -> Path:
    (folder / "photos").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        image, kps = _face(50 + i)
        name = f"photos/p{i}.png"
        image.save(folder / name)
        face = {"box": [0.0, 0.0, SIZE - 1.0, SIZE - 1.0], "keypoints": kps.tolist()}
        lines.append(json.dumps({"image": name, "width": SIZE, "height": SIZE, "faces": [face]}))
    path = folder / "annotations.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _same(a: data.FaceSet, b: data.FaceSet) -> None:
    assert a.names == b.names
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    for x, y in zip(a.images, b.images, strict=True):
        np.testing.assert_array_equal(x, y)


# --------------------------------------------------------------------------- each format


def test_open_labels_on_a_udacity_root_gives_its_identity_splits(tmp_path: Path) -> None:
    root = install_synthetic_dataset(tmp_path / "u", n_train=12, n_test=4, size=SIZE)
    labels = data.open_labels(root)
    assert labels.format == "udacity" and labels.is_udacity
    split = SplitConfig(val_fraction=0.2, seed=1, val_by="identity")
    for name in ("train", "val"):
        _same(labels.split(name, split), data.load_split(name, root, 0.2, 1, "identity"))
    _same(
        labels.split("val", {"val_fraction": 0.2, "seed": 1}), data.load_split("val", root, 0.2, 1)
    )
    _same(labels.split("test"), data.load_split("test", root))
    _same(labels.faces(), data.load_split("trainval", root))
    assert len(labels.split("trainval", limit=3)) == 3
    assert labels.fingerprint() == data.dataset_fingerprint(root)
    ds = labels.landmark_dataset("val", 32, augment=False, split_config=split)
    assert isinstance(ds, data.LandmarkDataset) and len(ds) == len(labels.split("val", split))
    assert ds[0][0].shape == (3, 32, 32)


def test_open_labels_without_a_path_is_the_installed_dataset() -> None:
    install_synthetic_dataset(n_train=12, n_test=4, size=SIZE)
    labels = data.open_labels()
    assert labels.path is None and labels.is_udacity
    _same(labels.split("val"), data.load_split("val"))
    assert labels.fingerprint() == data.dataset_fingerprint()


def test_open_labels_on_a_pts_folder_splits_by_file(tmp_path: Path) -> None:
    folder = _pts_folder(tmp_path / "pts", n=10)
    labels = data.open_labels(folder)
    assert labels.format == "pts" and not labels.is_udacity
    everything = labels.faces()
    _same(everything, data.load_faces(folder))
    train, val = data.training_sets(folder, val_fraction=0.3, seed=2)
    split = SplitConfig(val_fraction=0.3, seed=2)
    _same(labels.split("train", split), train)
    _same(labels.split("val", split), val)
    assert len(val) == 3 and not set(train.names) & set(val.names)
    # no test part of its own: test and trainval are every face, all decoded once
    assert labels.split("test") is everything and labels.split("trainval") is everything
    first_val = everything.names.index(val.names[0])
    assert labels.split("val", split).images[0] is everything.images[first_val]
    assert len(labels.split("train", split, limit=2)) == 2
    assert labels.fingerprint() == data.fingerprint(folder)
    assert len(labels.landmark_dataset("train", 32, augment=True, split_config=split)) == 7
    with pytest.raises(UsageError, match="split must be one of"):
        labels.split("validation")


def test_open_labels_on_a_jsonl_and_a_coco_json(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, n=4)
    labels = data.open_labels(path)
    assert labels.format == "jsonl"
    _same(labels.faces(), data.load_faces(path))
    assert data.open_labels(tmp_path).format == "jsonl"  # the folder that holds it
    coco_path = tmp_path / coco.COCO_NAME
    coco.write_coco(path, coco_path)
    from_coco = data.open_labels(coco_path)
    assert from_coco.format == "coco"
    assert from_coco.faces().names == labels.faces().names
    np.testing.assert_allclose(from_coco.faces().keypoints, labels.faces().keypoints, atol=0.01)


def test_open_labels_on_a_keypoints_csv(tmp_path: Path) -> None:
    folder = _pts_folder(tmp_path / "images", n=3)
    rows = [
        ",".join([f"face_{i}.jpg", *(f"{v + LABEL_ORIGIN:.3f}" for v in _face(i)[1].ravel())])
        for i in range(3)
    ]
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    labels = data.open_labels(csv_path, images=folder)
    assert labels.format == "csv"
    faces = labels.faces()
    _same(faces, data.load_labeled_folder(folder, csv_path))
    assert faces.names == ["face_0.jpg", "face_1.jpg", "face_2.jpg"]
    # without images=: the subfolder that holds the first image
    assert data.open_labels(csv_path).faces().names == faces.names


def test_unknown_data_is_refused_when_opened(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no labels"):
        data.open_labels(tmp_path / "empty")
    with pytest.raises(DataError, match="no such file"):
        data.open_labels(tmp_path / "missing")


# --------------------------------------------------------------------------- decoding


def test_16_bit_and_transparent_pngs_decode_as_load_image_does(tmp_path: Path) -> None:
    """A .pts folder's images go through facemark.images: 16-bit scaled (not clipped to
    white), transparency composited on white."""
    image, kps = _face(7)
    gray16 = (np.asarray(image.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(gray16).save(tmp_path / "deep.png")
    rgba = np.dstack([np.asarray(image), np.full((SIZE, SIZE), 255, np.uint8)])
    rgba[: SIZE // 2, :, 3] = 100  # the top half see-through
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    for name in ("deep", "clear"):
        _write_pts(tmp_path / f"{name}.pts", kps)
    faces = data.open_labels(tmp_path).faces()
    assert sorted(faces.names) == ["clear.png", "deep.png"]
    for name, pixels in zip(faces.names, faces.images, strict=True):
        np.testing.assert_array_equal(pixels, load_image(tmp_path / name))
    deep = faces.images[faces.names.index("deep.png")]
    np.testing.assert_array_equal(deep[..., 0], np.asarray(image.convert("L")))  # not clipped
    clear = faces.images[faces.names.index("clear.png")]
    assert (clear[0] > np.asarray(image)[0]).any()  # lighter where it lets white through


def test_importing_the_data_layer_does_not_import_torch() -> None:
    code = "import sys, facemark.data; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
