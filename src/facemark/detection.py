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
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facemark.boxes import (
    box_iou,
)
from facemark.config import DEFAULTS
from facemark.errors import UsageError
from facemark.models import Normalize, conv_bn

TASK = "detector"
STRIDE = 8
#: Input sizes must be multiples of the coarsest stride.
SIZE_MULTIPLE = 32
DEFAULT_ARCH = DEFAULTS["detector"].arch
DEFAULT_INPUT_SIZE = DEFAULTS["detector"].img_size

#: Gaussian sigma of a face's heatmap bump, as a fraction of its box width / height.
SIGMA = 0.1
#: Cells whose bump value is at least this regress the box.
REG_MIN = 0.3
#: The prior probability of a face in a cell, which sets the initial heatmap bias.
PRIOR = 0.01
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


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))
