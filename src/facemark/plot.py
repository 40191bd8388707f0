"""Small PNG line charts drawn with Pillow: training curves and CED curves.

A plotting library would be a heavy dependency for two kinds of chart, so this draws axes,
"nice" ticks, grid, lines and a legend itself.  Non-finite values break a line instead of
breaking the chart.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from facemark.files import atomic_write

Series = dict[str, tuple[Sequence[float], Sequence[float]]]

#: Colour-blind-friendly palette (Okabe-Ito), cycled through the series.
PALETTE = [
    (0, 114, 178),
    (213, 94, 0),
    (0, 158, 115),
    (204, 121, 167),
    (86, 180, 233),
    (230, 159, 0),
    (0, 0, 0),
]


@dataclass
class Chart:
    """One panel: named series of (xs, ys) with its title and axis labels."""

    series: Series
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""


def line_chart(
    series: Series,
    path: str | os.PathLike,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    size: tuple[int, int] = (720, 450),
) -> None:
    """Draw one chart of ``{name: (xs, ys)}`` and write it to ``path`` as PNG (atomically)."""
    save_charts([Chart(series, title, xlabel, ylabel)], path, size)


def save_charts(
    charts: Sequence[Chart], path: str | os.PathLike, size: tuple[int, int] = (720, 450)
) -> None:
    """Several charts side by side (each ``size``) in one PNG, e.g. loss next to val NME."""
    width, height = size
    img = Image.new("RGB", (width * max(len(charts), 1), height), "white")
    draw = ImageDraw.Draw(img)
    for i, chart in enumerate(charts):
        _draw_chart(draw, (i * width, 0, (i + 1) * width, height), chart)
    with atomic_write(path, "wb") as fh:
        img.save(fh, format="PNG")


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 x 10^k steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0) * 0.1
    raw = (hi - lo) / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    if ticks[-1] < hi:
        ticks.append(round(v, 12))
    return ticks


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-3:
        return f"{v:.0e}"
    return f"{v:.4g}"


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    return x1 - x0, y1 - y0


def _finite_points(xs: Sequence[float], ys: Sequence[float]) -> list[tuple[float, float] | None]:
    """Points, with None where a value is not finite (a gap in the line)."""
    out: list[tuple[float, float] | None] = []
    for x, y in zip(xs, ys, strict=False):
        x, y = float(x), float(y)
        out.append((x, y) if math.isfinite(x) and math.isfinite(y) else None)
    return out


def _draw_chart(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], chart: Chart) -> None:
    bx0, by0, bx1, by1 = box
    font, small = _font(15), _font(12)
    lines = {name: _finite_points(xs, ys) for name, (xs, ys) in chart.series.items()}
    pts = [p for line in lines.values() for p in line if p is not None]
    left, right, top, bottom = bx0 + 70, bx1 - 20, by0 + 40, by1 - 55
    if chart.title:
        tw, _ = _text_size(draw, chart.title, font)
        draw.text(((bx0 + bx1 - tw) / 2, by0 + 10), chart.title, fill="black", font=font)
    if not pts:
        draw.rectangle((left, top, right, bottom), outline=(160, 160, 160))
        draw.text((left + 10, top + 10), "no data", fill=(120, 120, 120), font=small)
        return
    xt = nice_ticks(min(p[0] for p in pts), max(p[0] for p in pts))
    yt = nice_ticks(min(p[1] for p in pts), max(p[1] for p in pts))
    x_lo, x_hi, y_lo, y_hi = xt[0], xt[-1], yt[0], yt[-1]

    def sx(x: float) -> float:
        return left + (x - x_lo) / ((x_hi - x_lo) or 1.0) * (right - left)

    def sy(y: float) -> float:
        return bottom - (y - y_lo) / ((y_hi - y_lo) or 1.0) * (bottom - top)

    for t in xt:
        draw.line((sx(t), top, sx(t), bottom), fill=(230, 230, 230))
        label = _fmt(t)
        tw, _ = _text_size(draw, label, small)
        draw.text((sx(t) - tw / 2, bottom + 6), label, fill=(60, 60, 60), font=small)
    for t in yt:
        draw.line((left, sy(t), right, sy(t)), fill=(230, 230, 230))
        label = _fmt(t)
        tw, th = _text_size(draw, label, small)
        draw.text((left - tw - 6, sy(t) - th / 2 - 2), label, fill=(60, 60, 60), font=small)
    draw.rectangle((left, top, right, bottom), outline=(90, 90, 90))
    if chart.xlabel:
        tw, _ = _text_size(draw, chart.xlabel, small)
        draw.text(((left + right - tw) / 2, bottom + 26), chart.xlabel, fill="black", font=small)
    if chart.ylabel:
        draw.text((bx0 + 6, top - 22), chart.ylabel, fill="black", font=small)

    for i, (name, line) in enumerate(lines.items()):
        colour = PALETTE[i % len(PALETTE)]
        segment: list[tuple[float, float]] = []
        for p in [*line, None]:
            if p is not None:
                segment.append((sx(p[0]), sy(p[1])))
                continue
            if len(segment) > 1:
                draw.line(segment, fill=colour, width=2, joint="curve")
            elif len(segment) == 1:
                x, y = segment[0]
                draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
            segment = []
        # legend, top right, one row per series
        tw, th = _text_size(draw, name, small)
        ly = top + 8 + i * (th + 8)
        draw.line(
            (right - tw - 38, ly + th / 2 + 2, right - tw - 16, ly + th / 2 + 2),
            fill=colour,
            width=3,
        )
        draw.text((right - tw - 10, ly), name, fill="black", font=small)
