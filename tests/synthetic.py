"""Tiny synthetic datasets in the real dataset's layout, for fast offline tests.

Each frame is a painted cartoon face whose 68 keypoints come from the mean shape under a random
similarity transform, so a model can actually learn something from a few dozen images and the
geometry is known exactly.  Names follow the real ``<Person_Name>_<frame>.jpg`` pattern so
identity splits work.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw

from facemark.shape import LABEL_ORIGIN, MEAN_SHAPE

if TYPE_CHECKING:
    from facemark.train import TrainConfig

ARCHIVE_TOP = "P1_Facial_Keypoints-master"
PERSONS = [
    "Ada_Lovelace",
    "Alan_Turing",
    "Grace_Hopper",
    "Kurt_Goedel",
    "Emmy_Noether",
    "John_Neumann",
]


def random_keypoints(rng: np.random.Generator, size: int) -> np.ndarray:
    """68 integer keypoints of a face of plausible size and pose inside a ``size`` square."""
    scale = rng.uniform(0.22, 0.32) * size
    angle = np.deg2rad(rng.uniform(-15, 15))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = size / 2 + rng.uniform(-0.08, 0.08, size=2) * size
    pts = MEAN_SHAPE @ rot.T * scale + centre
    return np.round(pts).astype(np.float32)


def paint_face(kps: np.ndarray, size: int, rng: np.random.Generator) -> Image.Image:
    """An RGB frame with a face drawn through ``kps`` (skin, brows, eyes, nose, mouth)."""
    bg = tuple(int(v) for v in rng.integers(40, 200, size=3))
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img)
    jaw = [tuple(p) for p in kps[0:17]]
    brow_top = [tuple(p) for p in kps[26:16:-1]]
    draw.polygon(jaw + brow_top, fill=(224, 172, 140))
    for a, b, colour in [(17, 22, (70, 40, 20)), (22, 27, (70, 40, 20)), (27, 36, (150, 90, 70))]:
        draw.line([tuple(p) for p in kps[a:b]], fill=colour, width=2)
    for a, b in [(36, 42), (42, 48)]:
        draw.polygon([tuple(p) for p in kps[a:b]], fill=(255, 255, 255), outline=(30, 30, 30))
    draw.polygon([tuple(p) for p in kps[48:60]], fill=(180, 60, 60))
    return img


def _write_frames(
    folder: Path, csv_path: Path, names: list[str], size: int, rng: np.random.Generator
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([""] + [str(i) for i in range(136)])
        for name in names:
            kps = random_keypoints(rng, size)
            paint_face(kps, size, rng).save(folder / name, quality=95)
            # the CSV holds 1-based coordinates, like the real dataset
            writer.writerow([name] + [f"{v + LABEL_ORIGIN:.1f}" for v in kps.reshape(-1)])


def frame_names(n: int, offset: int = 0) -> list[str]:
    """``n`` frame names spread over the synthetic persons."""
    return [f"{PERSONS[i % len(PERSONS)]}_{offset + i // len(PERSONS):02d}.jpg" for i in range(n)]


def make_dataset_tree(
    root: Path, n_train: int = 24, n_test: int = 6, size: int = 96, seed: int = 0
) -> Path:
    """Write the GitHub-archive layout under ``root``; returns the archive's top folder."""
    rng = np.random.default_rng(seed)
    top = Path(root) / ARCHIVE_TOP
    data = top / "data"
    _write_frames(
        data / "training", data / "training_frames_keypoints.csv", frame_names(n_train), size, rng
    )
    _write_frames(
        data / "test", data / "test_frames_keypoints.csv", frame_names(n_test, offset=50), size, rng
    )
    (top / "LICENSE").write_text("MIT License (synthetic test copy)\n")
    (top / "README.md").write_text("synthetic\n")
    (top / "images").mkdir(exist_ok=True)
    Image.new("RGB", (32, 32), (90, 90, 90)).save(top / "images" / "key_pts_example.png")
    (top / "1. Load and Visualize Data.ipynb").write_text("{}\n")
    return top


def make_dataset_zip(path: Path, **kwargs) -> Path:
    """A zip laid out like the GitHub archive of udacity/P1_Facial_Keypoints."""
    path = Path(path)
    tree = path.parent / (path.stem + "-tree")
    top = make_dataset_tree(tree, **kwargs)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(top.rglob("*")):
            zf.write(file, file.relative_to(tree).as_posix())
    return path


def jpeg_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    return buf.getvalue()


def install_synthetic_dataset(dataset_dir: Path | None = None, **kwargs) -> Path:
    """A synthetic dataset in the *installed* layout (what ``fetch-data`` leaves behind).

    ``dataset_dir`` defaults to ``paths.dataset_dir()`` (inside the test's FACEMARK_HOME);
    keyword arguments go to :func:`make_dataset_tree`.  The manifest's fingerprint is the
    sha256 of the two CSVs.  Returns the dataset folder.
    """
    import hashlib
    import json
    import shutil
    import tempfile

    from facemark import paths

    dest = Path(dataset_dir) if dataset_dir is not None else paths.dataset_dir()
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        top = make_dataset_tree(Path(tmp), **kwargs)
        for item in (top / "data").iterdir():
            target = dest / item.name
            if item.is_dir():
                shutil.copytree(item, target, dirs_exist_ok=True)
            else:
                shutil.copy2(item, target)
        shutil.copy2(top / "LICENSE", dest / "LICENSE")
    digest = hashlib.sha256()
    for name in ("training_frames_keypoints.csv", "test_frames_keypoints.csv"):
        digest.update((dest / name).read_bytes())
    manifest = {"fingerprint": digest.hexdigest(), "source": "synthetic"}
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


def tiny_train_config(root: Path, name: str, **overrides: Any) -> TrainConfig:
    """A 1-epoch CPU ``TrainConfig`` (64 px crops, batch 8, no workers, no AMP) on the dataset
    at ``root``; keyword arguments set other fields (``task="detector"``, ...)."""
    from facemark import train

    return train.TrainConfig(
        epochs=1,
        batch_size=8,
        img_size=64,
        device="cpu",
        workers=0,
        amp=False,
        name=name,
        data_root=str(root),
        **overrides,
    )


def load_tool(name: str) -> Any:
    """The script ``tools/<name>.py`` as a module (tools are scripts, not a package)."""
    path = Path(__file__).resolve().parents[1] / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module
