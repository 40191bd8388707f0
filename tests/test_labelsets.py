"""--data in every 68-point format: .pts folders, Udacity roots, CSVs, annotate's JSONL, COCO."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from facemark import coco, hub, paths
from facemark import data as dataset
from facemark import data as labelsets
from facemark.annotator import write_csv, write_pts
from facemark.checkpoint import load_checkpoint
from facemark.cli import app
from facemark.errors import DataError
from facemark.shape import LABEL_ORIGIN
from facemark.train import TrainConfig
from synthetic import install_synthetic_dataset, paint_face, random_keypoints

SIZE = 80


def _face(seed: int) -> tuple[Image.Image, np.ndarray]:
    rng = np.random.default_rng(seed)
    kps = random_keypoints(rng, SIZE) + rng.uniform(-0.4, 0.4, size=(68, 2)).astype(np.float32)
    return paint_face(kps, SIZE, rng), kps.astype(np.float32)


def make_pts_folder(folder: Path, n: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` painted faces with a .pts beside each, half of them in a subfolder."""
    truth = {}
    for i in range(n):
        image, kps = _face(seed + i)
        rel = f"sub/face_{i}.png" if i % 2 else f"face_{i}.jpg"
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, quality=95)
        write_pts(path.with_suffix(".pts"), kps)
        truth[rel] = kps
    return truth


def _record(image: str, faces: list[np.ndarray], score: float = 0.9) -> dict:
    return {
        "image": image,
        "width": SIZE,
        "height": SIZE,
        "faces": [
            {
                "box": [float(k[:, 0].min()), float(k[:, 1].min()), *map(float, k.max(axis=0))],
                "score": score,
                "keypoints": np.round(k.astype(np.float64), 2).tolist(),
                "confidence": [0.5] * 68,
            }
            for k in faces
        ],
    }


def make_jsonl(folder: Path, n: int = 4, two_faces: bool = True) -> tuple[Path, dict]:
    """``annotations.jsonl`` beside ``photos/``; the first image has two faces (side by side)."""
    (folder / "photos").mkdir(parents=True, exist_ok=True)
    records, truth = [], {}
    for i in range(n):
        image, kps = _face(100 + i)
        faces = [kps]
        if i == 0 and two_faces:
            wide = Image.new("RGB", (2 * SIZE, SIZE))
            wide.paste(image, (0, 0))
            other, kps2 = _face(200)
            wide.paste(other, (SIZE, 0))
            image, faces = wide, [kps, kps2 + np.float32([SIZE, 0])]
        name = f"photos/p{i}.jpg"
        image.save(folder / name, quality=95)
        rec = _record(name, faces)
        rec["width"] = image.width
        records.append(rec)
        truth[name] = faces
    path = folder / "annotations.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path, truth


def _one_line_error(result) -> str:
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


# --------------------------------------------------------------------------- detection


def test_detect_format_from_the_content(tmp_path: Path) -> None:
    make_pts_folder(tmp_path / "pts", n=2)
    assert labelsets.detect_format(tmp_path / "pts") == "pts"
    jsonl, _ = make_jsonl(tmp_path / "j", n=2)
    assert labelsets.detect_format(jsonl) == "jsonl"
    assert labelsets.detect_format(jsonl.parent) == "jsonl"
    renamed = tmp_path / "labels.txt"  # the name does not matter
    shutil.copy(jsonl, renamed)
    assert labelsets.detect_format(renamed) == "jsonl"
    coco_path = tmp_path / "j" / "faces.json"
    coco.write_coco(jsonl, coco_path)
    assert labelsets.detect_format(coco_path) == "coco"
    pretty = tmp_path / "pretty.dat"
    pretty.write_text(json.dumps(json.loads(coco_path.read_text()), indent=2))
    assert labelsets.detect_format(pretty) == "coco"
    csv_path = tmp_path / "j" / "faces.csv"
    write_csv(jsonl, csv_path)
    assert labelsets.detect_format(csv_path) == "csv"
    root = install_synthetic_dataset(tmp_path / "udacity", n_train=6, n_test=6, size=64)
    assert labelsets.detect_format(root) == "udacity"


@pytest.mark.parametrize("kind", ["empty", "images-only", "text", "missing", "json"])
def test_detect_format_refuses_what_it_does_not_know(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "x"
    if kind == "empty":
        path.mkdir()
    elif kind == "images-only":
        path.mkdir()
        _face(0)[0].save(path / "a.jpg")
    elif kind == "text":
        path.write_text("hello\n")
    elif kind == "json":
        path.write_text('{"images": [1]}')
    with pytest.raises(DataError) as err:
        labelsets.detect_format(path)
    assert "\n" not in str(err.value)
    if kind == "images-only":
        assert "1 image(s) but no labels" in str(err.value)


# --------------------------------------------------------------------------- .pts


def test_pts_round_trip(tmp_path: Path) -> None:
    truth = make_pts_folder(tmp_path, n=4)
    text = (tmp_path / "face_0.pts").read_text().splitlines()
    assert text[:3] == ["version: 1", "n_points: 68", "{"] and text[-1] == "}"
    assert float(text[3].split()[0]) == pytest.approx(
        truth["face_0.jpg"][0, 0] + LABEL_ORIGIN, abs=0.01
    )
    faces = labelsets.load_faces(tmp_path)
    assert sorted(faces.names) == sorted(truth)  # recursive
    for name, kps in zip(faces.names, faces.keypoints, strict=True):
        np.testing.assert_allclose(kps, truth[name], atol=0.01)
    assert faces.images[0].shape == (SIZE, SIZE, 3)


def test_pts_bad_items_are_counted_and_skipped(tmp_path: Path, caplog) -> None:
    make_pts_folder(tmp_path, n=2)
    kps = _face(9)[1]
    for name, points in [
        ("short", kps[:67]),
        ("nan", np.where(np.arange(68)[:, None] == 5, np.nan, kps)),
        ("far", kps + 5000),
    ]:
        _face(9)[0].save(tmp_path / f"{name}.jpg")
        write_pts(tmp_path / f"{name}.pts", points)
    _face(9)[0].save(tmp_path / "unlabelled.jpg")
    write_pts(tmp_path / "orphan.pts", kps)
    (tmp_path / "broken.pts").write_text("not a pts file\n")
    _face(9)[0].save(tmp_path / "broken.jpg")
    with caplog.at_level(logging.WARNING):
        faces = labelsets.load_faces(tmp_path)
    assert sorted(faces.names) == ["face_0.jpg", "sub/face_1.png"]
    reasons = {s.name: s.reason for s in faces.skipped}
    assert reasons["short.pts"] == "67 points instead of 68"
    assert reasons["nan.pts"] == "missing or NaN keypoints"
    assert reasons["far.jpg"] == "most keypoints outside the image"
    assert reasons["orphan.pts"] == ".pts without its image"
    assert reasons["unlabelled.jpg"] == "image without .pts"
    assert reasons["broken.pts"] == "malformed .pts"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipped 6 item(s)" in warnings[0].getMessage()


def test_pts_face_cut_by_the_border_is_kept(tmp_path: Path) -> None:
    """300-W labels faces cut by the frame with points beyond it: the crop pads them."""
    image, kps = _face(3)
    cut = kps.copy()
    cut[:8, 0] = -6.0  # the left jaw beyond the photo's border
    image.save(tmp_path / "cut.jpg")
    write_pts(tmp_path / "cut.pts", cut)
    faces = labelsets.load_faces(tmp_path)
    assert faces.names == ["cut.jpg"]
    np.testing.assert_allclose(faces.keypoints[0, :8, 0], -6.0, atol=0.01)


def test_annotate_style_pts_names_for_several_faces(tmp_path: Path) -> None:
    image, kps = _face(3)
    image.save(tmp_path / "group.jpg")
    write_pts(tmp_path / "group_0.pts", kps)
    write_pts(tmp_path / "group_1.pts", kps + 1)
    faces = labelsets.load_faces(tmp_path)
    assert faces.names == ["group.jpg#group_0", "group.jpg#group_1"]
    assert labelsets.file_keys(faces) == ["group.jpg", "group.jpg"]
    assert faces.images[0] is faces.images[1]  # decoded once


# --------------------------------------------------------------------------- JSONL and COCO


def test_jsonl_every_face_is_a_sample(tmp_path: Path) -> None:
    path, truth = make_jsonl(tmp_path)
    faces = labelsets.load_faces(path)
    assert faces.names[:2] == ["photos/p0.jpg#0", "photos/p0.jpg#1"] and len(faces) == 5
    np.testing.assert_allclose(faces.keypoints[1], truth["photos/p0.jpg"][1], atol=0.01)
    assert faces.images[0].shape == (SIZE, 2 * SIZE, 3)


def test_jsonl_bad_lines_are_counted(tmp_path: Path, caplog) -> None:
    path, _ = make_jsonl(tmp_path, n=2, two_faces=False)
    short = _record("photos/p1.jpg", [_face(1)[1][:60]])
    with open(path, "a") as fh:
        fh.write("this is not json\n")
        fh.write(json.dumps(short) + "\n")
        fh.write(json.dumps(_record("photos/none.jpg", [])) + "\n")
        fh.write(json.dumps(_record("photos/gone.jpg", [_face(1)[1]])) + "\n")
    with caplog.at_level(logging.WARNING):
        faces = labelsets.load_faces(path)
    assert faces.names == ["photos/p0.jpg", "photos/p1.jpg"]
    reasons = sorted(s.reason for s in faces.skipped)
    assert reasons == [
        "60 points instead of 68",
        "image file missing",
        "image with no face",
        "line is not JSON",
    ]
    assert sum(r.levelno == logging.WARNING for r in caplog.records) == 1


def test_write_coco_round_trip_and_layout(tmp_path: Path) -> None:
    path, truth = make_jsonl(tmp_path)
    with open(path, "a") as fh:
        fh.write('{"image": "photos/cut')  # an interrupted run's last line
    out = tmp_path / coco.COCO_NAME
    assert coco.write_coco(path, out) == 5
    doc = json.loads(out.read_text())
    assert set(doc) == {"images", "annotations", "categories"}
    (cat,) = doc["categories"]
    assert (cat["id"], cat["name"], cat["supercategory"]) == (1, "face", "person")
    assert len(cat["keypoints"]) == 68 and len(set(cat["keypoints"])) == 68
    assert all(1 <= i <= 68 and 1 <= j <= 68 for i, j in cat["skeleton"])
    assert [37, 38] in cat["skeleton"] and [42, 37] in cat["skeleton"]  # an eye, closed
    assert doc["images"][0] == {"id": 1, "file_name": "photos/p0.jpg", "width": 160, "height": 80}
    ann = doc["annotations"][1]
    assert ann["image_id"] == 1 and ann["category_id"] == 1 and ann["num_keypoints"] == 68
    assert ann["score"] == 0.9 and ann["keypoints"][2::3] == [2] * 68
    box = _record("x", [truth["photos/p0.jpg"][1]])["faces"][0]["box"]
    assert ann["bbox"] == pytest.approx(
        [box[0], box[1], box[2] - box[0], box[3] - box[1]], abs=0.01
    )
    faces = labelsets.load_faces(out)
    assert len(faces) == 5
    expected = [k for name in sorted(truth) for k in truth[name]]
    np.testing.assert_allclose(faces.keypoints, np.stack(expected), atol=0.01)
    # written again from the same JSONL: the same bytes (a resumed run agrees)
    again = tmp_path / "again.json"
    coco.write_coco(path, again)
    assert again.read_bytes() == out.read_bytes()


def test_coco_images_subfolder_and_bad_annotations(tmp_path: Path) -> None:
    path, _ = make_jsonl(tmp_path / "src", n=3, two_faces=False)
    coco.write_coco(path, tmp_path / "set" / "faces.json")
    shutil.copytree(tmp_path / "src" / "photos", tmp_path / "set" / "images" / "photos")
    doc = json.loads((tmp_path / "set" / "faces.json").read_text())
    doc["annotations"][1]["keypoints"] = doc["annotations"][1]["keypoints"][:-3]
    doc["annotations"][2]["keypoints"][5] = 0  # one point not labelled
    (tmp_path / "set" / "faces.json").write_text(json.dumps(doc))
    faces = labelsets.load_faces(tmp_path / "set")  # the folder that holds it
    assert faces.names == ["photos/p0.jpg"]
    assert sorted(s.reason for s in faces.skipped) == [
        "67 keypoints instead of 68",
        "keypoints not labelled (v=0)",
    ]


def test_coco_with_another_keypoint_count_is_one_line(tmp_path: Path) -> None:
    path, _ = make_jsonl(tmp_path, n=2, two_faces=False)
    out = tmp_path / "pose.json"
    coco.write_coco(path, out)
    doc = json.loads(out.read_text())
    doc["categories"][0]["keypoints"] = doc["categories"][0]["keypoints"][:17]
    doc["categories"][0]["name"] = "person"
    out.write_text(json.dumps(doc))
    with pytest.raises(DataError, match="no COCO category with 68 keypoints .'person' has 17"):
        labelsets.load_faces(out)
    line = _one_line_error(CliRunner().invoke(app, ["evaluate", "--data", str(out)]))
    assert "68 keypoints" in line


# --------------------------------------------------------------------------- splits, records


def test_split_by_file_keeps_an_images_faces_together(tmp_path: Path) -> None:
    path, _ = make_jsonl(tmp_path, n=8)
    train, val = labelsets.training_sets(path, val_fraction=0.25, seed=3)
    keys_train, keys_val = set(labelsets.file_keys(train)), set(labelsets.file_keys(val))
    assert not keys_train & keys_val and len(keys_val) == 2 and len(train) + len(val) == 9
    again = labelsets.training_sets(path, val_fraction=0.25, seed=3)[1]
    assert again.names == val.names


def test_udacity_root_keeps_its_identity_split(tmp_path: Path) -> None:
    root = install_synthetic_dataset(tmp_path / "u", n_train=12, n_test=6, size=64)
    train, val = labelsets.training_sets(root, val_fraction=0.2, seed=1)
    expected = dataset.load_split("val", root, val_fraction=0.2, seed=1)
    assert val.names == expected.names and len(train) + len(val) == 12
    assert labelsets.fingerprint(root) == dataset.dataset_fingerprint(root)
    # its test CSV alone: the images are found in the test/ folder beside it
    test = labelsets.load_faces(root / dataset.TEST_CSV)
    assert test.names == dataset.load_split("test", root).names


def test_fingerprint_follows_the_labels(tmp_path: Path) -> None:
    make_pts_folder(tmp_path / "a", n=2)
    before = labelsets.fingerprint(tmp_path / "a")
    assert before == labelsets.fingerprint(tmp_path / "a")
    write_pts(tmp_path / "a" / "face_0.pts", _face(50)[1])
    assert labelsets.fingerprint(tmp_path / "a") != before
    make_pts_folder(tmp_path / "b", n=2)
    both = labelsets.training_fingerprint(tmp_path / "a", tmp_path / "b")
    assert both not in (
        labelsets.fingerprint(tmp_path / "a"),
        labelsets.fingerprint(tmp_path / "b"),
    )


def test_old_run_configs_still_load() -> None:
    old = {k: v for k, v in TrainConfig().to_dict().items() if k != "val_data"}
    assert TrainConfig.from_dict({**old, "data_root": "/d"}).val_data is None


# --------------------------------------------------------------------------- the CLI


def test_train_on_a_pts_folder_fine_tunes_the_bundled_model(tmp_path: Path) -> None:
    make_pts_folder(tmp_path / "train", n=8)
    make_pts_folder(tmp_path / "val", n=4, seed=40)
    args = ["train", "--data", str(tmp_path / "train"), "--val-data", str(tmp_path / "val")]
    args += ["--init", "default", "--epochs", "1", "--batch-size", "4", "--img-size", "64"]
    args += ["--workers", "0", "--device", "cpu", "--name", "ft", "--no-amp"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "8 train / 4 val samples" in result.output
    run = paths.runs_dir() / "ft"
    config = json.loads((run / "config.json").read_text())
    assert config["data_root"] == str(tmp_path / "train")
    assert config["val_data"] == str(tmp_path / "val")
    # --init without --arch fine-tunes the network the bundled model is, whatever it is
    bundled = load_checkpoint(hub.resolve_model("default", "landmarks"))
    assert config["arch"] == bundled["config"]["arch"] and config["img_size"] == 64
    expected = labelsets.training_fingerprint(tmp_path / "train", tmp_path / "val")
    assert load_checkpoint(run / "best.pt")["dataset_fingerprint"] == expected
    env = json.loads((run / "env.json").read_text())
    assert env["dataset"]["fingerprint"] == expected


def test_train_data_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    line = _one_line_error(CliRunner().invoke(app, ["train", "--data", str(tmp_path / "empty")]))
    assert "no labels" in line
    make_pts_folder(tmp_path / "pts", n=2)
    args = ["train", "--task", "detector", "--data", str(tmp_path / "pts")]
    assert "--task detector" in _one_line_error(CliRunner().invoke(app, args))
    # every .pts unusable: a folder with no labelled image
    bad = tmp_path / "bad"
    bad.mkdir()
    _face(1)[0].save(bad / "a.jpg")
    write_pts(bad / "a.pts", _face(1)[1][:67])
    line = _one_line_error(CliRunner().invoke(app, ["train", "--data", str(bad)]))
    assert "no usable labelled face" in line and "67 points instead of 68" in line


def test_evaluate_on_a_pts_folder(tmp_path: Path, tiny_landmark_checkpoint: Path) -> None:
    make_pts_folder(tmp_path / "faces", n=4)
    args = ["evaluate", str(tiny_landmark_checkpoint), "--data", str(tmp_path / "faces")]
    result = CliRunner().invoke(app, [*args, "--no-timing", "--json"])
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.output)["models"]
    assert summary["images"] == 4 and summary["split"] == f"data:{tmp_path / 'faces'}"
    assert summary["nme_io"] is not None
    table = CliRunner().invoke(app, [*args, "--no-timing"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "NME" in table.output
    # --split val: the part train --data holds out of it (one of the 4 files at 10 %)
    val = CliRunner().invoke(app, [*args, "--split", "val", "--no-timing", "--json"])
    assert val.exit_code == 0, val.output
    (held_out,) = json.loads(val.stdout)["sources"]["faces"]["models"]
    assert held_out["images"] == len(labelsets.split_faces(labelsets.load_faces(
        tmp_path / "faces"), 0.1, 0)[1]) == 1  # fmt: skip
    line = _one_line_error(CliRunner().invoke(app, [*args, "--split", "test"]))
    assert "--split test" in line


def test_preview_from_jsonl(tmp_path: Path) -> None:
    path, _ = make_jsonl(tmp_path, n=3)
    out = tmp_path / "grid.png"
    args = ["preview", "--data", str(path), "--out", str(out), "--n", "3", "--img-size", "64"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "3 jsonl samples" in result.output
    assert Image.open(out).size[0] > 64


def test_annotate_output_trains_on_the_photos_not_the_drawn_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_landmark_checkpoint: Path, caplog
) -> None:
    """annotate's folder holds the JSONL, .pts files and annotated copies under the photos'
    names: --data on it reads the JSONL (with a warning) and the original photos."""
    import facemark

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    image = paint_face(random_keypoints(rng, 128), 128, rng)
    image.save(tmp_path / "face.png")
    (tmp_path / "boxes.json").write_text(json.dumps({"face.png": [[20, 15, 110, 120]]}))
    facemark.annotate(
        "face.png", "out", detector="boxes:boxes.json", model=tiny_landmark_checkpoint, pts=True
    )
    assert (tmp_path / "out" / "face.png").is_file() and list((tmp_path / "out").glob("*.pts"))
    with caplog.at_level(logging.WARNING):
        faces = labelsets.load_faces(tmp_path / "out")
    assert "jsonl and pts" in caplog.text
    assert len(faces) == 1
    np.testing.assert_array_equal(faces.images[0], np.asarray(image.convert("RGB")))


# --------------------------------------------------------------------------- several sources


def test_two_sources_train_together_with_per_source_validation(tmp_path: Path) -> None:
    """train --data A --data B: each source split on its own (300-W photos by photo id),
    drawn by --data-weight, validated per source in the epoch table and metrics.jsonl."""
    root = install_synthetic_dataset(tmp_path / "u", n_train=24, n_test=4, size=SIZE)
    wild = tmp_path / "wild"
    wild.mkdir()
    for photo in range(6):  # two faces per photo, named as 300-W names them
        for face in (1, 2):
            image, kps = _face(100 + 2 * photo + face)
            image.save(wild / f"{photo}_{face}.jpg", quality=95)
            write_pts(wild / f"{photo}_{face}.pts", kps)
    sources = labelsets.training_sources(
        [str(root), str(wild)], val_fraction=0.34, seed=0, val_by="photo"
    )
    assert [s.name for s in sources] == ["udacity", "wild"]
    val_photos = {labelsets.photo_key(n) for n in sources[1].val.names}
    train_photos = {labelsets.photo_key(n) for n in sources[1].train.names}
    assert val_photos and not val_photos & train_photos  # a photo's faces stay together
    assert len(sources[1].val) == 2 * len(val_photos)
    weights = labelsets.source_weights(sources, [1.0, 3.0])
    n_u = len(sources[0].train)
    assert weights[:n_u].sum() == pytest.approx(0.25) and weights[n_u:].sum() == pytest.approx(0.75)

    args = ["train", "--data", str(root), "--data", str(wild), "--data-weight", "1"]
    args += ["--data-weight", "3", "--val-by", "photo", "--val-fraction", "0.34", "--epochs", "1"]
    args += ["--batch-size", "4", "--img-size", "64", "--workers", "0", "--device", "cpu"]
    args += ["--name", "mix", "--no-amp"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "udacity" in result.output and "wild" in result.output
    run = paths.runs_dir() / "mix"
    config = json.loads((run / "config.json").read_text())
    assert config["data_root"] == [str(root), str(wild)] and config["data_weights"] == [1.0, 3.0]
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    per_source = [row["val"]["nme_io@udacity"], row["val"]["nme_io@wild"]]
    assert row["val"]["nme_io"] == pytest.approx(np.mean(per_source))
    fingerprint = load_checkpoint(run / "best.pt")["dataset_fingerprint"]
    assert fingerprint == labelsets.training_fingerprint([str(root), str(wild)])
    assert fingerprint not in (labelsets.fingerprint(root), labelsets.fingerprint(wild))

    bad = CliRunner().invoke(app, [*args[:7], "--epochs", "1", "--name", "bad"])
    assert bad.exit_code == 2 and "1 weight(s) for 2 --data source(s)" in bad.stderr


def test_annotate_output_read_from_another_folder_finds_the_photos(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    """Records name images relative to where annotate ran: found from anywhere, never the
    annotated copies beside the records; the 'holds ... labels' note comes once."""
    from facemark import files

    run_dir, out = tmp_path / "shoot", tmp_path / "shoot" / "facemark-out"
    image, kps = _face(7)
    (run_dir / "photos").mkdir(parents=True)
    image.save(run_dir / "photos" / "x.png")
    (out / "photos").mkdir(parents=True)
    Image.new("RGB", image.size, (255, 0, 0)).save(out / "photos" / "x.png")  # the "copy"
    (out / "annotations.jsonl").write_text(json.dumps(_record("photos/x.png", [kps])) + "\n")
    write_pts(out / "photos" / "x.pts", kps)
    monkeypatch.chdir(run_dir)
    files.mark_output(out, "test")
    monkeypatch.chdir(tmp_path)  # somewhere else
    with caplog.at_level(logging.WARNING):
        faces = labelsets.load_faces(out)
        labelsets.fingerprint(out)
    np.testing.assert_array_equal(faces.images[0], np.asarray(image.convert("RGB")))
    assert sum("holds jsonl and pts labels" in r.getMessage() for r in caplog.records) == 1
    (run_dir / "photos" / "x.png").unlink()
    with pytest.raises(DataError, match="looked up in: .*shoot"):
        labelsets.load_faces(out / "annotations.jsonl")


def test_evaluate_scores_each_source_on_its_held_out_part(
    tmp_path: Path, tiny_landmark_checkpoint: Path
) -> None:
    """evaluate --data A --data B --split val: a table per source, each on the part that
    train --data A --data B held out of it."""
    root = install_synthetic_dataset(tmp_path / "u", n_train=12, n_test=4, size=SIZE)
    wild = tmp_path / "wild"
    make_pts_folder(wild, n=10)
    args = ["evaluate", str(tiny_landmark_checkpoint), "--data", str(root), "--data", str(wild)]
    args += ["--split", "val", "--val-fraction", "0.3", "--no-timing", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    sources = json.loads(result.stdout)["sources"]
    assert list(sources) == ["udacity", "wild"]
    held_out = labelsets.split_faces(labelsets.load_faces(wild), 0.3, 0)[1]
    assert sources["wild"]["models"][0]["images"] == len(held_out)
    assert sources["udacity"]["models"][0]["split"] == "val"
    table = CliRunner().invoke(app, args[:-1], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "wild" in table.stdout and "udacity" in table.stdout
