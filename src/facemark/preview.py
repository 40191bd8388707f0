"""``facemark preview``: a grid of training samples exactly as the network receives them.

The samples go through the same :class:`~facemark.data.LandmarkDataset` as training
(crop, augmentation, tensor conversion and back), so what you see is what the model sees; the
keypoints are drawn from the returned targets, so a misplaced dot means a real bug.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facemark import data, draw, transforms
from facemark.config import SPLIT, SplitConfig
from facemark.errors import DataError, UsageError
from facemark.files import atomic_write, plain

#: Tiles are shown at least this large so dots (and numbers) are legible.
MIN_TILE = 192
MIN_TILE_NUMBERS = 448


@dataclass
class PreviewResult:
    out: Path
    split: str
    count: int
    img_size: int
    augment: bool
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return plain(self)


def enlarge(crop: np.ndarray, kps: np.ndarray, size: int) -> tuple[Image.Image, np.ndarray]:
    """Upscale a crop for display and move its keypoints with it (pixel-index convention)."""
    k = size / crop.shape[0]
    img = Image.fromarray(crop).resize(
        (size, size), Image.Resampling.NEAREST if k >= 2 else Image.Resampling.BILINEAR
    )
    return img, (np.asarray(kps, dtype=np.float64) + 0.5) * k - 0.5


def render_samples(
    ds: data.LandmarkDataset,
    indices: list[int],
    *,
    numbers: bool = False,
    tile: int | None = None,
) -> Image.Image:
    """Draw ``ds[i]`` for each index into one grid image, captioned with the frame names."""
    tile = tile or max(ds.img_size, MIN_TILE_NUMBERS if numbers else MIN_TILE)
    tiles = []
    for i in indices:
        image, kps = ds[i]
        big, pts = enlarge(transforms.to_uint8(image), kps.numpy(), tile)
        tiles.append(draw.draw_keypoints(big, pts, numbers=numbers, radius=max(1.5, tile / 110)))
    captions = [Path(ds.faces.names[i]).stem for i in indices]
    return draw.make_grid(tiles, captions=captions)


def preview(
    out: str | Path,
    split: str = "train",
    n: int = 16,
    seed: int = 0,
    augment: bool = True,
    numbers: bool = False,
    img_size: int = 128,
    root: str | Path | None = None,
    val_fraction: float = SPLIT.val_fraction,
    val_by: str = SPLIT.val_by,
    split_seed: int = SPLIT.seed,
    epoch: int = 0,
) -> PreviewResult:
    """Write a PNG grid of ``n`` random samples of ``split`` to ``out``.

    ``seed`` picks the frames and drives the augmentation, so the same command draws the same
    grid.  Only the chosen frames are decoded.  ``root`` may be any label set
    :func:`facemark.data.open_labels` reads (then ``split`` is ignored: samples come from all
    faces, and the result's ``split`` names the format).
    """
    if n < 1:
        raise UsageError(f"--n must be at least 1, not {n}")
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise UsageError(f"the preview is written as PNG; name the output *.png, not {out.name}")
    labels = data.open_labels(root)
    if not labels.is_udacity:
        # a .pts folder, JSONL, COCO JSON or CSV: samples from all of its faces
        faces = labels.faces(limit=n, limit_seed=seed)
        split = labels.format
        sizes: dict[str, dict[str, int]] = {}
    else:
        sizes = data.split_sizes(root, val_fraction, split_seed, val_by)
        held_out = SplitConfig(val_fraction=val_fraction, seed=split_seed, val_by=val_by)
        faces = labels.split(split, held_out, limit=n, limit_seed=seed)
    if not len(faces):
        raise DataError(f"the {split} split is empty (val_fraction={val_fraction})")
    ds = data.LandmarkDataset(faces, img_size, augment=augment, seed=seed)
    ds.set_epoch(epoch)
    grid = render_samples(ds, list(range(len(faces))), numbers=numbers)
    with atomic_write(out) as fh:
        grid.save(fh, format="PNG")
    return PreviewResult(out, split, len(faces), img_size, augment, sizes, len(faces.skipped))
