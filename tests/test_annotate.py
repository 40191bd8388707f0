"""annotate: inputs, JSONL/CSV/PTS outputs, resuming, sharding, safety, the Python API.

Most tests inject stub models through the library API (a "face" is a pure red square, found
by colour; its keypoints are a fixed pattern inside the box), so the geometry is known
exactly and the tests stay fast.  One end-to-end test runs the CLI with tiny real checkpoints.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

import facemark
from facemark import annotator as an
from facemark import cli, transforms
from facemark.cli import app
from facemark.confidence import LOW_CONFIDENCE
from facemark.detectors import Detections, Detector
from facemark.errors import DataError, UsageError
from facemark.files import read_jsonl
from facemark.images import load_image
from facemark.landmarker import Landmarker
from facemark.pipeline import FaceMarker
from facemark.pose import head_pose
from facemark.results import ImageResult
from facemark.shape import MEAN_SHAPE

RED = (255, 0, 0)
BLUE = (0, 0, 255)


# --------------------------------------------------------------------------- stubs


def _colour_box(image: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray | None:
    mask = np.all(np.abs(image.astype(int) - colour) < 40, axis=2)
    if not mask.any():
        return None
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=np.float64)


class StubDetector(Detector):
    """Finds a red square (face 0) and a blue square (face 1); counts the images it sees."""

    name = "stub"

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self.seen = 0
        self.batches: list[int] = []

    def detect_batch(self, images, names=None, sizes=None):
        self.seen += len(images)
        self.batches.append(len(images))
        out = []
        for image in images:
            boxes = [
                b for b in (_colour_box(image, RED), _colour_box(image, BLUE)) if b is not None
            ]
            arr = np.array(boxes, dtype=np.float32).reshape(-1, 4)
            found = Detections(arr, np.linspace(0.9, 0.8, len(arr)).astype(np.float32))
            out.append(found.finish(self.config))
        return out


#: Crop size of the stub landmarker (big enough that every test face is cropped at full size).
STUB_SIZE = 128


def stub_crop_keypoints() -> np.ndarray:
    """The mean shape fitted into a square box, in crop pixels (where any box lands)."""
    half = (STUB_SIZE - 1) / 2
    side = STUB_SIZE / transforms.CROP_SCALE  # a square box's side in its crop
    return (half + MEAN_SHAPE * side * 0.5).astype(np.float32)


class StubLandmarker(Landmarker):
    """The mean shape fitted into each (square) box: deterministic, known from the box alone."""

    def __init__(self) -> None:
        super().__init__(torch.nn.Identity(), STUB_SIZE)

    def predict_crops(self, crops, flip=False):
        n = len(crops)
        kps = np.broadcast_to(stub_crop_keypoints(), (n, 68, 2)).copy()
        return kps, np.full((n, 68), 0.75, np.float32)


def stub_keypoints(boxes: np.ndarray) -> np.ndarray:
    """What the pipeline reports for the stub: its crop points mapped back through each box's
    crop matrix (= the mean shape centred on the box, scaled to half its side)."""
    out = []
    for box in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        back = transforms.invert_affine(transforms.crop_matrix(box, STUB_SIZE))
        crop = stub_crop_keypoints().astype(np.float64)
        out.append(transforms.apply_affine(crop, back).astype(np.float32))
    return np.stack(out).astype(np.float64)


def square_image(
    path: Path, size=(80, 60), box=(10, 20, 39, 49), colour=RED, bg=(90, 120, 90), **save
) -> Path:
    img = Image.new("RGB", size, bg)
    if box is not None:
        img.paste(colour, (box[0], box[1], box[2] + 1, box[3] + 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **save)
    return path


def run_stub(inputs, out=None, **kwargs):
    kwargs.setdefault("model", StubLandmarker())
    kwargs.setdefault("detector", StubDetector())
    return [r.to_dict() for r in facemark.annotate(inputs, out, **kwargs) if r.ok]


def tree_hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Two face images (one with two faces), one without a face, one corrupt file."""
    folder = tmp_path / "photos"
    square_image(folder / "one.jpg", quality=100, subsampling=0)
    img = Image.new("RGB", (120, 90), (200, 200, 200))
    img.paste(RED, (5, 5, 35, 35))
    img.paste(BLUE, (60, 40, 100, 80))
    img.save(folder / "two.png")
    square_image(folder / "empty.png", box=None)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    return folder


# --------------------------------------------------------------------------- records


def test_records_schema_coordinates_and_no_face(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.warns(an.AnnotateWarning, match="broken.jpg"):
        records = run_stub([photos], out)
    by_name = {Path(r["image"]).name: r for r in records}
    assert set(by_name) == {"one.jpg", "two.png", "empty.png"}  # broken.jpg: an error
    assert jsonl(out / "annotations.jsonl") == records  # what is returned is what is written
    one = by_name["one.jpg"]
    assert list(one) == ["image", "width", "height", "detector", "faces"]
    assert one["detector"] == {"name": "stub", "version": ""}
    assert one["image"] == os.path.join(str(photos), "one.jpg")  # the folder as given + name
    assert (one["width"], one["height"]) == (80, 60)
    (face,) = one["faces"]
    assert list(face) == ["box", "score", "keypoints", "confidence", "low_confidence", "pose"]
    assert face["low_confidence"] is True  # the stub's 0.75 everywhere is below LOW_CONFIDENCE
    assert list(face["pose"]) == ["yaw", "pitch", "roll", "rvec", "tvec"]
    pose = head_pose(np.array(face["keypoints"]), (80, 60))  # from the rounded points
    assert [face["pose"][k] for k in ("yaw", "pitch", "roll")] == pytest.approx(
        [pose.yaw, pose.pitch, pose.roll], abs=0.05
    )
    assert face["box"] == [10, 20, 39, 49]
    assert len(face["keypoints"]) == 68 and len(face["confidence"]) == 68
    expected = np.round(stub_keypoints(np.array([[10.0, 20, 39, 49]]))[0], 2)
    centre, side = np.array([24.5, 34.5]), 29.0  # the mean shape fitted into the box
    np.testing.assert_allclose(expected, centre + MEAN_SHAPE * side * 0.5, atol=0.006)
    assert face["keypoints"] == expected.tolist()
    assert all(round(v, 2) == v for point in face["keypoints"] for v in point)
    assert [f["box"] for f in by_name["two.png"]["faces"]] == [[5, 5, 34, 34], [60, 40, 99, 79]]
    assert by_name["empty.png"]["faces"] == []


class SureOfLandmarker(StubLandmarker):
    """The stub's points, with a mean confidence just above LOW_CONFIDENCE on a face of one
    colour (red or blue) and just below it on the other (the crop's centre pixel says which)."""

    def __init__(self, sure_of: str = "red") -> None:
        super().__init__()
        self.sure_of = sure_of

    def predict_crops(self, crops, flip=False):
        kps, _ = super().predict_crops(crops, flip)
        centre = np.asarray(crops)[:, STUB_SIZE // 2, STUB_SIZE // 2].astype(int)
        sure = (centre[:, 0] > centre[:, 2]) == (self.sure_of == "red")
        mean = np.where(sure, LOW_CONFIDENCE + 0.01, LOW_CONFIDENCE - 0.01)
        spread = np.linspace(-0.05, 0.05, 68)  # points differ; the face's mean is what counts
        return kps, (mean[:, None] + spread[None]).astype(np.float32)


def two_faces(path: Path) -> Path:
    """A red face (0.9 detector score) and a blue face (0.8)."""
    img = Image.new("RGB", (120, 90), (200, 200, 200))
    img.paste(RED, (5, 5, 35, 35))
    img.paste(BLUE, (60, 40, 100, 80))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def test_low_confidence_flag_follows_the_mean_confidence(tmp_path: Path) -> None:
    for sure_of in ("red", "blue"):
        (record,) = run_stub(two_faces(tmp_path / "two.png"), model=SureOfLandmarker(sure_of))
        red, blue = record["faces"]  # best detector score first
        sure, unsure = (red, blue) if sure_of == "red" else (blue, red)
        assert np.mean(sure["confidence"]) > LOW_CONFIDENCE > np.mean(unsure["confidence"])
        assert sure["low_confidence"] is False and unsure["low_confidence"] is True
        assert min(sure["confidence"]) < LOW_CONFIDENCE  # one point below does not flag a face


def test_min_confidence_drops_faces_and_counts_them(tmp_path: Path) -> None:
    image = two_faces(tmp_path / "in" / "two.png")
    records: list[dict] = []
    config = an.AnnotateConfig.from_options(
        model=SureOfLandmarker("red"), detector=StubDetector(), min_confidence=LOW_CONFIDENCE
    )
    out = tmp_path / "out"
    summary = an.run([image], out, config, on_record=lambda r: records.append(r.to_dict()))
    assert summary.faces == 1 and summary.below_min_confidence == 1 and summary.rejected == 0
    assert summary.to_dict()["below_min_confidence"] == 1
    (face,) = records[0]["faces"]
    assert face["low_confidence"] is False and face["score"] == pytest.approx(0.9)
    assert jsonl(out / "annotations.jsonl") == records
    shown = io.StringIO()
    Console(file=shown, width=120).print(an.summary_table(summary))
    assert "dropped (below --min-confidence) │ 1" in shown.getvalue()
    # applied before --max-faces: when the best-scored face is dropped, the next one is kept
    records.clear()
    picky = an.AnnotateConfig.from_options(config, model=SureOfLandmarker("blue"), max_faces=1)
    summary = an.run([image], None, picky, on_record=lambda r: records.append(r.to_dict()))
    assert (summary.faces, summary.below_min_confidence) == (1, 1)
    assert records[0]["faces"][0]["score"] == pytest.approx(0.8)  # the blue face
    # off (None, the default) keeps both faces; 0 keeps every face too
    for minimum in (None, 0.0):
        kept = an.run([image], None, an.AnnotateConfig.from_options(config, min_confidence=minimum))
        assert (kept.faces, kept.below_min_confidence) == (2, 0)


@pytest.mark.parametrize("value", ["-0.1", "1.5", "nan"])
def test_cli_bad_min_confidence_is_one_line(tmp_path: Path, value: str, monkeypatch, capsys):
    image = two_faces(tmp_path / "two.png")
    out = tmp_path / "out"
    args = ["facemark", "annotate", str(image), "--out", str(out), "--min-confidence", value]
    monkeypatch.setattr(sys, "argv", args)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()  # the console script: usage errors as one line too
    assert exit_info.value.code != 0
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "--min-confidence" in lines[0], captured.err
    assert "Traceback" not in captured.err and not out.exists()


def test_api_bad_min_confidence_is_a_usage_error(tmp_path: Path) -> None:
    image = two_faces(tmp_path / "two.png")
    for value in (-0.1, 1.5, float("nan")):
        with pytest.raises(
            UsageError, match=r"--min-confidence \(min_confidence=\) must be between 0 and 1"
        ):
            run_stub(image, min_confidence=value)


def test_exif_rotation_gives_displayed_pixels(tmp_path: Path) -> None:
    # Stored 80x60 with the square at x 10..39, y 5..34; orientation 6 = shown rotated 90° CW.
    stored = Image.new("RGB", (80, 60), (90, 120, 90))
    stored.paste(RED, (10, 5, 40, 35))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif, quality=100, subsampling=0)
    (record,) = run_stub(path)
    assert (record["width"], record["height"]) == (60, 80)
    # 90° CW: stored (x, y) is displayed at (H - 1 - y, x)
    assert record["faces"][0]["box"] == [60 - 1 - 34, 10, 60 - 1 - 5, 39]


@pytest.mark.parametrize(
    "name, make",
    [
        ("gray.png", lambda img: img.convert("L")),
        ("rgba.png", lambda img: img.convert("RGBA")),
        ("palette.png", lambda img: img.convert("P")),
        ("photo.bmp", lambda img: img),
        ("photo.webp", lambda img: img),
        ("photo.tiff", lambda img: img),
    ],
)
def test_formats_and_modes(tmp_path: Path, name: str, make) -> None:
    base = Image.new("RGB", (64, 64), (0, 0, 0))
    base.paste((255, 255, 255), (8, 8, 40, 40))
    make(base).save(tmp_path / name, **({"lossless": True} if name.endswith("webp") else {}))
    image = load_image(tmp_path / name)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert image[20, 20].min() > 200 and image[50, 50].max() < 50


def test_sixteen_bit_is_scaled_not_clipped_and_alpha_goes_on_white(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 65535, 256), (4, 1)).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    image = load_image(tmp_path / "deep.png")
    assert image[0, 0, 0] == 0 and image[0, -1, 0] == 255
    assert 120 < image[0, 128, 0] < 136  # mid-grey stays mid-grey (Pillow alone clips to 255)
    clear = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    clear.save(tmp_path / "clear.png")
    assert (load_image(tmp_path / "clear.png") == 255).all()


def test_truncated_file_is_a_counted_failure(photos: Path, tmp_path: Path) -> None:
    data = (photos / "one.jpg").read_bytes()
    (photos / "cut.jpg").write_bytes(data[: len(data) // 2])
    warnings_seen: list[str] = []
    summary = an.run(
        [photos],
        tmp_path / "out",
        an.AnnotateConfig(model=StubLandmarker(), detector=StubDetector()),
        on_warning=warnings_seen.append,
    )
    assert summary.images == 3 and summary.faces == 3
    assert sorted(Path(p).name for p, _ in summary.failures) == ["broken.jpg", "cut.jpg"]
    assert any("cut.jpg" in w for w in warnings_seen)
    assert len(jsonl(tmp_path / "out" / "annotations.jsonl")) == 3


def test_nothing_readable_is_an_error(tmp_path: Path) -> None:
    """The engine behind the CLI: one line, not a warning followed by an error repeating it."""
    config = an.AnnotateConfig(model=StubLandmarker(), detector=StubDetector())
    (tmp_path / "bad.png").write_bytes(b"nope")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DataError, match=r"no image could be read \(.*bad.png: "):
            an.run(tmp_path / "bad.png", None, config)
    assert not [w for w in caught if issubclass(w.category, an.AnnotateWarning)]
    (tmp_path / "bad2.jpg").write_bytes(b"\xff\xd8 cut")
    with pytest.raises(DataError, match=r"\(2 failed; first: "):
        an.run(tmp_path, None, config)
    with pytest.raises(UsageError, match="no images to annotate .*no such file or folder"):
        an.run(tmp_path / "does-not-exist", None, config)


def test_the_api_returns_an_error_record_instead_of_raising(tmp_path: Path) -> None:
    """One result per input: what cannot be read says why, and the rest are as if alone."""
    (tmp_path / "bad.png").write_bytes(b"nope")
    good = square_image(tmp_path / "good.jpg")
    missing = tmp_path / "missing.jpg"
    with pytest.warns(an.AnnotateWarning):
        results = facemark.annotate(
            [missing, tmp_path / "bad.png", good, b"\x89PNG cut", np.zeros((4, 4, 2), np.uint8)],
            model=StubLandmarker(),
            detector=StubDetector(),
        )
    by_source = {r.source: r for r in results}
    assert len(results) == 5
    assert by_source[str(missing)].to_dict() == {
        "image": str(missing),
        "error": "no such file or folder",
    }
    assert by_source[str(tmp_path / "bad.png")].error == "not an image Pillow can read"
    alone = run_stub(good)
    assert by_source[str(good)].to_dict() == alone[0] and by_source[str(good)].ok
    memory = [r for r in results if r.source.startswith("memory/")]
    assert [r.error for r in memory] == [
        "not an image Pillow can read",
        "expected an (H, W, 3) image, got shape (4, 4, 2)",
    ]
    assert facemark.annotate([], model=StubLandmarker(), detector=StubDetector()) == []


def test_results_come_in_the_order_of_the_inputs_failures_included(tmp_path: Path) -> None:
    good = square_image(tmp_path / "good.jpg")
    pixels = np.asarray(Image.open(good).convert("RGB"))
    with pytest.warns(an.AnnotateWarning):
        results = facemark.annotate(
            [pixels, b"garbage", pixels[::-1].copy(), b"more garbage"],
            model=StubLandmarker(),
            detector=StubDetector(),
        )  # one batch: the failures were reported before the batch's images
    assert [r.ok for r in results] == [True, False, True, False]


def test_images_in_memory_keep_their_records_across_runs(tmp_path: Path) -> None:
    """An image given in memory is named by its content (memory/<hash>.png), so a re-run
    into the same folder keeps its record, and annotating it again replaces it."""
    good = square_image(tmp_path / "in" / "a.jpg")
    pixels = np.asarray(Image.open(good).convert("RGB"))
    out = tmp_path / "out"
    first = run_stub([good, pixels], out)
    name = first[1]["image"]
    assert name.startswith("memory/") and (out / name).is_file()
    run_stub([good], out)
    run_stub([pixels.copy()], out)  # the same pixels: the same name, its record replaced
    assert sorted(r["image"] for r in jsonl(out / "annotations.jsonl")) == sorted([str(good), name])


# --------------------------------------------------------------------------- outputs


def test_overlays_csv_and_pts(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.warns(an.AnnotateWarning):
        run_stub([photos], out, csv=True, pts=True, boxes=True)
    overlay = Image.open(out / "one.jpg")
    assert overlay.size == (80, 60) and overlay.format == "JPEG"
    assert Image.open(out / "two.png").format == "PNG" and (out / "empty.png").is_file()
    original = np.asarray(Image.open(photos / "two.png").convert("RGB"))
    assert (np.asarray(Image.open(out / "two.png").convert("RGB")) != original).any()

    with open(out / "annotations.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == [""] + [str(i) for i in range(136)]
    names = [r[0] for r in rows[1:]]
    one, two = os.path.join(str(photos), "one.jpg"), os.path.join(str(photos), "two.png")
    assert names == [one, f"{two}#0", f"{two}#1"]  # one row per face; suffix only if several
    from facemark.data import read_keypoints_csv

    csv_names, kps, skipped = read_keypoints_csv(out / "annotations.csv")
    assert csv_names == names and kps.shape == (3, 68, 2) and not skipped

    pts_files = sorted(p.name for p in out.glob("*.pts"))
    assert pts_files == ["one.pts", "two_0.pts", "two_1.pts"]
    lines = (out / "one.pts").read_text().splitlines()
    assert lines[:3] == ["version: 1", "n_points: 68", "{"] and lines[-1] == "}"
    pts = np.array([[float(v) for v in line.split()] for line in lines[3:-1]])
    # files are in the dataset's 1-based convention; read back they match the JSONL (0-based)
    np.testing.assert_allclose(pts - 1.0, kps[0], atol=0.006)
    records = [json.loads(line) for line in (out / "annotations.jsonl").read_text().splitlines()]
    (record,) = [r for r in records if r["image"] == one]
    np.testing.assert_allclose(kps[0], record["faces"][0]["keypoints"], atol=0.006)


def test_no_draw_writes_only_jsonl(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.warns(an.AnnotateWarning):
        run_stub([photos], out, draw=False)
    assert sorted(p.name for p in out.iterdir()) == [an.OUTPUT_MARKER, "annotations.jsonl"]


def test_out_none_writes_nothing_and_annotate_is_the_function(
    photos: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    before = tree_hashes(tmp_path)
    import facemark.annotator  # importing the module must not rebind facemark.annotate

    assert facemark.annotate is an.annotate
    with pytest.warns(an.AnnotateWarning):
        records = [
            r.to_dict()
            for r in facemark.annotate(str(photos), model=StubLandmarker(), detector=StubDetector())
        ]
    assert isinstance(records, list) and len(records) == 4  # broken.jpg: an error record
    assert sum("error" in r for r in records) == 1
    assert tree_hashes(tmp_path) == before
    image = np.asarray(Image.open(photos / "one.jpg"))
    faces = FaceMarker(StubDetector(), StubLandmarker())(image)
    single = ImageResult(None, image.shape[1], image.shape[0], tuple(faces)).to_dict()
    assert single["image"] is None and single["faces"][0]["box"] == [10, 20, 39, 49]


def test_inputs_are_never_modified_and_out_cannot_be_an_input_folder(
    photos: Path, tmp_path: Path
) -> None:
    before = tree_hashes(photos)
    with pytest.raises(UsageError, match="input"):
        run_stub([photos], photos)
    with pytest.raises(UsageError, match="input"):
        run_stub([photos / "one.jpg"], photos, draw=False)
    # an output folder inside the input folder is fine, and a second run does not re-annotate it
    with pytest.warns(an.AnnotateWarning):
        first = run_stub([photos], photos / "marked", recursive=True)
        second = run_stub([photos], photos / "marked", recursive=True)
    assert len(first) == len(second) == 3
    after = tree_hashes(photos)
    assert {k: v for k, v in after.items() if not k.startswith("marked")} == before
    # a recursive glob skips the output folder too
    with pytest.warns(an.AnnotateWarning):
        third = run_stub([str(photos / "**" / "*.*")], photos / "marked")
    assert len(third) == 3
    # ... but a subfolder of the user's own photos is an input folder, not an output folder
    square_image(photos / "2020" / "one.jpg", box=(1, 1, 30, 30))
    with pytest.raises(UsageError, match="input"):
        run_stub([photos], photos / "2020", recursive=True)


def test_same_file_names_in_different_folders_do_not_collide(tmp_path: Path) -> None:
    square_image(tmp_path / "a" / "x.jpg", box=(0, 0, 29, 29))
    square_image(tmp_path / "b" / "x.jpg", box=(40, 10, 69, 39))
    square_image(tmp_path / "b" / "x.png", box=(5, 5, 34, 34))
    out = tmp_path / "out"
    run_stub([tmp_path / "a", tmp_path / "b"], out, pts=True)
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == [
        an.OUTPUT_MARKER,
        "a/x.jpg",
        "a/x.pts",
        "annotations.jsonl",
        "b/x.jpg",
        "b/x.jpg.pts",
        "b/x.png",
        "b/x.png.pts",
    ]
    assert "40.00 " not in (out / "a" / "x.pts").read_text()


# --------------------------------------------------------------------------- inputs


def test_globs_recursion_hidden_files_and_duplicates(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ["p/a.jpg", "p/b.PNG", "p/sub/c.webp", "p/.hidden.jpg", "p/.git/d.jpg"]:
        square_image(tmp_path / name)
    (tmp_path / "p" / "notes.txt").write_text("not an image")
    items, problems = an.collect_inputs(["p"])
    assert [i.image for i in items] == ["p/a.jpg", "p/b.PNG"] and not problems
    items, _ = an.collect_inputs(["p/"], recursive=True)
    assert [i.image for i in items] == ["p/a.jpg", "p/b.PNG", "p/sub/c.webp"]
    items, _ = an.collect_inputs(["p/**/*.webp", "p/a.jpg", "./p/a.jpg", "missing.jpg"])
    assert [i.image for i in items] == ["p/sub/c.webp", "p/a.jpg"]
    items, problems = an.collect_inputs(["missing.jpg", "nothing*.jpg", "p/sub"])
    assert [reason for _, reason in problems] == [
        "no such file or folder",
        "no file matches this pattern",
    ] and len(items) == 1


def test_shards_partition_the_inputs(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    for i in range(12):
        square_image(folder / f"img{i:02d}.png", box=(i, i, i + 29, i + 29))
    out = tmp_path / "out"
    seen: list[set[str]] = []
    for k in (1, 2, 3):
        records = run_stub([folder], out, shard=f"{k}/3", draw=False)
        seen.append({r["image"] for r in records})
        assert {r["image"] for r in jsonl(out / f"annotations.shard-{k}-of-3.jsonl")} == seen[-1]
    assert set.union(*seen) == {os.path.join(str(folder), f"img{i:02d}.png") for i in range(12)}
    assert sum(len(s) for s in seen) == 12  # disjoint
    assert run_stub([folder], None, shard="2/3") == run_stub([folder], None, shard=(2, 3))
    for bad in ("0/3", "4/3", "1/0", "a/b", "3"):
        with pytest.raises(UsageError, match="shard"):
            an.parse_shard(bad)


def test_skip_existing_resumes_an_interrupted_run(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    for i in range(5):
        square_image(folder / f"{i}.png", box=(i, 2, i + 29, 31))
    out = tmp_path / "out"
    run_stub([folder], out)
    lines = (out / "annotations.jsonl").read_text().splitlines(keepends=True)
    # as if killed while writing the fourth line: three complete lines and a partial one
    (out / "annotations.jsonl").write_text("".join(lines[:3]) + lines[3][:40])
    detector = StubDetector()
    config = an.AnnotateConfig(skip_existing=True, detector=detector, model=StubLandmarker())
    summary = an.run([folder], out, config)
    assert (summary.skipped, summary.images, detector.seen) == (3, 2, 2)
    records = jsonl(out / "annotations.jsonl")
    assert sorted(r["image"] for r in records) == sorted(
        json.loads(line)["image"] for line in lines
    )
    again = an.run([folder], out, config)
    assert (again.skipped, again.images, detector.seen) == (5, 0, 2)


def test_batches_span_images(tmp_path: Path) -> None:
    for i in range(7):
        square_image(tmp_path / "p" / f"{i}.png")
    detector = StubDetector()
    run_stub(tmp_path / "p", detector=detector, batch_size=3)
    assert detector.batches == [3, 3, 1]


def test_bad_options_are_usage_errors(photos: Path, tmp_path: Path) -> None:
    for kwargs in ({"threshold": 1.5}, {"batch_size": 0}, {"max_faces": 0}, {"min_face": -1}):
        with pytest.raises(UsageError):
            run_stub([photos / "one.jpg"], tmp_path / "o", **kwargs)
    with pytest.raises(UsageError, match="output folder"):
        run_stub([photos / "one.jpg"], None, csv=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        run_stub([photos / "one.jpg"], tmp_path / "file")


# --------------------------------------------------------------------------- package


def test_import_facemark_does_not_import_torch() -> None:
    code = (
        "import sys, facemark; assert 'torch' not in sys.modules; "
        "assert callable(facemark.annotate); assert 'torch' not in sys.modules; "
        "print(sorted(facemark.__all__))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for name in ("annotate", "load_model", "load_detector", "Landmarker", "FaceMarker", "Detector"):
        assert name in result.stdout


def test_cli_reports_unreadable_only_input(tmp_path: Path) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    result = CliRunner().invoke(
        app, ["annotate", str(tmp_path / "bad.jpg"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code != 0
    assert "no image could be read" in result.output and "Traceback" not in result.output


# --------------------------------------------------------------------------- end to end


def test_cli_end_to_end_with_tiny_real_models(
    tmp_path: Path, tiny_landmark_checkpoint: Path, tiny_detector_checkpoint: Path
) -> None:
    from synthetic import paint_face, random_keypoints

    rng = np.random.default_rng(3)
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        paint_face(random_keypoints(rng, 128), 128, rng).save(folder / f"face{i}.jpg")
    square_image(folder / "plain.png", size=(100, 70), box=None)
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8 nope")
    before = tree_hashes(folder)
    out = tmp_path / "out"
    args = [
        "annotate",
        str(folder),
        "--out",
        str(out),
        "--model",
        str(tiny_landmark_checkpoint),
        "--detector",
        str(tiny_detector_checkpoint),
        "--threshold",
        "0",
        "--max-faces",
        "2",
        "--boxes",
        "--csv",
        "--pts",
        "--batch-size",
        "2",
        "--det-size",
        "96",
    ]
    runner = CliRunner()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "corrupt.jpg" in result.output and "failures" in result.output
    records = jsonl(out / "annotations.jsonl")
    assert [Path(r["image"]).name for r in records] == ["face0.jpg", "face1.jpg", "plain.png"]
    for record in records:
        assert len(record["faces"]) <= 2
        for face in record["faces"]:
            assert len(face["box"]) == 4 and 0.0 <= face["score"] <= 1.0
            kps = np.array(face["keypoints"])
            assert kps.shape == (68, 2) and np.isfinite(kps).all()
            assert len(face["confidence"]) == 68
    assert {p.name for p in out.iterdir()} >= {
        "face0.jpg",
        "face1.jpg",
        "plain.png",
        "annotations.csv",
    }
    assert tree_hashes(folder) == before

    again = runner.invoke(app, [*args, "--skip-existing", "--json"])
    assert again.exit_code == 0, again.output
    summary = json.loads(again.output.strip().splitlines()[-1])
    assert (summary["images"], summary["skipped"], summary["failures"]) == (0, 3, 1)


def test_batched_landmarks_equal_per_image_predict(tiny_landmark_checkpoint: Path) -> None:
    landmarker = facemark.load_model(tiny_landmark_checkpoint)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (90, 120, 3), dtype=np.uint8) for _ in range(3)]
    boxes = [
        np.array([[10.0, 5, 60, 70], [50, 20, 110, 85]]),
        np.zeros((0, 4)),
        np.array([[0.0, 0, 40, 40]]),
    ]
    batched = FaceMarker(None, landmarker, flip=True).landmarks(images, boxes)
    for image, b, (kps, conf) in zip(images, boxes, batched, strict=True):
        if not len(b):
            assert kps.shape == (0, 68, 2) and conf.shape == (0, 68)
            continue
        ref_kps, ref_conf = landmarker.predict(image, b, flip=True)
        np.testing.assert_allclose(kps, ref_kps, atol=1e-3)
        np.testing.assert_allclose(conf, ref_conf, atol=1e-5)


def test_loaded_models_are_cached_until_the_file_changes(
    tmp_path: Path, tiny_detector_checkpoint: Path
) -> None:
    import shutil

    path = shutil.copy(tiny_detector_checkpoint, tmp_path / "det.pt")
    first = an.load_marker(an.AnnotateConfig(detector=str(path)))
    assert an.load_marker(an.AnnotateConfig(detector=path)) is first
    os.utime(path, ns=(0, os.stat(path).st_mtime_ns + 10**9))  # e.g. a better best.pt saved
    assert an.load_marker(an.AnnotateConfig(detector=str(path))) is not first


def test_a_rerun_into_the_same_folder_merges_instead_of_dropping(tmp_path: Path) -> None:
    """Nothing earlier is lost: an image annotated again gets its newer record, the others
    keep theirs, and the summary says how many of each."""
    photos = [square_image(tmp_path / "p" / f"{k}.jpg") for k in range(3)]
    out = tmp_path / "out"
    config = an.AnnotateConfig.from_options(model=StubLandmarker(), detector=StubDetector())
    first = an.run([tmp_path / "p"], out, config)
    assert (first.earlier_kept, first.replaced) == (0, 0)
    square_image(photos[1], box=(30, 10, 59, 39))  # the photo changed since
    again = an.run([photos[1]], out, config)
    assert (again.images, again.earlier_kept, again.replaced) == (1, 2, 1)
    records = list(read_jsonl(out / "annotations.jsonl"))
    assert [Path(r["image"]).name for r in records] == ["0.jpg", "2.jpg", "1.jpg"]
    assert records[-1]["faces"][0]["box"][0] > 25  # the newer result
    table = io.StringIO()
    Console(file=table, width=120).print(an.summary_table(again))
    assert "2 kept, 1 replaced by this run" in table.getvalue()


def test_output_folders_are_never_inputs_wherever_they_are(tmp_path: Path) -> None:
    """annotate p2 -r --out p2/other read its own earlier annotated copies as photos."""
    for k in range(2):
        square_image(tmp_path / "p2" / f"{k}.jpg")
    config = an.AnnotateConfig.from_options(
        model=StubLandmarker(), detector=StubDetector(), recursive=True
    )
    an.run([tmp_path / "p2"], tmp_path / "elsewhere", config)
    shutil.copytree(tmp_path / "elsewhere", tmp_path / "p2" / "old-run")
    summary = an.run([tmp_path / "p2"], tmp_path / "p2" / "other", config)
    assert (summary.found, summary.outputs_skipped) == (2, 2)
    warnings: list[str] = []
    with pytest.raises(UsageError, match="no images to annotate"):
        an.run([tmp_path / "elsewhere"], tmp_path / "x", config, on_warning=warnings.append)


def test_threads_is_a_setting_the_decode_pool_follows(tmp_path: Path, monkeypatch) -> None:
    """--threads maps to AnnotateConfig.threads: torch's threads and the decoding threads
    (which otherwise follow the CPUs this process may use, not the machine's count)."""
    square_image(tmp_path / "p" / "a.jpg")
    sizes: list[int] = []
    from facemark.annotator import decoding

    real_pool = decoding.ThreadPoolExecutor

    def recording_pool(max_workers=None, thread_name_prefix=""):
        if thread_name_prefix == "facemark-read":
            sizes.append(max_workers)
        return real_pool(max_workers=max_workers, thread_name_prefix=thread_name_prefix)

    monkeypatch.setattr(decoding, "ThreadPoolExecutor", recording_pool)
    before = torch.get_num_threads()
    try:
        run_stub([tmp_path / "p"], threads=1)
        assert sizes == [1] and torch.get_num_threads() == 1
        run_stub([tmp_path / "p"])
        assert sizes[-1] == min(4, an.available_cpus())
    finally:
        torch.set_num_threads(before)
    with pytest.raises(UsageError, match=r"--threads \(threads=\) must be >= 1"):
        run_stub([tmp_path / "p"], threads=0)
    assert an.available_cpus() >= 1
