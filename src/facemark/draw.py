"""Drawing keypoints and boxes, and tiling images into a grid.

Shared by ``preview``, ``annotate`` and the ``evaluate`` gallery so every picture the tool
makes looks the same.  Functions accept an RGB ``np.ndarray`` or a PIL image and return a new
PIL image (inputs are never modified).  Sizes (dot radius, line width, font) scale with the
image so a 96 px crop and a 4000 px photo are both readable.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from facemark.shape import NUM_POINTS

Color = tuple[int, int, int]

#: One colour per facial region, so a swapped or shifted group stands out at a glance.
REGION_COLORS: dict[str, Color] = {
    "jaw": (255, 214, 0),
    "brows": (255, 120, 0),
    "nose": (0, 200, 255),
    "eyes": (0, 255, 120),
    "mouth": (255, 60, 160),
}

#: Polylines through the 68 points: (start, stop, closed).
CONTOURS: list[tuple[int, int, bool]] = [
    (0, 17, False),
    (17, 22, False),
    (22, 27, False),
    (27, 31, False),
    (31, 36, False),
    (36, 42, True),
    (42, 48, True),
    (48, 60, True),
    (60, 68, True),
]

BOX_COLOR: Color = (0, 255, 0)


def _region_color_table() -> list[Color]:
    from facemark.shape import REGIONS

    table: list[Color] = [(255, 255, 255)] * NUM_POINTS
    for region, (a, b) in REGIONS.items():
        for i in range(a, b):
            table[i] = REGION_COLORS[region]
    return table


POINT_COLORS = _region_color_table()


def to_pil(image: np.ndarray | Image.Image) -> Image.Image:
    """A new RGB PIL image from an array (uint8 HxWx3 or HxW) or an image."""
    if isinstance(image, Image.Image):
        return image.convert("RGB") if image.mode != "RGB" else image.copy()
    return Image.fromarray(np.asarray(image)).convert("RGB")


@lru_cache(maxsize=32)
def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at ``size`` px (scalable when FreeType is available)."""
    try:
        return ImageFont.load_default(size=max(6, int(size)))
    except (TypeError, OSError):  # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default()


def default_radius(image_size: tuple[int, int], face: np.ndarray | None = None) -> float:
    """Dot radius: ~1.4 px on a 128 px crop, and never so big that a small face in a large
    photo turns into a blob (at most a 50th of the face's extent)."""
    r = min(image_size) / 90.0
    if face is not None:
        r = min(r, float(np.ptp(face, axis=0).max()) / 50.0)
    return max(1.0, r)


def confidence_color(c: float) -> Color:
    """Red (0) through yellow (0.5) to green (1)."""
    c = float(np.clip(c, 0.0, 1.0))
    if c < 0.5:
        return (255, int(round(510 * c)), 0)
    return (int(round(510 * (1 - c))), 255, 0)


def draw_keypoints(
    image: np.ndarray | Image.Image,
    keypoints: np.ndarray,
    *,
    radius: float | None = None,
    color: Color | None = None,
    numbers: bool = False,
    confidence: np.ndarray | None = None,
    lines: bool = False,
) -> Image.Image:
    """Dots at each keypoint of one face (``(68, 2)``) or several (``(F, 68, 2)``).

    Colours: by region by default, a fixed ``color``, or by per-point ``confidence`` (same
    leading shape as the points, in [0, 1]).  ``numbers`` writes each point's index beside it;
    ``lines`` joins the points into the face contours.
    """
    img = to_pil(image)
    pts = np.asarray(keypoints, dtype=np.float64).reshape(-1, NUM_POINTS, 2)
    conf = (
        None
        if confidence is None
        else np.asarray(confidence, dtype=np.float64).reshape(-1, NUM_POINTS)
    )
    draw = ImageDraw.Draw(img)
    for f, face in enumerate(pts):
        r = default_radius(img.size, face) if radius is None else float(radius)
        fnt = font(max(7, int(round(r * 3.2)))) if numbers else None
        colors = [
            confidence_color(conf[f, i]) if conf is not None else (color or POINT_COLORS[i])
            for i in range(NUM_POINTS)
        ]
        if lines:
            width = max(1, int(round(r * 0.6)))
            for a, b, closed in CONTOURS:
                seq = [tuple(p) for p in face[a:b]] + ([tuple(face[a])] if closed else [])
                draw.line(seq, fill=colors[a], width=width)
        for i, (x, y) in enumerate(face):
            draw.ellipse(
                [x - r, y - r, x + r, y + r],
                fill=colors[i],
                outline=(0, 0, 0) if r >= 2.5 else None,
            )
        if fnt is not None:
            for i, (x, y) in enumerate(face):
                draw.text(
                    (x + r, y - r),
                    str(i),
                    fill=(255, 255, 255),
                    font=fnt,
                    anchor="ls",
                    stroke_width=1,
                    stroke_fill=(0, 0, 0),
                )
    return img


def draw_boxes(
    image: np.ndarray | Image.Image,
    boxes: np.ndarray,
    scores: Sequence[float] | np.ndarray | None = None,
    labels: Sequence[str] | None = None,
    *,
    color: Color = BOX_COLOR,
    width: int | None = None,
) -> Image.Image:
    """Rectangles ``(F, 4)`` as ``x0, y0, x1, y1``, each with an optional score / label tag."""
    img = to_pil(image)
    draw = ImageDraw.Draw(img)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w = width or max(1, int(round(min(img.size) / 250)))
    fnt = font(max(9, int(round(min(img.size) / 40))))
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        draw.rectangle([x0, y0, x1, y1], outline=color, width=w)
        parts = []
        if labels is not None:
            parts.append(str(labels[k]))
        if scores is not None:
            parts.append(f"{float(scores[k]):.2f}")
        if parts:
            text = " ".join(parts)
            height = draw.textbbox((0, 0), text, font=fnt)[3]
            tx, ty = x0, max(0.0, y0 - height - 2 * w)  # above the box, or inside at the top
            bbox = draw.textbbox((tx, ty), text, font=fnt)
            draw.rectangle([bbox[0] - 1, bbox[1] - 1, bbox[2] + 1, bbox[3] + 1], fill=color)
            draw.text((tx, ty), text, fill=(0, 0, 0), font=fnt)
    return img


def make_grid(
    images: Sequence[np.ndarray | Image.Image],
    ncols: int | None = None,
    *,
    captions: Sequence[str] | None = None,
    pad: int = 4,
    background: Color = (24, 24, 24),
    tile_size: int | None = None,
) -> Image.Image:
    """Tile images left-to-right, top-to-bottom; ``ncols`` defaults to a near-square grid.

    Tiles are resized to ``tile_size`` (or the largest image's size) keeping their aspect
    ratio; optional captions go under each tile.
    """
    if not images:
        raise ValueError("make_grid needs at least one image")
    tiles = [to_pil(im) for im in images]
    side = tile_size or max(max(t.size) for t in tiles)
    ncols = ncols or int(np.ceil(np.sqrt(len(tiles))))
    nrows = int(np.ceil(len(tiles) / ncols))
    fnt = font(min(16, max(9, side // 14)))
    cap_h = (fnt.size + 4 if hasattr(fnt, "size") else 14) if captions else 0
    cell_w, cell_h = side + pad, side + pad + cap_h
    grid = Image.new("RGB", (ncols * cell_w + pad, nrows * cell_h + pad), background)
    draw = ImageDraw.Draw(grid)
    for k, tile in enumerate(tiles):
        scale = side / max(tile.size)
        if scale != 1.0:
            size = (max(1, round(tile.width * scale)), max(1, round(tile.height * scale)))
            tile = tile.resize(size, Image.Resampling.LANCZOS)
        row, col = divmod(k, ncols)
        x, y = pad + col * cell_w, pad + row * cell_h
        grid.paste(tile, (x + (side - tile.width) // 2, y + (side - tile.height) // 2))
        if captions:
            text = _fit_text(draw, str(captions[k]), fnt, side)
            draw.text((x, y + side + 2), text, fill=(220, 220, 220), font=fnt)
    return grid


def _fit_text(draw: ImageDraw.ImageDraw, text: str, fnt, width: int) -> str:
    """Shorten ``text`` with an ellipsis until it fits in ``width`` pixels."""
    if draw.textlength(text, font=fnt) <= width:
        return text
    while len(text) > 1 and draw.textlength(text + "…", font=fnt) > width:
        text = text[:-1]
    return text + "…"
