"""How tools/train_faceness.py varies the crops and picks the threshold (the fit itself is
tested in test_pipeline.py; the figures are in docs/faceness.md)."""

from __future__ import annotations

import numpy as np

from synthetic import load_tool

tool = load_tool("train_faceness")


def test_threshold_rises_only_as_far_as_the_animals_require() -> None:
    def share(t: float) -> float:  # validation animals with a face fall as t rises
        return {0.05: 0.2, 0.1: 0.1, 0.15: 0.06}.get(round(t, 2), 0.02 if t < 0.6 else 0.0)

    assert tool.choose_threshold(0.99, share) == 0.2  # the first grid value within 3 %
    assert tool.choose_threshold(0.12, share) == 0.1  # never above the lowest human face
    assert tool.choose_threshold(0.03, share) == 0.03  # below the grid: that face's score
    assert tool.choose_threshold(0.99, lambda t: 1.0) == 0.9  # animals never fit: the cap


def test_varied_crops_are_cut_covered_and_darkened_copies() -> None:
    rng = np.random.default_rng(0)
    crops = np.full((10, 32, 32, 3), 200, np.uint8)
    texture = np.zeros((4, 32, 32, 3), np.uint8)
    out = tool.varied(crops, texture, rng)
    assert out.shape == (25, 32, 32, 3) and out.dtype == np.uint8
    assert np.array_equal(out[:10], crops)  # the originals first, untouched
    cut, covered, dark = out[10:15], out[15:20], out[20:25]
    for part in (cut, covered):  # a region replaced by black padding or the (black) texture
        assert all((c == 0).any() and (c == 200).any() for c in part)
    assert (dark < 200).all() and (dark[..., 2] <= dark[..., 0]).all()  # darker and warmer
