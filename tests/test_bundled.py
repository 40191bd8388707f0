"""The models shipped inside the package: present, small, described, and usable offline.

The accuracy of these models is measured by ``benchmarks/`` (docs/benchmarks.md); here we check
that what ships is what docs/models.md describes and that ``annotate`` works with no flags.
The last test uses the real photos in the shared dataset archive when it is beside the
checkout (skipped otherwise, e.g. in CI).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

import facemark
from facemark import hub, paths, registry
from facemark.checkpoint import load_checkpoint
from facemark.cli import app
from facemark.files import sha256_file

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = paths.bundled_weights_dir()


def cards() -> dict:
    return json.loads((WEIGHTS / "models.json").read_text())


def test_bundled_files_are_small_and_match_their_cards() -> None:
    info = cards()
    assert set(info) == {"landmarks", "detector", "landmarks-int8"}
    total = info["landmarks-int8"]["bytes"]  # its card is checked in test_quantize.py
    for task in ("landmarks", "detector"):
        card = info[task]
        # the card's file by its bundled name (the detector card describes facemark's own
        # detector, detector.pt, bundled as "facemark"; "default" is now YuNet)
        name = next(alias for alias, file in registry.bundled(task).items() if file == card["file"])
        path = hub.resolve_model(name, task)
        assert path == WEIGHTS / card["file"]
        assert path.stat().st_size == card["bytes"] and sha256_file(path) == card["sha256"]
        data = load_checkpoint(path, task=task)
        assert data["arch"] == card["arch"] and data["epoch"] == card["epoch"]
        # inference-only: no optimizer state; float16 storage
        assert "optimizer" not in data
        floats = [v for v in data["state_dict"].values() if v.is_floating_point()]
        assert floats and all(str(v.dtype) == "torch.float16" for v in floats)
        total += card["bytes"]
    # the landmark model carries its faceness head, fitted and validated as its card says
    head = load_checkpoint(WEIGHTS / "landmarks.pt")["faceness"]
    assert head["threshold"] == info["landmarks"]["faceness"]["threshold"]
    assert hub.load_model("default", "cpu").faceness is not None
    assert total <= 10 * 2**20
    assert sum(p.stat().st_size for p in WEIGHTS.glob("*.pt")) <= 10 * 2**20  # every file


def test_low_confidence_threshold_is_the_bundled_models_own() -> None:
    """LOW_CONFIDENCE is derived from the bundled model (the rule in facemark.confidence);
    the wild benchmark's record of the bundled model, made with the same file, gives it."""
    from facemark.confidence import LOW_CONFIDENCE

    record = json.loads((ROOT / "benchmarks" / "results" / "wild.json").read_text())
    assert record["model_sha256"]["default"] == cards()["landmarks"]["sha256"]
    rule = record["low_confidence"]["default"]
    assert rule["faces"] == 476  # Udacity val 360 + wild val 116
    assert LOW_CONFIDENCE == rule["threshold"] == round(rule["p02"], 2)


def test_default_models_load_and_run() -> None:
    landmarker = facemark.load_model("default")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)
    kps, conf = landmarker.predict(image, np.array([[30.0, 30.0, 130.0, 130.0]]))
    assert kps.shape == (1, 68, 2) and conf.shape == (1, 68) and np.isfinite(kps).all()
    assert ((conf >= 0) & (conf <= 1)).all()
    for name in ("default", "facemark"):  # YuNet, and facemark's own detector
        found = facemark.load_detector(name).detect(image)
        assert found.boxes.shape[1:] == (4,) and found.scores.shape == (len(found.boxes),)


def test_annotate_works_with_no_model_flags(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (120, 90), (200, 180, 160)).save(folder / "plain.jpg")
    result = CliRunner().invoke(app, ["annotate", str(folder), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(x) for x in (tmp_path / "out" / "annotations.jsonl").open()]
    assert (record["width"], record["height"]) == (120, 90) and record["faces"] == []


def test_real_photos_give_the_right_face_counts(shared_zip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    with zipfile.ZipFile(shared_zip) as zf:
        for name in ("obamas.jpg", "mona_lisa.jpg"):
            (folder / name).write_bytes(zf.read(f"P1_Facial_Keypoints-master/images/{name}"))
    records = [r.to_dict() for r in facemark.annotate([folder], out=None)]
    faces = {Path(r["image"]).name: r["faces"] for r in records}
    assert len(faces["obamas.jpg"]) == 2
    assert len(faces["mona_lisa.jpg"]) == 1
    for face in faces["obamas.jpg"] + faces["mona_lisa.jpg"]:
        x0, y0, x1, y1 = face["box"]
        kps = np.array(face["keypoints"])
        # every point inside its (forehead-extended) box, give or take a margin
        margin = 0.15 * (x1 - x0)
        assert (kps[:, 0] > x0 - margin).all() and (kps[:, 0] < x1 + margin).all()
        assert (kps[:, 1] > y0 - margin).all() and (kps[:, 1] < y1 + margin).all()
        # left eye (36-41) is left of the right eye (42-47) in the image, mouth below the nose
        assert kps[36:42, 0].mean() < kps[42:48, 0].mean()
        assert kps[48:68, 1].mean() > kps[27:36, 1].mean()
