"""One inference contract (issue 22): every input type gives the same record, a bad image
gives an error record, Parquet reads back in the published schema, and Ray and Dask runs
equal ``facemark.annotate``."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import facemark
from facemark.cli import app
from facemark.detectors import Detections, Detector
from facemark.images import load_image
from facemark.pipeline import FaceMarker
from facemark.results import ImageResult, arrow_schema


class BrightSquare(Detector):
    """Finds the bright square of the test images (any colour depth): a detector whose boxes
    depend on the pixels, ahead of the real landmark model."""

    name = "bright"

    def detect_batch(self, images, names=None, sizes=None):
        out = []
        for image in images:
            ys, xs = np.nonzero(image.mean(axis=2) > 200)
            boxes = np.array([[xs.min(), ys.min(), xs.max(), ys.max()]] if len(xs) else [])
            found = Detections(boxes.reshape(-1, 4).astype(np.float32), np.full(len(boxes), 0.9))
            out.append(found.finish(self.config))
        return out


def _face_like(size=(360, 280)) -> np.ndarray:
    """A textured background with a bright square (a 'face' for BrightSquare)."""
    rng = np.random.default_rng(0)
    img = rng.integers(40, 140, (size[1], size[0], 3)).astype(np.uint8)
    img[60:200, 90:230] = rng.integers(205, 255, (140, 140, 3)).astype(np.uint8)
    return img


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    rgb = Image.fromarray(_face_like())
    files = {}
    for name, save in {
        "a.jpg": {"quality": 90},
        "b.png": {},
        "c.webp": {"quality": 90},
    }.items():
        rgb.save(folder / name, **save)
        files[name] = folder / name
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: turned upright when read
    rgb.transpose(Image.Transpose.ROTATE_90).save(folder / "rotated.jpg", exif=exif, quality=90)
    files["rotated.jpg"] = folder / "rotated.jpg"
    gray16 = (_face_like()[..., 0].astype(np.uint16) * 257).astype(np.uint16)
    Image.fromarray(gray16).save(folder / "deep.png")
    files["deep.png"] = folder / "deep.png"
    return files


@pytest.fixture(scope="module")
def marker() -> FaceMarker:
    return FaceMarker(BrightSquare(), "default", confirm=0.0, faceness=0.0)


def _without_source(result: ImageResult) -> dict:
    record = result.to_dict()
    record.pop("image")
    return record


def test_every_input_type_gives_the_same_record(images, marker) -> None:
    for name, path in images.items():
        with open(path, "rb") as fh:
            by_file = marker.annotate([fh])[0]
        forms = {
            "bytes": marker.annotate([path.read_bytes()])[0],
            "file": by_file,
            "pil": marker.annotate([Image.open(path)])[0],
            "array": marker.annotate([load_image(path)])[0],
        }
        by_path = marker.annotate([path])[0]
        assert by_path.source == str(path) and len(by_path.faces) == 1, name
        if name == "rotated.jpg":  # stored 280 x 360, turned upright as the others are
            assert Image.open(path).size == (280, 360)
            assert (by_path.width, by_path.height) == (360, 280)
        for form, result in forms.items():
            assert _without_source(result) == _without_source(by_path), (name, form)
        assert forms["file"].source == str(path) and forms["bytes"].source is None


def test_a_bad_image_is_one_error_record_and_the_rest_as_if_alone(images, marker) -> None:
    good = [images["a.jpg"], images["b.png"]]
    alone = [marker.annotate([p])[0] for p in good]
    batch = marker.annotate([good[0], b"\x89PNG\r\n cut short", Image.new("RGB", (1, 1)), good[1]])
    assert batch[1].error == "not an image Pillow can read" and not batch[1].faces
    assert batch[1].to_dict() == {"image": None, "error": "not an image Pillow can read"}
    assert batch[2].ok and batch[2].faces == ()
    # as if alone, up to float noise (torch picks kernels by batch size): 1e-4 px
    for got, want in zip([batch[0], batch[3]], alone, strict=True):
        _close(got.to_dict(), want.to_dict())


def test_parquet_reads_back_in_the_published_schema(images, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "out"
    folder = images["a.jpg"].parent
    result = CliRunner().invoke(
        app,
        ["annotate", str(folder), "--out", str(out), "--no-draw", "--parquet", "--faceness", "0"],
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(out / "annotations.parquet")
    assert table.schema.equals(arrow_schema())
    lines = [json.loads(x) for x in (out / "annotations.jsonl").read_text().splitlines()]
    assert table.num_rows == len(lines) == 5
    for row, line in zip(table.to_pylist(), lines, strict=True):
        assert {k: v for k, v in row.items() if k in line} == line
        assert all(row[k] is None for k in row if k not in line)


def test_parquet_without_pyarrow_is_one_line(monkeypatch, tmp_path: Path, images) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    result = CliRunner().invoke(
        app, ["annotate", str(images["a.jpg"]), "--out", str(tmp_path / "o"), "--parquet"]
    )
    assert result.exit_code != 0
    assert "pip install 'facemark[parquet]'" in result.output
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- engines


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Two real photos with faces when the shared archive is there, a face-free image and a
    corrupt file always."""
    from conftest import SHARED_ZIP

    folder = tmp_path_factory.mktemp("engine-photos")
    if SHARED_ZIP.is_file():
        with zipfile.ZipFile(SHARED_ZIP) as zf:
            for name in ("obamas.jpg", "mona_lisa.jpg"):
                data = zf.read(f"P1_Facial_Keypoints-master/images/{name}")
                (folder / name).write_bytes(data)
    Image.fromarray(_face_like()).save(folder / "plain.jpg")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    return folder


def _reference(folder: Path) -> dict[str, dict]:
    with pytest.warns(facemark.annotator.AnnotateWarning):
        results = facemark.annotate(folder, threads=1)
    return {Path(r.source).name: r.to_dict() for r in results}


def _close(a, b, atol: float = 0.011) -> None:
    """Records equal up to ``atol`` in every number (one unit of the 2-decimal rounding)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _close(a[key], b[key], atol)
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _close(x, y, atol)
    elif isinstance(a, float) and not isinstance(a, bool):
        assert abs(a - b) <= atol, (a, b)
    else:
        assert a == b


def _same(rows: dict[str, dict], reference: dict[str, dict]) -> None:
    assert set(rows) == set(reference)
    for name, ref in reference.items():
        row = {k: v for k, v in rows[name].items() if v is not None or k in ref}
        assert row.keys() == ref.keys(), name
        if "error" in ref:
            assert row["error"] == ref["error"]
            continue
        assert len(row["faces"]) == len(ref["faces"]), name
        for a, b in zip(row["faces"], ref["faces"], strict=True):
            np.testing.assert_allclose(a["keypoints"], b["keypoints"], atol=0.01)


RAY_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    import facemark.ray
    rows = facemark.ray.annotate(sys.argv[1]).take_all()
    json.dump(rows, sys.stdout)
    """
)


def test_ray_equals_annotate(photos: Path) -> None:
    pytest.importorskip("ray.data")
    reference = _reference(photos)
    try:  # a hang (actors starving the readers) fails the test instead of the suite
        done = subprocess.run(
            [sys.executable, "-c", RAY_SCRIPT, str(photos)],
            capture_output=True,
            text=True,
            timeout=240,
            env={**__import__("os").environ, "RAY_AUTH_MODE": "disabled"},
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the Ray run did not finish in 240 s")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {Path(r["image"]).name: r for r in json.loads(done.stdout)}
    _same(rows, reference)


def test_dask_equals_annotate(photos: Path) -> None:
    bag = pytest.importorskip("dask.bag")
    reference = _reference(photos)
    files = sorted(str(p) for p in photos.iterdir())

    def mark(paths):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [r.to_dict() for r in facemark.annotate(list(paths), threads=1)]

    rows = bag.from_sequence(files, npartitions=2).map_partitions(mark).compute(scheduler="sync")
    _same({Path(r["image"]).name: r for r in rows}, reference)


def test_ray_module_without_ray_names_the_extra() -> None:
    code = "import sys; sys.modules['ray'] = None; import facemark.ray"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0
    assert "pip install 'facemark[ray]'" in done.stderr.strip().splitlines()[-1]


def test_file_objects_must_be_binary() -> None:
    results = facemark.FaceMarker(BrightSquare(), "default").annotate([io.StringIO("x")])
    assert results[0].error == "a file object must be opened in binary mode ('rb')"
