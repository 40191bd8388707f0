"""The face detector: network, training targets, decoding, NMS, inference and training task.

Design (docs/detector.md has the measurements):

* **Anchor-free, single level.**  A compact depthwise-separable backbone with BatchNorm and a
  small feature pyramid produces, at stride 8, a centre heatmap (how likely a face's box
  centre lies in this cell) and four distances from the cell centre to the box edges.  One
  level suffices because the face sizes we care about (about 10 px to the whole input) are
  all reachable from stride 8 with the stride-32 context merged in, and a single level keeps
  inference a few milliseconds on two CPU cores.
* **Boxes.**  The target box is exactly ``transforms.face_box_from_keypoints``, the box the
  landmark crop is made from, so a detected box leads to the same crop as a labelled one.
* **Training targets** (CenterNet-style): a Gaussian bump per face whose peak cell is exactly
  1, trained with the penalty-reduced focal loss; box distances are regressed (GIoU loss) in
  the central cells of each face, weighted by the bump.  Faces too small or cut off by the
  canvas edge are masked out instead of being called background.
* **Inference**: the image is letterboxed (longer side to the network size, grey padding),
  local maxima of the heatmap above the threshold become boxes, greedy NMS removes
  duplicates, boxes are mapped back to image pixels.  A box may reach slightly beyond the
  image when the face does; it is not clipped, because clipping would shift the landmark crop.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facemark import checkpoint as ckpt
from facemark import transforms
from facemark.detector_data import (
    GREY,
    CanvasSynthesizer,
    SynthConfig,
    letterbox,
    letterbox_shape,
    map_boxes,
    pad_multiple,
)
from facemark.errors import CheckpointError, UsageError
from facemark.models import Normalize, conv_bn

TASK = "detector"
STRIDE = 8
#: Input sizes must be multiples of the coarsest stride.
SIZE_MULTIPLE = 32
DEFAULT_ARCH = "facedet"
DEFAULT_INPUT_SIZE = 320

#: Gaussian sigma of a face's heatmap bump, as a fraction of its box width / height.
SIGMA = 0.1
#: Cells whose bump value is at least this regress the box.
REG_MIN = 0.3
#: The prior probability of a face in a cell, which sets the initial heatmap bias.
PRIOR = 0.01
NMS_IOU = 0.4
#: Weight of the GIoU box loss against the focal heatmap loss.
BOX_WEIGHT = 2.0
TOP_K = 200
#: The calibrated operating point (raw score) is kept inside this range; validation decodes
#: from its lower end.
CALIBRATION_RANGE = (0.05, 0.95)
#: Padding of box lists in dataset items (default_collate needs fixed shapes).
MAX_BOXES = 16


# --------------------------------------------------------------------------- network


def _channels(c: float) -> int:
    """Round to a multiple of 8, at least 8: friendly to vector units and tensor cores."""
    return max(8, int(round(c / 8)) * 8)


class DWBlock(nn.Module):
    """Depthwise kxk conv + pointwise 1x1 conv, with a shortcut when shapes allow.

    The separable form gives a large receptive field (5x5 at the coarse stages) for a fraction
    of a full convolution's cost, which is what keeps CPU inference fast.
    """

    def __init__(self, cin: int, cout: int, stride: int = 1, k: int = 3) -> None:
        super().__init__()
        self.dw = nn.Sequential(
            nn.Conv2d(cin, cin, k, stride, k // 2, groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.ReLU(inplace=True),
        )
        self.pw = conv_bn(cin, cout, 1, act=False)
        self.residual = stride == 1 and cin == cout
        if self.residual:  # start as identity: deep plain stacks train faster from scratch
            nn.init.zeros_(self.pw[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.dw(x))
        return F.relu(y + x if self.residual else y, inplace=True)


def _stage(cin: int, cout: int, depth: int, k: int) -> nn.Sequential:
    return nn.Sequential(
        DWBlock(cin, cout, 2, k), *(DWBlock(cout, cout, 1, k) for _ in range(depth - 1))
    )


class FaceDetectorNet(nn.Module):
    """Backbone to stride 32, top-down pyramid to stride 8, heatmap + box heads.

    ``forward(x float (B, 3, H, W) in [0, 1])`` -> ``(heat logits (B, 1, H/8, W/8),
    box raw (B, 4, H/8, W/8))``; see :func:`raw_to_ltrb` for what the box channels mean.
    """

    stride = STRIDE

    def __init__(self, width: float = 1.0, depths: Sequence[int] = (2, 3, 3, 3)) -> None:
        super().__init__()
        c = [_channels(v * width) for v in (24, 32, 64, 128, 192)]
        f = _channels(96 * width)
        self.norm = Normalize()
        self.stem = conv_bn(3, c[0], 3, 2)
        self.stages = nn.ModuleList(
            _stage(c[i], c[i + 1], depths[i], 3 if i < 2 else 5) for i in range(4)
        )
        # the pyramid merges strides 8, 16 and 32, plus a global context vector
        self.lateral = nn.ModuleList(conv_bn(ch, f, 1, act=False) for ch in c[2:])
        self.context = nn.Conv2d(c[4], f, 1)
        self.smooth = nn.Sequential(DWBlock(f, f), DWBlock(f, f))
        self.heat = nn.Sequential(DWBlock(f, f), nn.Conv2d(f, 1, 1))
        self.box = nn.Sequential(DWBlock(f, f), nn.Conv2d(f, 4, 1))
        nn.init.constant_(self.heat[-1].bias, -math.log((1 - PRIOR) / PRIOR))
        nn.init.normal_(self.box[-1].weight, std=0.01)
        nn.init.constant_(self.box[-1].bias, math.log(2.0))  # boxes start 4 cells wide

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.stem(self.norm(x))
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        s8, s16, s32 = feats[1:]
        p = self.lateral[2](s32) + self.context(s32.mean(dim=(2, 3), keepdim=True))
        p = self.lateral[1](s16) + F.interpolate(p, size=s16.shape[-2:], mode="nearest")
        p = self.lateral[0](s8) + F.interpolate(p, size=s8.shape[-2:], mode="nearest")
        p = self.smooth(F.relu(p))
        return self.heat(p), self.box(p)


#: arch name -> (constructor, one-line summary)
ARCHS: dict[str, tuple[type[nn.Module], str]] = {
    "facedet": (
        FaceDetectorNet,
        "depthwise backbone + pyramid, stride-8 centre heatmap and box distances",
    ),
}


def _check_arch(arch: str) -> None:
    if arch not in ARCHS:
        raise UsageError(f"unknown detector arch {arch!r}; choose one of: {', '.join(ARCHS)}")


def build_detector(arch: str = DEFAULT_ARCH, **arch_kwargs: Any) -> nn.Module:
    """A fresh detector network of ``arch``."""
    _check_arch(arch)
    try:
        return ARCHS[arch][0](**arch_kwargs)
    except TypeError as exc:
        raise UsageError(f"detector arch {arch!r} does not accept these arguments: {exc}") from None


def raw_to_ltrb(raw: torch.Tensor, stride: int = STRIDE) -> torch.Tensor:
    """Box channels -> distances (left, top, right, bottom) in pixels from the cell centre.

    The network predicts ``log(distance / stride)``: scale-free, so a 12 px face and a 300 px
    face are equally easy targets.  Computed in float32 (AMP-safe).
    """
    return torch.exp(raw.float().clamp(-6.0, 8.0)) * stride


def ltrb_to_raw(ltrb: np.ndarray | torch.Tensor, stride: int = STRIDE):
    """The inverse of :func:`raw_to_ltrb` (for tests and target inspection)."""
    if isinstance(ltrb, torch.Tensor):
        return torch.log(ltrb.clamp_min(1e-6) / stride)
    return np.log(np.maximum(ltrb, 1e-6) / stride)


def cell_centres(n: int, stride: int = STRIDE) -> np.ndarray:
    """Pixel-index coordinate of the centre of each of ``n`` cells."""
    return np.arange(n, dtype=np.float32) * stride + (stride - 1) / 2


# --------------------------------------------------------------------------- targets and loss


def encode_targets(
    boxes: np.ndarray, ignore: np.ndarray, height: int, width: int, stride: int = STRIDE
) -> dict[str, np.ndarray]:
    """Training targets for one image of ``height`` x ``width`` pixels.

    Returns ``heatmap (1, h, w)`` (exactly 1 at each face's peak cell, < 1 elsewhere),
    ``box_target (4, h, w)`` (pixel distances to the edges of the face owning the cell),
    ``box_weight (1, h, w)`` (0 where no box is regressed) and ``heat_mask (1, h, w)``
    (0 inside ignored faces).  Where faces overlap, a cell belongs to the face whose bump is
    highest there.
    """
    gh, gw = height // stride, width // stride
    xs, ys = cell_centres(gw, stride), cell_centres(gh, stride)
    heat = np.zeros((gh, gw), np.float32)
    ltrb = np.zeros((4, gh, gw), np.float32)
    weight = np.zeros((gh, gw), np.float32)
    peaks = np.zeros((gh, gw), bool)
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        sx, sy = max(SIGMA * w, 0.35 * stride), max(SIGMA * h, 0.35 * stride)
        g = np.exp(
            -((xs[None, :] - cx) ** 2) / (2 * sx**2) - ((ys[:, None] - cy) ** 2) / (2 * sy**2)
        )
        g = np.minimum(g, 0.999).astype(np.float32)
        pi = int(np.clip(np.floor((cy + 0.5) / stride), 0, gh - 1))
        pj = int(np.clip(np.floor((cx + 0.5) / stride), 0, gw - 1))
        g[pi, pj] = 1.0
        d = np.stack(
            np.broadcast_arrays(
                xs[None, :] - x0, ys[:, None] - y0, x1 - xs[None, :], y1 - ys[:, None]
            )
        )
        region = (g >= REG_MIN) & (d.min(axis=0) > 0) & (g > weight)
        region[pi, pj] = region[pi, pj] or not peaks[pi, pj]
        ltrb[:, region] = np.maximum(d[:, region], 0.5)
        weight[region] = g[region]
        peaks[pi, pj] = True
        heat = np.maximum(heat, g)
    mask = np.ones((gh, gw), np.float32)
    for x0, y0, x1, y1 in np.asarray(ignore, dtype=np.float64).reshape(-1, 4):
        inside = (
            (xs[None, :] >= x0) & (xs[None, :] <= x1) & (ys[:, None] >= y0) & (ys[:, None] <= y1)
        )
        mask[inside & (weight == 0)] = 0.0
    return {
        "heatmap": heat[None],
        "box_target": ltrb,
        "box_weight": weight[None],
        "heat_mask": mask[None],
    }


def _giou_ltrb(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Generalised IoU of boxes given as distances from the same point, ``(..., 4)``."""
    pl, pt, pr, pb = pred.unbind(-1)
    tl, tt, tr, tb = target.unbind(-1)
    area_p = (pl + pr) * (pt + pb)
    area_t = (tl + tr) * (tt + tb)
    inter = (torch.min(pl, tl) + torch.min(pr, tr)) * (torch.min(pt, tt) + torch.min(pb, tb))
    union = area_p + area_t - inter
    hull = (torch.max(pl, tl) + torch.max(pr, tr)) * (torch.max(pt, tt) + torch.max(pb, tb))
    iou = inter / union.clamp_min(1e-6)
    return iou - (hull - union) / hull.clamp_min(1e-6)


def detection_loss(
    heat_logits: torch.Tensor,
    box_raw: torch.Tensor,
    targets: dict[str, torch.Tensor],
    stride: int = STRIDE,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Focal loss on the heatmap + GIoU loss on the boxes; returns ``(total, parts)``.

    Both are computed in float32 even under autocast: the focal terms take logs of
    probabilities that fp16 cannot resolve.  No step reads a value back to the host (no
    boolean indexing, no ``.item()``), so a CUDA step never waits for the GPU.
    """
    logits = heat_logits.float()
    target = targets["heatmap"].float()
    mask = targets["heat_mask"].float()
    pos = (target >= 1.0).float()
    p = torch.sigmoid(logits)
    log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)
    pos_term = (1 - p) ** 2 * log_p * pos
    neg_term = (1 - target) ** 4 * p**2 * log_not_p * (1 - pos) * mask
    focal = -(pos_term + neg_term).sum() / pos.sum().clamp_min(1.0)

    # GIoU over every cell, weighted: cells without a face have weight 0 and count for nothing
    weight = targets["box_weight"].float()[:, 0]
    pred = raw_to_ltrb(box_raw, stride).permute(0, 2, 3, 1)
    tgt = targets["box_target"].float().permute(0, 2, 3, 1)
    box = ((1 - _giou_ltrb(pred, tgt)) * weight).sum() / weight.sum().clamp_min(1e-6)
    total = focal + BOX_WEIGHT * box
    return total, {"focal": focal.detach(), "giou": box.detach()}


# --------------------------------------------------------------------------- decoding and NMS


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` boxes -> ``(N, M)``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=-1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=-1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = NMS_IOU) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes, best score first."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[box_iou(boxes[i : i + 1], boxes[rest])[0] <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def decode(
    heat_logits: torch.Tensor,
    box_raw: torch.Tensor,
    threshold: float,
    stride: int = STRIDE,
    top_k: int = TOP_K,
    score_offset: float = 0.0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Network outputs -> per image ``(boxes (K, 4), scores (K,))`` in input pixels, before NMS.

    A detection is a cell whose score is a local maximum (3x3) and at least ``threshold``;
    ``score_offset`` (a logit) is subtracted first, see :meth:`DetectorTask.validate`.
    """
    scores = torch.sigmoid(heat_logits.float() - score_offset)
    peaks = scores == F.max_pool2d(scores, 3, stride=1, padding=1)
    scores = (scores * peaks)[:, 0]
    b, gh, gw = scores.shape
    top, idx = scores.reshape(b, -1).topk(min(top_k, gh * gw), dim=1)
    ltrb = raw_to_ltrb(box_raw, stride).reshape(b, 4, -1)
    ltrb = torch.gather(ltrb, 2, idx[:, None, :].expand(b, 4, idx.shape[1]))
    cx = (idx % gw).float() * stride + (stride - 1) / 2
    cy = (idx // gw).float() * stride + (stride - 1) / 2
    boxes = torch.stack(
        [cx - ltrb[:, 0], cy - ltrb[:, 1], cx + ltrb[:, 2], cy + ltrb[:, 3]], dim=-1
    )
    boxes, top = boxes.cpu().numpy(), top.cpu().numpy()
    out = []
    for i in range(b):
        keep = top[i] >= threshold
        out.append((boxes[i][keep].astype(np.float32), top[i][keep].astype(np.float32)))
    return out


# --------------------------------------------------------------------------- inference


def _as_rgb(image: Any) -> np.ndarray:
    """Accept RGB, grayscale and RGBA uint8 arrays (or PIL images); return (H, W, 3) uint8."""
    arr = np.asarray(image.convert("RGB")) if hasattr(image, "convert") else np.asarray(image)
    if arr.dtype != np.uint8:
        raise UsageError(f"expected a uint8 image, got {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise UsageError(f"expected an (H, W, 3) image, got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise UsageError(f"empty image of shape {arr.shape}")
    return arr


def _checkpoint_data(path_or_dict: Any) -> dict[str, Any]:
    """A validated detector checkpoint dict from a path or an already loaded dict."""
    if isinstance(path_or_dict, dict):
        data = path_or_dict
        missing = [k for k in ckpt.REQUIRED_KEYS if k not in data]
        if data.get("format") != ckpt.FORMAT or missing:
            raise CheckpointError(
                "not a facemark checkpoint"
                + (f" (missing {', '.join(missing)})" if missing else "")
            )
        if data["task"] != TASK:
            raise CheckpointError(
                f"the checkpoint holds a {data['task']} model, not a face detector"
            )
        return data
    if not isinstance(path_or_dict, (str, os.PathLike)):
        raise UsageError(f"expected a checkpoint path or dict, got {type(path_or_dict).__name__}")
    return ckpt.load_checkpoint(path_or_dict, task=TASK)


class FaceDetector:
    """A loaded face detector.  ``detect(image)`` -> ``(boxes (F, 4), scores (F,))``.

    Boxes are ``x0, y0, x1, y1`` in pixels of the image passed in (pixel-index convention),
    ordered by descending score; no face gives empty arrays, never None.
    """

    def __init__(
        self,
        model: nn.Module,
        input_size: int = DEFAULT_INPUT_SIZE,
        device: str | torch.device = "cpu",
        info: dict[str, Any] | None = None,
        score_offset: float = 0.0,
    ) -> None:
        if input_size % SIZE_MULTIPLE:
            raise UsageError(
                f"detector input size must be a multiple of {SIZE_MULTIPLE}, got {input_size}"
            )
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.input_size = int(input_size)
        self.stride = int(getattr(model, "stride", STRIDE))
        self.info = dict(info or {})
        self.score_offset = float(score_offset)

    @classmethod
    def from_checkpoint(cls, path_or_dict: Any, device: str | torch.device = "cpu") -> FaceDetector:
        """Rebuild the network a checkpoint describes; a landmark checkpoint is refused clearly."""
        data = _checkpoint_data(path_or_dict)
        model = build_detector(data["arch"], **dict(data["arch_kwargs"]))
        try:
            model.load_state_dict(data["state_dict"])
        except RuntimeError as exc:
            raise CheckpointError(
                f"detector weights do not fit arch {data['arch']!r}: {str(exc).splitlines()[0]}"
            ) from None
        info = {
            k: data.get(k)
            for k in ("arch", "arch_kwargs", "img_size", "epoch", "metrics", "facemark_version")
        }
        metrics = data.get("metrics") or {}
        offset = float(metrics.get("score_offset", 0.0)) if isinstance(metrics, dict) else 0.0
        size = int(data.get("img_size") or DEFAULT_INPUT_SIZE)
        return cls(model, size, device, info, offset if math.isfinite(offset) else 0.0)

    def detect(
        self,
        image: Any,
        threshold: float = 0.5,
        min_face: float = 24,
        max_faces: int | None = None,
        input_size: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Faces in one image: ``(boxes (F, 4) float32, scores (F,) float32)``.

        ``min_face`` is the smallest box width kept, in image pixels; ``input_size`` overrides
        the network's input size (larger finds smaller faces in big photos, at a quadratic cost).
        """
        return self.detect_batch([image], threshold, min_face, max_faces, input_size)[0]

    @torch.inference_mode()
    def detect_batch(
        self,
        images: Sequence[Any],
        threshold: float = 0.5,
        min_face: float = 24,
        max_faces: int | None = None,
        input_size: int | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`detect` for several images in one forward pass (they may differ in size)."""
        if not 0.0 <= threshold <= 1.0:
            raise UsageError(f"threshold must be in [0, 1], got {threshold}")
        if max_faces is not None and max_faces < 0:
            raise UsageError(f"max_faces must be >= 0, got {max_faces}")
        size = int(input_size or self.input_size)
        if size % SIZE_MULTIPLE or size < SIZE_MULTIPLE:
            raise UsageError(
                f"detector input size must be a multiple of {SIZE_MULTIPLE}, got {size}"
            )
        if not len(images):
            return []
        rgb = [_as_rgb(im) for im in images]
        shapes = [letterbox_shape(im.shape[0], im.shape[1], size) for im in rgb]
        # one canvas for the whole batch: the largest letterbox, padded to the stride
        ph = pad_multiple(max(h for h, _ in shapes), SIZE_MULTIPLE)
        pw = pad_multiple(max(w for _, w in shapes), SIZE_MULTIPLE)
        boxed = [letterbox(im, size, pad_to=(ph, pw)) for im in rgb]
        batch = torch.from_numpy(np.stack([c for c, _ in boxed])).to(self.device)
        x = batch.permute(0, 3, 1, 2).float().div_(255.0)
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        heat, box = self.model(x)
        results = []
        for (boxes, scores), (_, M) in zip(
            decode(heat, box, threshold, self.stride, score_offset=self.score_offset),
            boxed,
            strict=True,
        ):
            results.append(self._finish(boxes, scores, M, min_face, max_faces))
        return results

    @staticmethod
    def _finish(
        boxes: np.ndarray, scores: np.ndarray, M: np.ndarray, min_face: float, max_faces: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """NMS, back to image pixels, size filter, best ``max_faces``."""
        keep = nms(boxes, scores)
        boxes, scores = boxes[keep], scores[keep]
        boxes = map_boxes(boxes, transforms.invert_affine(M))
        big = (boxes[:, 2] - boxes[:, 0]) >= min_face
        boxes, scores = boxes[big], scores[big]
        if max_faces is not None:
            boxes, scores = boxes[:max_faces], scores[:max_faces]
        return boxes.reshape(-1, 4).astype(np.float32), scores.reshape(-1).astype(np.float32)


# --------------------------------------------------------------------------- evaluation


def match_detections(
    boxes: np.ndarray,
    scores: np.ndarray,
    gt: np.ndarray,
    ignore: np.ndarray | None = None,
    iou: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching, best score first: ``(true_positive (K,), counted (K,))`` per detection.

    Each true face matches at most one detection with IoU >= ``iou``; an unmatched detection
    lying mostly (>= 50% of its area) inside an ignored face is not counted at all.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    tp = np.zeros(len(boxes), bool)
    counted = np.ones(len(boxes), bool)
    ious = box_iou(boxes, gt)
    taken = np.zeros(ious.shape[1], bool)
    for i in order:
        if ious.shape[1]:
            cand = np.where(taken, -1.0, ious[i])
            j = int(np.argmax(cand))
            if cand[j] >= iou:
                tp[i], taken[j] = True, True
                continue
        if ignore is not None and len(ignore):
            ign = np.asarray(ignore, dtype=np.float64).reshape(-1, 4)
            lt = np.maximum(boxes[i, :2], ign[:, :2])
            rb = np.minimum(boxes[i, 2:], ign[:, 2:])
            inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
            area = max(float(np.prod(np.clip(boxes[i, 2:] - boxes[i, :2], 0, None))), 1e-9)
            counted[i] = not (inter / area >= 0.5).any()
    return tp, counted


def detection_metrics(
    results: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    threshold: float = 0.5,
    fp_budget: float = 0.1,
    iou: float = 0.5,
) -> dict[str, float]:
    """Metrics over images given as ``(boxes, scores, gt_boxes, ignore_boxes)``.

    * ``miss_rate``: 1 - recall at the score where false positives reach ``fp_budget`` per
      image: a threshold-free view of "finds faces without hallucinating them" (lower is
      better, the model-selection metric);
    * ``ap50``: average precision at IoU 0.5;
    * ``recall`` and ``fp_per_image`` at ``threshold``;
    * ``f1`` and ``f1_threshold``: the best F1 over all thresholds and the score giving it.
    """
    all_scores, all_tp = [], []
    n_gt = 0
    for boxes, scores, gt, ign in results:
        tp, counted = match_detections(boxes, scores, gt, ign, iou)
        all_scores.append(np.asarray(scores, dtype=np.float64)[counted])
        all_tp.append(tp[counted])
        n_gt += len(np.asarray(gt).reshape(-1, 4))
    n_img = max(len(results), 1)
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    tp = np.concatenate(all_tp) if all_tp else np.zeros(0, bool)
    order = np.argsort(-scores, kind="stable")
    scores, tp = scores[order], tp[order]
    ctp, cfp = np.cumsum(tp), np.cumsum(~tp)
    recall = ctp / max(n_gt, 1)
    precision = ctp / np.maximum(ctp + cfp, 1)
    within = cfp / n_img <= fp_budget
    best_recall = float(recall[within].max()) if within.any() else 0.0
    ap, f1, f1_threshold = 0.0, 0.0, 1.0
    if len(scores) and n_gt:
        # AP: area under the monotone precision envelope
        env = np.maximum.accumulate(precision[::-1])[::-1]
        steps = np.diff(np.concatenate([[0.0], recall]))
        ap = float((steps * env).sum())
        f1s = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        best = int(np.argmax(f1s))
        f1, f1_threshold = float(f1s[best]), float(scores[best])
    at = scores >= threshold
    return {
        "miss_rate": 1.0 - best_recall,
        "ap50": ap,
        "recall": float(tp[at].sum() / max(n_gt, 1)),
        "fp_per_image": float((~tp[at]).sum() / n_img),
        "f1": f1,
        "f1_threshold": f1_threshold,
    }


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


# --------------------------------------------------------------------------- training data


class DetectorDataset(torch.utils.data.Dataset):
    """Detector training / validation items as fixed-shape dicts (default_collate works).

    Training (``train=True``): one synthetic canvas per face frame and epoch, random as a
    function of ``(seed, epoch, index)`` only.  Validation: one fixed synthetic canvas per
    frame, followed by every frame itself letterboxed as at inference (``kind`` 1), so the
    metrics cover both crowded scenes and the dataset's own framing.
    """

    def __init__(
        self,
        faces,
        img_size: int,
        train: bool,
        seed: int = 0,
        config: SynthConfig | None = None,
        stride: int = STRIDE,
    ) -> None:
        if img_size % SIZE_MULTIPLE or img_size < SIZE_MULTIPLE * 2:
            raise UsageError(
                f"detector --img-size must be a multiple of {SIZE_MULTIPLE} (>= 64), got {img_size}"
            )
        self.faces = faces
        self.img_size = int(img_size)
        self.train = bool(train)
        self.seed = int(seed)
        self.stride = stride
        self.synth = CanvasSynthesizer(faces, img_size, config) if len(faces) else None
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def __len__(self) -> int:
        return 0 if self.synth is None else len(self.faces) * (1 if self.train else 2)

    def set_epoch(self, epoch: int) -> None:
        """Shared memory, so persistent DataLoader workers see the new epoch too."""
        self._epoch.fill_(int(epoch))

    def sample(self, index: int):
        """The :class:`~facemark.detector_data.Canvas` of item ``index``."""
        from facemark.detector_data import Canvas

        n = len(self.faces)
        if not self.train and index >= n:  # the real frame, letterboxed
            frame = self.faces.images[index - n]
            image, M = letterbox(frame, self.img_size, pad_to=(self.img_size, self.img_size))
            box = map_boxes(self.synth.boxes[index - n], M)
            return Canvas(image, box, np.zeros((0, 4), np.float32))
        epoch = int(self._epoch.item()) if self.train else 0
        rng = np.random.default_rng([self.seed, epoch, index, 0xDE7])
        return self.synth.canvas(rng)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        index = int(index)
        canvas = self.sample(index)
        item = {
            k: torch.from_numpy(v)
            for k, v in encode_targets(
                canvas.boxes, canvas.ignore, self.img_size, self.img_size, self.stride
            ).items()
        }
        item["image"] = torch.from_numpy(np.ascontiguousarray(canvas.image.transpose(2, 0, 1)))
        for key, arr in (("boxes", canvas.boxes), ("ignore", canvas.ignore)):
            padded = np.zeros((MAX_BOXES, 4), np.float32)
            k = min(len(arr), MAX_BOXES)
            padded[:k] = arr[:k]
            item[key], item[f"num_{key}"] = torch.from_numpy(padded), torch.tensor(k)
        item["kind"] = torch.tensor(int(not self.train and index >= len(self.faces)))
        return item


# --------------------------------------------------------------------------- training task


def _to_device(
    batch: dict[str, torch.Tensor], device: torch.device
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """uint8 images travel to the device as bytes (4x less transfer) and become floats there."""
    from facemark.train import move

    device = torch.device(device)
    x = move(batch["image"], device).float().div_(255.0)  # .float() keeps channels-last
    targets = {
        k: move(batch[k], device) for k in ("heatmap", "box_target", "box_weight", "heat_mask")
    }
    return x, targets


def _stride_of(model: nn.Module) -> int:
    from facemark.train import unwrap

    return int(getattr(unwrap(model), "stride", STRIDE))


class DetectorTask:
    """``facemark train --task detector``: the :class:`train.Task` protocol for the detector."""

    name = TASK
    metric_name = "miss_rate"

    def defaults(self) -> dict[str, Any]:
        return {
            "arch": DEFAULT_ARCH,
            "img_size": DEFAULT_INPUT_SIZE,
            "epochs": 120,
            "lr": 2e-3,
            "batch_size": 64,
            "weight_decay": 1e-4,
        }

    def arch_kwargs(self, cfg) -> dict[str, Any]:
        _check_arch(cfg.arch)  # before any data is read
        return {}

    def build_model(self, cfg) -> nn.Module:
        return build_detector(cfg.arch, **self.arch_kwargs(cfg))

    def datasets(self, cfg) -> tuple[DetectorDataset, DetectorDataset]:
        from facemark.dataset import load_split

        common = {
            "root": cfg.data_root,
            "val_fraction": cfg.val_fraction,
            "seed": cfg.seed,
            "val_by": cfg.val_by,
        }
        train = load_split("train", progress=True, **common)
        val = load_split("val", progress=True, **common)
        return (
            DetectorDataset(train, cfg.img_size, train=True, seed=cfg.seed),
            DetectorDataset(val, cfg.img_size, train=False, seed=cfg.seed),
        )

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor], device) -> torch.Tensor:
        x, targets = _to_device(batch, device)
        heat, box = model(x)
        total, _ = detection_loss(heat, box, targets, _stride_of(model))
        return total

    @torch.no_grad()
    def validate(self, model: nn.Module, loader, device) -> dict[str, float]:
        """Detection metrics on the validation canvases, plus recall on the real frames.

        Detections are decoded at a low threshold so ``miss_rate`` and ``ap50`` see the whole
        score range.  ``score_offset`` is the logit of the raw score with the best F1 on these
        images; :class:`FaceDetector` subtracts it from the heatmap logits, so that score
        reads 0.5 and ``detect()``'s default threshold is a sensible operating point for any
        trained model.  ``recall``, ``fp_per_image`` and ``frame_recall`` are at that point.
        """
        stride = _stride_of(model)
        results, frame_results = [], []
        losses = []
        for batch in loader:
            x, targets = _to_device(batch, device)
            heat, box = model(x)
            losses.append(detection_loss(heat, box, targets, stride)[0].item())
            decoded = decode(heat, box, CALIBRATION_RANGE[0], stride)
            for i, (boxes, scores) in enumerate(decoded):
                keep = nms(boxes, scores)
                gt = batch["boxes"][i, : int(batch["num_boxes"][i])].numpy()
                ign = batch["ignore"][i, : int(batch["num_ignore"][i])].numpy()
                entry = (boxes[keep], scores[keep], gt, ign)
                (frame_results if int(batch["kind"][i]) else results).append(entry)
        # Calibrate: the F1-best raw score becomes 0.5, the default threshold of detect().
        raw = detection_metrics(results + frame_results)
        t = min(max(raw["f1_threshold"], CALIBRATION_RANGE[0]), CALIBRATION_RANGE[1])
        out = detection_metrics(results + frame_results, threshold=t)
        out["frame_recall"] = (
            detection_metrics(frame_results, threshold=t)["recall"] if frame_results else math.nan
        )
        out["score_offset"] = _logit(t)
        out["loss"] = float(np.mean(losses)) if losses else math.nan
        del out["f1_threshold"]
        return out

    def checkpoint_extras(self, cfg) -> dict[str, Any]:
        return {"img_size": int(cfg.img_size), "stride": STRIDE, "pad_value": GREY}
