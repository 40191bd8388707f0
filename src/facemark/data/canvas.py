"""Training scenes for the face detector, synthesised from face-centred frames.

The dataset's frames are tight crops with one face filling about 40% of the frame, while a
detector must find faces of 24 px to the whole image, several per photo, among clutter that
contains no face at all.  Each training canvas is therefore composed on the fly from frames:

* ``scene``: frames with some context pasted at random positions and scales (faces of similar
  size, as in group photos) over a background, sometimes with feathered edges so the detector
  cannot use a pasted rectangle's border as a cue;
* ``grid``: a photo-collage mosaic, one frame (or a face-free patch) per cell;
* ``closeup``: one frame zoomed in (a face up to the whole canvas) or out (a small face with
  background around it);
* ``negative``: background only.

Backgrounds are real photo texture taken from the frames *away from the face* (walls, hair,
clothes, studio backdrops), smooth noise and gradients, with random shapes as clutter.  Every
geometric operation is one affine matrix applied to the frame and to its 68 keypoints, and the
box is recomputed from the moved keypoints by ``transforms.face_box_from_keypoints``, so the
target box is exact under rotation, scaling and mirroring.  Faces that are too small or cut by
the canvas edge go to an ``ignore`` list: the detector is neither rewarded nor punished there.

:func:`facemark.boxes.letterbox` is the inference-time layout (longer side resized to the
network size, grey padding right and below), shared by the detector and its validation set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from facemark import transforms
from facemark.boxes import GREY, box_area, intersection
from facemark.data.canvas_parts import (
    clutter,
    count_weights,
    feather_mask,
    flip_boxes,
    gradient,
    inside_mask,
    log_uniform,
    margin_rects,
    smooth_noise,
    splits,
)
from facemark.data.faces import FaceSet

KINDS = ("scene", "grid", "closeup", "negative")
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass
class Canvas:
    """One synthetic (or letterboxed real) image with its face boxes in pixel-index coordinates."""

    image: np.ndarray  #: (S, S, 3) uint8
    boxes: np.ndarray  #: (K, 4) float32 x0, y0, x1, y1: faces the detector must find
    ignore: np.ndarray  #: (J, 4) float32: faces too small or too cut off to count either way


def _detector_photometric() -> transforms.AugmentConfig:
    """The landmark crop's photometric augmentation without occluders (they could hide a
    face) and with milder low-resolution (a 12 px face at a third of its size is no face)."""
    return transforms.AugmentConfig(
        p_occlude=0.0, p_color=0.8, p_gray=0.1, p_blur=0.2, p_jpeg=0.25,
        p_lowres=0.05, lowres_factor=(0.5, 0.9),
    )  # fmt: skip


@dataclass
class SynthConfig:
    """How often each kind of canvas appears and how faces are laid out on it."""

    kind_weights: tuple[float, float, float, float] = (0.45, 0.15, 0.25, 0.15)  #: KINDS order
    min_face: float = 10.0  #: faces narrower than this (canvas px) are ignored, not targets
    max_scene_face: float = 0.5  #: largest face in a scene, as a fraction of the canvas side
    max_faces: int = 8
    min_visible: float = 0.7  #: a face with less of its box on the canvas is ignored
    max_cover: float = 0.15  #: a later paste may hide at most this much of an earlier face
    p_rotate: float = 0.3
    rotation: float = 20.0  #: degrees, uniform in ±rotation
    p_feather: float = 0.5  #: soft-edged paste instead of a hard rectangle
    p_letterbox: float = 0.3  #: non-square content padded with grey, as at inference
    p_clutter: float = 0.5  #: random shapes over the background
    p_flip: float = 0.5
    paste_exposure: float = 0.25  #: each pasted frame's contrast changes by up to this fraction
    p_paste_gray: float = 0.1  #: a pasted frame turns grayscale (old photos in a collage)
    photometric: transforms.AugmentConfig | None = field(default_factory=_detector_photometric)


# --------------------------------------------------------------------------- the synthesiser


class CanvasSynthesizer:
    """Composes detector training canvases of ``size`` x ``size`` pixels from ``faces``.

    Every random choice comes from the generator passed to :meth:`canvas`, so a canvas is a
    pure function of that generator's seed.
    """

    def __init__(self, faces: FaceSet, size: int, config: SynthConfig | None = None) -> None:
        if not len(faces):
            raise ValueError("the detector needs at least one face frame to synthesise canvases")
        self.faces = faces
        self.size = int(size)
        self.config = config or SynthConfig()
        self.boxes = faces.boxes()
        self.negatives = [
            (i, rect)
            for i in range(len(faces))
            for rect in margin_rects(faces.images[i].shape, self.boxes[i])
        ]
        weights = np.asarray(self.config.kind_weights, dtype=np.float64)
        self._kind_p = weights / weights.sum()

    # ----------------------------------------------------------------- public

    def canvas(self, rng: np.random.Generator, kind: str | None = None) -> Canvas:
        """One random canvas (of a random ``kind`` unless given)."""
        kind = kind if kind is not None else str(rng.choice(KINDS, p=self._kind_p))
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        w, h = self._content_size(rng)
        content = self._background(rng, w, h)
        layout = {"scene": self._scene, "grid": self._grid, "closeup": self._closeup}.get(kind)
        faces = layout(rng, content) if layout is not None else []
        boxes, ignore = self._sort_faces(faces, w, h)
        return self._finish(rng, content, boxes, ignore)

    def _content_size(self, rng: np.random.Generator) -> tuple[int, int]:
        """The canvas, or (``p_letterbox``) a non-square picture that will be padded."""
        size = self.size
        if rng.random() >= self.config.p_letterbox:
            return size, size
        aspect = log_uniform(rng, 0.5, 2.0)  # width / height
        if aspect >= 1:
            return size, int(round(size / aspect))
        return int(round(size * aspect)), size

    def _finish(
        self, rng: np.random.Generator, content: np.ndarray, boxes: np.ndarray, ignore: np.ndarray
    ) -> Canvas:
        """Lay the content on the grey canvas, mirror it, apply the photometric augmentation."""
        cfg, size = self.config, self.size
        h, w = content.shape[:2]
        image = np.full((size, size, 3), GREY, dtype=np.uint8)
        ox = int(rng.integers(0, size - w + 1)) if rng.random() < 0.5 else 0
        oy = int(rng.integers(0, size - h + 1)) if rng.random() < 0.5 else 0
        image[oy : oy + h, ox : ox + w] = content
        shift = np.array([ox, oy, ox, oy], dtype=np.float32)
        boxes, ignore = boxes + shift, ignore + shift
        if rng.random() < cfg.p_flip:
            image = image[:, ::-1]
            boxes, ignore = flip_boxes(boxes, size), flip_boxes(ignore, size)
            ox = size - ox - w
        if cfg.photometric is not None:
            image = transforms.photometric(np.ascontiguousarray(image), cfg.photometric, rng)
            if (w, h) != (size, size):  # the padding stays exactly what inference pads with
                image = np.array(image, copy=True)
                image[:oy], image[oy + h :] = GREY, GREY
                image[:, :ox], image[:, ox + w :] = GREY, GREY
        return Canvas(
            np.ascontiguousarray(image), boxes.astype(np.float32), ignore.astype(np.float32)
        )

    # ----------------------------------------------------------------- layouts

    def _scene(self, rng: np.random.Generator, content: np.ndarray) -> list[np.ndarray]:
        """Several frames with context at similar scales, never covering an earlier face."""
        cfg = self.config
        h, w = content.shape[:2]
        n = int(rng.choice(np.arange(1, cfg.max_faces + 1), p=count_weights(cfg.max_faces)))
        base = log_uniform(
            rng, cfg.min_face * 0.8, cfg.max_scene_face * min(w, h) / max(1.0, np.sqrt(n) * 0.7)
        )
        placed: list[np.ndarray] = []
        for _ in range(n):
            index = int(rng.integers(len(self.faces)))
            face_w = float(
                np.clip(base * np.exp(rng.normal(0, 0.2)), cfg.min_face * 0.6, 0.9 * min(w, h))
            )
            angle = self._angle(rng)
            for _attempt in range(8):
                centre = rng.uniform([0, 0], [w, h])
                M = self._face_matrix(index, face_w, angle, centre)
                region = self._context_region(rng, index, M, w, h)
                if region is None:
                    continue
                if all(
                    intersection(np.array(region, float), b) <= cfg.max_cover * box_area(b)
                    for b in placed
                ):
                    feather = rng.uniform(0.1, 0.3) * min(
                        region[2] - region[0], region[3] - region[1]
                    )
                    soft = feather if rng.random() < cfg.p_feather else 0.0
                    placed.append(self._paste(content, index, M, region, soft, rng))
                    break
        return placed

    def _grid(self, rng: np.random.Generator, content: np.ndarray) -> list[np.ndarray]:
        """A collage: the canvas cut into cells, each holding one frame or a face-free patch."""
        h, w = content.shape[:2]
        rows, cols = int(rng.integers(1, 4)), int(rng.integers(1, 5))
        if rows == cols == 1:
            cols = 2
        xs = splits(rng, w, cols)
        ys = splits(rng, h, rows)
        placed: list[np.ndarray] = []
        for r in range(rows):
            for c in range(cols):
                cell = (xs[c], ys[r], xs[c + 1], ys[r + 1])
                cw, ch = cell[2] - cell[0], cell[3] - cell[1]
                if cw < 4 or ch < 4:
                    continue
                if rng.random() < 0.15:
                    content[cell[1] : cell[3], cell[0] : cell[2]] = self._negative_patch(
                        rng, cw, ch
                    )
                    continue
                index = int(rng.integers(len(self.faces)))
                bw, bh = self._box_size(index)
                face_w = rng.uniform(0.35, 0.85) * min(cw, ch * bw / bh)
                fw, fh = face_w, face_w * bh / bw
                centre = (
                    rng.uniform(cell[0] + fw / 2, cell[2] - fw / 2),
                    rng.uniform(cell[1] + fh / 2, cell[3] - fh / 2),
                )
                M = self._face_matrix(index, face_w, 0.0, centre)
                placed.append(self._paste(content, index, M, cell, 0.0, rng))
        return placed

    def _closeup(self, rng: np.random.Generator, content: np.ndarray) -> list[np.ndarray]:
        """One face from a quarter of the canvas to all of it (or smaller, with background)."""
        h, w = content.shape[:2]
        index = int(rng.integers(len(self.faces)))
        face_w = log_uniform(rng, 0.12, 1.0) * min(w, h)
        bw, bh = self._box_size(index)
        fw, fh = face_w, face_w * bh / bw
        # keep the face on the canvas: its centre moves at most a quarter face beyond the edge
        lo = np.array([min(fw / 2, w / 2) - 0.25 * fw, min(fh / 2, h / 2) - 0.25 * fh])
        hi = np.array([max(w - fw / 2, w / 2) + 0.25 * fw, max(h - fh / 2, h / 2) + 0.25 * fh])
        centre = rng.uniform(lo, hi)
        M = self._face_matrix(index, face_w, self._angle(rng), centre)
        return [self._paste(content, index, M, (0, 0, w, h), 0.0, rng)]

    # ----------------------------------------------------------------- pieces

    def _angle(self, rng: np.random.Generator) -> float:
        cfg = self.config
        return (
            float(rng.uniform(-cfg.rotation, cfg.rotation)) if rng.random() < cfg.p_rotate else 0.0
        )

    def _box_size(self, index: int) -> tuple[float, float]:
        x0, y0, x1, y1 = self.boxes[index]
        return max(float(x1 - x0), 1.0), max(float(y1 - y0), 1.0)

    def _face_matrix(self, index: int, face_w: float, angle: float, centre) -> np.ndarray:
        """Frame -> canvas: the face box centre goes to ``centre``, its width becomes ``face_w``."""
        x0, y0, x1, y1 = self.boxes[index]
        c = ((x0 + x1) / 2, (y0 + y1) / 2)
        shift = (centre[0] - c[0], centre[1] - c[1])
        return transforms.similarity(angle, face_w / self._box_size(index)[0], c, shift)

    def _context_region(
        self, rng: np.random.Generator, index: int, M: np.ndarray, w: int, h: int
    ) -> tuple[int, int, int, int] | None:
        """The canvas rectangle covered by a random context crop around the face."""
        fh, fw = self.faces.images[index].shape[:2]
        x0, y0, x1, y1 = self.boxes[index]
        bw, bh = x1 - x0, y1 - y0
        grow = rng.uniform(0.05, 1.0, size=4) * np.array([bw, bh, bw, bh])
        crop = np.array(
            [
                max(x0 - grow[0], 0),
                max(y0 - grow[1], 0),
                min(x1 + grow[2], fw - 1),
                min(y1 + grow[3], fh - 1),
            ]
        )
        corners = np.array(
            [[crop[0], crop[1]], [crop[2], crop[1]], [crop[0], crop[3]], [crop[2], crop[3]]]
        )
        q = transforms.apply_affine(corners, M)
        rx0, ry0 = max(int(np.floor(q[:, 0].min())), 0), max(int(np.floor(q[:, 1].min())), 0)
        rx1, ry1 = min(int(np.ceil(q[:, 0].max())) + 1, w), min(int(np.ceil(q[:, 1].max())) + 1, h)
        if rx1 - rx0 < 4 or ry1 - ry0 < 4:
            return None
        return rx0, ry0, rx1, ry1

    def _paste(
        self,
        content: np.ndarray,
        index: int,
        M: np.ndarray,
        region: tuple[int, int, int, int],
        feather: float,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Warp frame ``index`` through ``M`` into ``region`` of ``content`` (in place); its box."""
        frame = self.faces.images[index]
        x0, y0, x1, y1 = (int(v) for v in region)
        rw, rh = x1 - x0, y1 - y0
        local = transforms.compose(np.array([[1.0, 0, -x0], [0, 1.0, -y0]]), M)
        patch = transforms.warp_image(frame, local, max(rw, rh))[:rh, :rw].astype(np.float32)
        mask = inside_mask(frame.shape[0], frame.shape[1], transforms.invert_affine(local), rh, rw)
        if feather > 0:
            mask *= feather_mask(rh, rw, feather)
        # each pasted photo gets its own exposure, as frames from different cameras would
        e = self.config.paste_exposure
        if e > 0:
            patch = patch * rng.uniform(1 - e, 1 + e) + rng.uniform(-80, 80) * e
        if rng.random() < self.config.p_paste_gray:
            patch = np.repeat(patch @ _LUMA, 3).reshape(patch.shape)
        view = content[y0:y1, x0:x1].astype(np.float32)
        view += (patch - view) * mask[..., None]
        content[y0:y1, x0:x1] = np.clip(view + 0.5, 0, 255).astype(np.uint8)
        kps = transforms.apply_affine(self.faces.keypoints[index].astype(np.float64), M)
        return transforms.face_box_from_keypoints(kps)

    def _sort_faces(self, faces: list[np.ndarray], w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        """Split pasted faces into targets and ignored ones (too small, or mostly off-canvas)."""
        cfg = self.config
        keep, ignore = [], []
        frame = np.array([-0.5, -0.5, w - 0.5, h - 0.5])
        for box in faces:
            visible = intersection(box, frame) / max(float(box_area(box)), 1e-6)
            good = visible >= cfg.min_visible and (box[2] - box[0]) >= cfg.min_face
            (keep if good else ignore).append(box)
        as_array = lambda bs: np.array(bs, dtype=np.float32).reshape(-1, 4)  # noqa: E731
        return as_array(keep), as_array(ignore)

    # ----------------------------------------------------------------- backgrounds

    def _negative_patch(self, rng: np.random.Generator, w: int, h: int) -> np.ndarray:
        """A face-free piece of some frame, resized to ``w`` x ``h``."""
        if not self.negatives:
            return smooth_noise(rng, w, h)
        index, (x0, y0, x1, y1) = self.negatives[int(rng.integers(len(self.negatives)))]
        pw = int(rng.integers(min(12, x1 - x0), x1 - x0 + 1))
        ph = int(rng.integers(min(12, y1 - y0), y1 - y0 + 1))
        px, py = int(rng.integers(x0, x1 - pw + 1)), int(rng.integers(y0, y1 - ph + 1))
        piece = Image.fromarray(self.faces.images[index][py : py + ph, px : px + pw])
        return np.asarray(piece.resize((w, h), Image.Resampling.BILINEAR))

    def _background(self, rng: np.random.Generator, w: int, h: int) -> np.ndarray:
        """Face-free texture: photo strips, a mosaic of them, smooth noise or a gradient."""
        u = rng.random()
        if u < 0.3:
            bg = self._negative_patch(rng, w, h)
        elif u < 0.55:
            bg = np.empty((h, w, 3), dtype=np.uint8)
            xs, ys = (
                splits(rng, w, int(rng.integers(2, 5))),
                splits(rng, h, int(rng.integers(2, 5))),
            )
            for r in range(len(ys) - 1):
                for c in range(len(xs) - 1):
                    cw, ch = xs[c + 1] - xs[c], ys[r + 1] - ys[r]
                    if cw > 0 and ch > 0:
                        bg[ys[r] : ys[r + 1], xs[c] : xs[c + 1]] = self._negative_patch(rng, cw, ch)
        elif u < 0.85:
            bg = smooth_noise(rng, w, h)
        else:
            bg = gradient(rng, w, h)
        if rng.random() < self.config.p_clutter:
            bg = clutter(rng, bg)
        return np.array(bg, copy=True)  # writable: faces are pasted into it
