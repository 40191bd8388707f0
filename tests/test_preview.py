"""``facemark preview`` end to end, and the drawing helpers it shares with annotate/evaluate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from facemark import draw
from facemark.cli import app
from facemark.preview import enlarge
from facemark.shape import MEAN_SHAPE
from synthetic import install_synthetic_dataset

runner = CliRunner()


def test_preview_command_writes_a_grid(tmp_path: Path) -> None:
    install_synthetic_dataset(n_train=24, n_test=6)
    out = tmp_path / "grid.png"
    result = runner.invoke(
        app, ["preview", "--out", str(out), "--n", "4", "--numbers", "--img-size", "64"]
    )
    assert result.exit_code == 0, result.output
    assert "trainval" in result.output and "wrote" in result.output
    grid = Image.open(out)
    assert grid.format == "PNG" and grid.width > 2 * 448  # 2x2 tiles, enlarged for numbers
    # same seed -> same picture; another seed -> another one
    again = tmp_path / "again.png"
    runner.invoke(
        app, ["preview", "--out", str(again), "--n", "4", "--numbers", "--img-size", "64"]
    )
    assert np.array_equal(np.asarray(grid), np.asarray(Image.open(again)))
    other = tmp_path / "other.png"
    result = runner.invoke(
        app,
        ["preview", "-o", str(other), "-n", "4", "--numbers", "--img-size", "64", "--seed", "9"],
    )
    assert result.exit_code == 0 and not np.array_equal(
        np.asarray(grid), np.asarray(Image.open(other))
    )


def test_preview_test_split_without_augmentation(tmp_path: Path) -> None:
    install_synthetic_dataset(n_train=12, n_test=6)
    out = tmp_path / "test.png"
    result = runner.invoke(
        app, ["preview", "--split", "test", "--no-augment", "--n", "50", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "6 test samples" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--out", "x.jpg"], 2, "PNG"),
        (["--out", "x.png", "--split", "nope"], 2, "split must be one of"),
        (["--out", "x.png", "--val-by", "person"], 2, "val_by"),
    ],
)
def test_preview_bad_options_are_one_line_errors(
    tmp_path: Path, args, code: int, message: str
) -> None:
    install_synthetic_dataset(n_train=12, n_test=6)
    args = [str(tmp_path / a) if a.endswith((".png", ".jpg")) else a for a in args]
    result = runner.invoke(app, ["preview", *args])
    assert result.exit_code == code
    assert message in result.output and "Traceback" not in result.output


def test_preview_of_an_empty_val_split_is_an_error(tmp_path: Path) -> None:
    install_synthetic_dataset(n_train=12, n_test=6)
    out = tmp_path / "g.png"
    result = runner.invoke(
        app, ["preview", "--split", "val", "--val-fraction", "0", "-o", str(out)]
    )
    assert result.exit_code == 1 and "empty" in result.output and not out.exists()


def test_preview_without_dataset_says_how_to_get_it(tmp_path: Path) -> None:
    result = runner.invoke(app, ["preview", "--out", str(tmp_path / "g.png")])
    assert result.exit_code == 1 and "fetch-data" in result.output
    assert not (tmp_path / "g.png").exists()


# --------------------------------------------------------------------------- draw


def test_draw_keypoints_marks_the_points_and_leaves_input_alone() -> None:
    img = np.zeros((100, 120, 3), np.uint8)
    kps = MEAN_SHAPE * 30 + [60, 50]
    out = draw.draw_keypoints(img, kps, radius=1.5)
    assert img.max() == 0  # input untouched
    arr = np.asarray(out)
    for i in (0, 8, 36, 62):
        x, y = np.round(kps[i]).astype(int)
        assert tuple(arr[y, x]) == draw.POINT_COLORS[i]
    assert arr[5, 5].tolist() == [0, 0, 0]
    conf = np.linspace(0, 1, 68)
    arr = np.asarray(draw.draw_keypoints(img, kps, radius=1.5, confidence=conf))
    x, y = np.round(kps[0]).astype(int)
    assert tuple(arr[y, x]) == (255, 0, 0)  # confidence 0 is red
    numbered = np.asarray(draw.draw_keypoints(img, kps, numbers=True, lines=True))
    assert (numbered != np.asarray(out)).any()


def test_confidence_colors() -> None:
    assert draw.confidence_color(0) == (255, 0, 0)
    assert draw.confidence_color(0.5) == (255, 255, 0)
    assert draw.confidence_color(1) == (0, 255, 0)


def test_draw_boxes_with_scores() -> None:
    img = Image.new("RGB", (200, 150))
    out = np.asarray(draw.draw_boxes(img, np.array([[20, 40, 120, 140]]), scores=[0.93], width=2))
    assert tuple(out[90, 20]) == draw.BOX_COLOR and tuple(out[90, 70]) == (0, 0, 0)
    assert (out[20:40, 20:60] == draw.BOX_COLOR).all(axis=-1).any()  # the score tag above the box


def test_make_grid_layout() -> None:
    tiles = [np.full((32, 32, 3), v, np.uint8) for v in (50, 100, 150, 200, 250)]
    grid = draw.make_grid(tiles, ncols=3, pad=2)
    assert grid.size == (3 * 34 + 2, 2 * 34 + 2)
    arr = np.asarray(grid)
    assert arr[2 + 16, 2 + 34 + 16].tolist() == [100, 100, 100]
    captioned = draw.make_grid(tiles, captions=[f"a very long caption {i}" * 3 for i in range(5)])
    assert captioned.height > 2 * 34


def test_enlarge_moves_points_with_pixels() -> None:
    crop = np.zeros((16, 16, 3), np.uint8)
    crop[5, 9] = 255
    big, pts = enlarge(crop, np.array([[9.0, 5.0]]), 64)
    arr = np.asarray(big)[..., 0]
    ys, xs = np.nonzero(arr)
    assert pts[0] == pytest.approx([xs.mean(), ys.mean()])
