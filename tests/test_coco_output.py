"""annotate --coco: annotations.coco.json beside the JSONL, loadable by pycocotools.

(The round trip through ``--data`` is tested with the reader in the COCO reader's tests.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import facemark
from facemark.cli import app
from facemark.errors import UsageError

BG = (90, 120, 90)


def _photos(folder: Path) -> dict[str, list[list[float]]]:
    """Three photos (two faces, one face, none) and the boxes a user would give for them."""
    folder.mkdir(parents=True)
    boxes = {
        "a.jpg": [[10.0, 12.0, 58.0, 70.0], [70.0, 20.0, 110.0, 66.0]],
        "b.png": [[20.0, 15.0, 70.0, 75.0]],
        "c.png": [],
    }
    rng = np.random.default_rng(0)
    for name in boxes:
        pixels = rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / name)
    return {str(folder / name): b for name, b in boxes.items()}


def _coco_against_jsonl(coco_path: Path, jsonl_path: Path) -> int:
    """pycocotools loads the file; every face's 68 x, y, v match the JSONL's (0.01 px)."""
    coco_api = pytest.importorskip("pycocotools.coco", reason="pycocotools (dev extra)")
    coco = coco_api.COCO(str(coco_path))
    records = [json.loads(line) for line in jsonl_path.read_text().splitlines()]
    by_name = {img["file_name"]: img for img in coco.loadImgs(coco.getImgIds())}
    assert sorted(by_name) == sorted(r["image"] for r in records)
    (category,) = coco.loadCats(coco.getCatIds())
    assert category["name"] == "face" and len(category["keypoints"]) == 68
    assert category["skeleton"] and all(1 <= i <= 68 for e in category["skeleton"] for i in e)
    count = 0
    for record in records:
        image = by_name[record["image"]]
        assert (image["width"], image["height"]) == (record["width"], record["height"])
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
        assert len(anns) == len(record["faces"])
        for ann, face in zip(anns, record["faces"], strict=True):
            assert len(ann["keypoints"]) == 68 * 3 and ann["num_keypoints"] == 68
            kps = np.asarray(ann["keypoints"], dtype=np.float64).reshape(68, 3)
            np.testing.assert_allclose(kps[:, :2], face["keypoints"], atol=0.01)
            assert set(kps[:, 2]) == {2}
            x0, y0, x1, y1 = face["box"]
            np.testing.assert_allclose(ann["bbox"], [x0, y0, x1 - x0, y1 - y0], atol=0.01)
            assert ann["score"] == pytest.approx(face["score"], abs=1e-3)
            count += 1
    # keypoint evaluation runs on it too (it needs area and iscrowd): the file against itself
    from pycocotools.cocoeval import COCOeval

    results = [dict(a, score=1.0) for a in coco.loadAnns(coco.getAnnIds())]
    if results:
        evaluation = COCOeval(coco, coco.loadRes(results), "keypoints")
        evaluation.params.kpt_oks_sigmas = np.full(68, 0.025)
        evaluation.evaluate()
        evaluation.accumulate()
    return count


def test_cli_annotate_coco_loads_in_pycocotools(
    tiny_landmark_checkpoint: Path, tmp_path: Path
) -> None:
    boxes = _photos(tmp_path / "photos")
    box_file = tmp_path / "boxes.json"
    box_file.write_text(json.dumps(boxes))
    out = tmp_path / "out"
    args = [
        "annotate",
        str(tmp_path / "photos"),
        "--out",
        str(out),
        "--coco",
        "--no-draw",
        "--detector",
        f"boxes:{box_file}",
        "--model",
        str(tiny_landmark_checkpoint),
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["faces"] == 3
    assert (out / "annotations.coco.json").is_file() and not (out / "annotations.csv").exists()
    assert _coco_against_jsonl(out / "annotations.coco.json", out / "annotations.jsonl") == 3


def test_coco_per_shard_and_after_a_resume(tiny_landmark_checkpoint: Path, tmp_path: Path) -> None:
    boxes = _photos(tmp_path / "photos")
    box_file = tmp_path / "boxes.json"
    box_file.write_text(json.dumps(boxes))
    out = tmp_path / "out"
    options = dict(
        detector=f"boxes:{box_file}", model=str(tiny_landmark_checkpoint), draw=False, coco=True
    )
    for i in (1, 2):
        facemark.annotate([tmp_path / "photos"], out, shard=f"{i}/2", **options)
    total = 0
    for i in (1, 2):
        suffix = f".shard-{i}-of-2"
        coco, jsonl = out / f"annotations{suffix}.coco.json", out / f"annotations{suffix}.jsonl"
        assert coco.is_file()
        total += _coco_against_jsonl(coco, jsonl)
    assert total == 3 and not (out / "annotations.coco.json").exists()

    # a resumed run rebuilds the file from the whole JSONL, not just the new images
    single = tmp_path / "single"
    facemark.annotate([tmp_path / "photos" / "a.jpg"], single, **options)
    facemark.annotate([tmp_path / "photos"], single, skip_existing=True, **options)
    assert _coco_against_jsonl(single / "annotations.coco.json", single / "annotations.jsonl") == 3


def test_coco_needs_an_output_folder(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="coco"):
        facemark.annotate([tmp_path], None, coco=True)
