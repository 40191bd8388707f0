"""The pieces of the detector's training canvases (:mod:`facemark.data.canvas`): geometry
helpers and face-free textures, each a pure function of its arguments and a random generator.

They are kept apart from :class:`~facemark.data.canvas.CanvasSynthesizer`, which decides where
faces go, so each file reads on its own.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

# --------------------------------------------------------------------------- geometry helpers


def margin_rects(
    shape: tuple[int, ...], box: np.ndarray, min_side: int = 12
) -> list[tuple[int, int, int, int]]:
    """The four strips of a frame beside, above and below its face, with a safety gap."""
    h, w = shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    gap = 0.1 * max(x1 - x0, y1 - y0)
    left, right = int(np.floor(x0 - gap)), int(np.ceil(x1 + gap))
    top, bottom = int(np.floor(y0 - gap)), int(np.ceil(y1 + gap))
    rects = [(0, 0, left, h), (right, 0, w, h), (0, 0, w, top), (0, bottom, w, h)]
    return [r for r in rects if r[2] - r[0] >= min_side and r[3] - r[1] >= min_side]


def inside_mask(src_h: int, src_w: int, inv: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """1 where an output pixel samples from inside the source image (bilinear-safe), else 0."""
    ys, xs = np.mgrid[0:out_h, 0:out_w].astype(np.float32)
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    return ((sx >= 0) & (sx <= src_w - 1) & (sy >= 0) & (sy <= src_h - 1)).astype(np.float32)


def feather_mask(h: int, w: int, width: float) -> np.ndarray:
    """A soft-edged rectangle: 0 at the border, ramping to 1 over ``width`` pixels."""
    y = np.minimum(np.arange(h) + 0.5, h - 0.5 - np.arange(h)) / max(width, 1e-3)
    x = np.minimum(np.arange(w) + 0.5, w - 0.5 - np.arange(w)) / max(width, 1e-3)
    return np.clip(np.minimum(y[:, None], x[None, :]), 0.0, 1.0).astype(np.float32)


def log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(max(hi, lo * 1.0001)))))


# --------------------------------------------------------------------------- textures


def count_weights(n: int) -> np.ndarray:
    """Fewer faces are likelier: weights 1/k for k faces."""
    w = 1.0 / np.arange(1, n + 1)
    return w / w.sum()


def splits(rng: np.random.Generator, length: int, parts: int) -> list[int]:
    """Cut ``[0, length)`` into ``parts`` pieces of roughly equal, jittered size."""
    cuts = (np.arange(1, parts) + rng.uniform(-0.25, 0.25, size=parts - 1)) * length / parts
    return [0, *sorted(int(round(c)) for c in cuts), length]


def smooth_noise(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Low-frequency colour noise with a little grain: walls, skies, out-of-focus scenes."""
    gw, gh = int(rng.integers(2, 17)), int(rng.integers(2, 17))
    low = Image.fromarray(rng.integers(0, 256, size=(gh, gw, 3), dtype=np.uint8))
    out = np.asarray(low.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
    grain = rng.standard_normal(size=out.shape, dtype=np.float32) * np.float32(rng.uniform(0, 12))
    return np.clip(out + grain, 0, 255).astype(np.uint8)


def gradient(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A linear blend between two colours in a random direction."""
    a, b = (
        rng.uniform(0, 255, size=3).astype(np.float32),
        rng.uniform(0, 255, size=3).astype(np.float32),
    )
    angle = rng.uniform(0, 2 * np.pi)
    xs = np.arange(w, dtype=np.float32)[None, :] * np.float32(np.cos(angle))
    ys = np.arange(h, dtype=np.float32)[:, None] * np.float32(np.sin(angle))
    t = xs + ys
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return (a + (b - a) * t[..., None]).astype(np.uint8)


def clutter(rng: np.random.Generator, bg: np.ndarray) -> np.ndarray:
    """Rectangles, ellipses (some skin-coloured), lines and polygons: faces are not blobs."""
    img = Image.fromarray(bg)
    draw = ImageDraw.Draw(img)
    h, w = bg.shape[:2]
    for _ in range(int(rng.integers(1, 7))):
        colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
        if rng.random() < 0.2:  # skin tones, so a skin-coloured blob alone is no face
            tone = rng.uniform(0.35, 1.0)
            colour = (int(235 * tone), int(180 * tone), int(145 * tone))
        x0, x1 = sorted(rng.uniform(-0.1, 1.1, size=2) * w)
        y0, y1 = sorted(rng.uniform(-0.1, 1.1, size=2) * h)
        shape = rng.integers(4)
        if shape == 0:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        elif shape == 1:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif shape == 2:
            draw.line(
                (x0, y0, x1, y1), fill=colour, width=int(rng.integers(1, max(2, min(w, h) // 20)))
            )
        else:
            pts = rng.uniform(0, 1, size=(int(rng.integers(3, 7)), 2)) * [w, h]
            draw.polygon([tuple(p) for p in pts], fill=colour)
    return np.asarray(img)


def flip_boxes(boxes: np.ndarray, width: int) -> np.ndarray:
    """Mirror boxes left-right inside an image ``width`` pixels wide (pixel-index convention)."""
    out = np.array(boxes, dtype=np.float32, copy=True).reshape(-1, 4)
    out[:, 0], out[:, 2] = width - 1 - boxes[:, 2], width - 1 - boxes[:, 0]
    return out
