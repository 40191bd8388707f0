"""The annotated copy of a video (``--draw``): each kept frame with its points drawn,
encoded to an MP4 beside the JSONL."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from facemark.video.decoding import Frame
from facemark.video.probe import load_av


def overlay_path(out: Path, rel: os.PathLike | str, stem: str) -> Path:
    """The annotated copy of a video: ``<out>/<folder>/<stem>.annotated.mp4``."""
    return out / Path(rel).parent / f"{stem}.annotated.mp4"


class Overlay:
    """The annotated copy: each kept frame with its points drawn, H.264 (libx264 when
    FFmpeg has it, else MPEG-4) in an MP4, at the frames' own timestamps."""

    def __init__(self, path: Path, rate: float, boxes: bool) -> None:
        self.av = load_av()
        self.path, self.boxes = path, boxes
        self.rate = Fraction(rate).limit_denominator(1001) if rate > 0 else Fraction(25)
        self.partial = path.with_name(path.name + ".partial")
        self.container: Any = None
        self.stream: Any = None
        self.t0: float | None = None
        self.last_pts = -1

    def __enter__(self) -> Overlay:
        return self

    def _open(self, width: int, height: int) -> None:
        av = self.av
        self.container = av.open(str(self.partial), "w", format="mp4")
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        options = {"preset": "veryfast", "crf": "20"} if codec == "libx264" else {}
        self.stream = self.container.add_stream(codec, rate=self.rate, options=options)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        self.stream.codec_context.time_base = Fraction(1, 1000)

    def write(self, frame: Frame, record: dict[str, Any]) -> None:
        from facemark import draw

        image = frame.image[: frame.image.shape[0] // 2 * 2, : frame.image.shape[1] // 2 * 2]
        if self.container is None:
            self._open(image.shape[1], image.shape[0])
            self.t0 = frame.timestamp
        faces = record["faces"]
        picture = draw.to_pil(image)
        if faces and self.boxes:
            picture = draw.draw_boxes(
                picture, np.array([f["box"] for f in faces]), [f["score"] for f in faces]
            )
        if faces:
            picture = draw.draw_keypoints(picture, np.array([f["keypoints"] for f in faces]))
        out = self.av.VideoFrame.from_image(picture)
        pts = max(round((frame.timestamp - (self.t0 or 0.0)) * 1000), self.last_pts + 1)
        out.pts, out.time_base, self.last_pts = pts, Fraction(1, 1000), pts
        for packet in self.stream.encode(out):
            self.container.mux(packet)

    def __exit__(self, *exc: object) -> None:
        if self.container is None:
            return
        try:
            if exc[0] is None:
                for packet in self.stream.encode():
                    self.container.mux(packet)
        finally:
            self.container.close()
