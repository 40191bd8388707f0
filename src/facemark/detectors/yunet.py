"""YuNet (Wu, Peng & Yu 2023), a tiny anchor-free face detector, as facemark's own module.

The network is the one of ShiqiYu/libfacedetection.train (Apache-2.0): a depthwise-separable
backbone, a three-level top-down pyramid (strides 8, 16, 32) and, at each level, four small
heads predicting a face class score, an objectness score, a box and five points.  The weights
are the authors' WIDER FACE models ``yunet_n`` (75,856 parameters) and ``yunet_s`` (54,608),
converted by ``tools/convert_yunet.py`` (parameter names changed, stored as float16).

What YuNet expects and predicts (checked against the authors' ONNX export):

* **Input**: BGR, 0-255, no mean or scale (mmdet ``Normalize`` with mean 0, std 1,
  ``to_rgb=False`` on OpenCV-decoded images), height and width multiples of 32, padding with 0.
  :meth:`YuNetNet.forward` takes facemark's RGB in [0, 1] and converts.
* **Outputs**, per stride 8, 16, 32, flattened row-major over the feature map: ``cls`` and
  ``obj`` (sigmoid probabilities, ``(B, N, 1)``), ``bbox`` (``(B, N, 4)``: centre offset and
  log size in units of the stride) and ``kps`` (``(B, N, 10)``: five ``x, y`` offsets).
* **Decode**: the priors are the cell corners ``(col * stride, row * stride)`` (mmdet
  ``MlvlPointGenerator`` with offset 0); centre ``= prior + offset * stride``, size
  ``= exp(log size) * stride``, points ``= prior + offset * stride``.
* **Score**: ``sqrt(cls * obj)``, both clipped to [0, 1] -- OpenCV's ``FaceDetectorYN`` rule
  for these models; the mmdet test code ranks by ``cls * obj``, which orders faces the same
  (its ``score_thr`` 0.02 is 0.14 here).  facemark then calibrates it (see
  :func:`calibrate_scores`) so that ``threshold=0.5`` reads as the raw operating score stored
  in the checkpoint.
* **Points**: the WIDER FACE (RetinaFace / SCRFD) order -- the eye on the image's left
  first, then the other eye, the nose tip, the mouth corner on the image's left, the other
  mouth corner.  For an upright face seen from the front that is the subject's right eye,
  left eye, nose, right and left mouth corner: exactly the order :class:`Detections` wants.
* **Boxes**: WIDER FACE's box convention, not facemark's face box: :meth:`YuNetDetector.
  face_boxes` is the one place that maps one to the other.  Decoded coordinates are taken as
  pixel indices of the network input and mapped back through the letterbox's pixel-index
  matrix (mmdet rescales by plain multiplication, so a sub-pixel offset at other scales is
  possible; ``face_boxes`` can absorb it).

**Operating score.**  On 65 real photos (portraits, couples, group shots, a selfie), every
main face scores at least 0.89 raw (``sqrt(cls * obj)``) with both variants; blurred, tiny or
cut-off background faces score 0.3-0.85; the highest non-face (blurred bokeh, a logo, skin
and clothing when a large face is run at 960-1280) scores 0.44 with the resolution policy
and 0.53 at any single size tried.  The stored operating score is 0.6: no false positive at
``threshold=0.5``, and lower thresholds (down to the decode floor) reach the background faces.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facemark import checkpoint as ckpt
from facemark.boxes import letterbox, nms
from facemark.detectors.base import Detections, Detector, DetectorConfig, input_tensor
from facemark.errors import CheckpointError, UsageError, first_line
from facemark.images import as_rgb_array

TASK = "detector"
ARCH = "yunet"
VARIANTS = ("n", "s")
STRIDES = (8, 16, 32)
#: Input sides must be multiples of this (three 2x poolings after the stride-4 stem).
SIZE_MULTIPLE = 32
#: The ONNX export's output names, in the order :meth:`YuNetNet.forward` returns them.
OUTPUT_NAMES = tuple(f"{kind}_{s}" for kind in ("cls", "obj", "bbox", "kps") for s in STRIDES)
NUM_POINTS = 5
#: Padding of the network canvas, as in the authors' test pipeline (mmdet ``Pad``, value 0).
PAD_VALUE = 0

#: Raw ``sqrt(cls * obj)`` that ``threshold=0.5`` stands for when a checkpoint does not say.
DEFAULT_SCORE_THRESHOLD = 0.6
#: Raw scores below this are never decoded, whatever the threshold (bounds the NMS work; the
#: authors' WIDER FACE evaluation keeps ``cls * obj >= 0.02``, i.e. 0.14 here).
DECODE_FLOOR = 0.1
#: At most this many candidates (best first) go into NMS per image.
PRE_NMS_TOP_K = 20000
#: NMS overlap (the authors' test config uses 0.45; facemark's shared 0.4 is close).
NMS_IOU = 0.45

#: ``(in, mid, out)`` of the stem and ``(in, out)`` of the five stages; shared head convs.
_SPECS: dict[str, dict[str, Any]] = {
    "n": {"stem": (3, 16, 16), "stages": ((16, 64), (64, 64), (64, 64), (64, 64), (64, 64))},
    "s": {"stem": (3, 16, 16), "stages": ((16, 32), (32, 64), (64, 64), (64, 64), (64, 64))},
}
_SHARED_HEAD_CONVS = {"n": 1, "s": 0}


# --------------------------------------------------------------------------- network


class PointDepthConv(nn.Module):
    """1x1 conv, 3x3 depthwise conv, then (optionally) BatchNorm and ReLU.

    YuNet's one building block; every conv has a bias.  ``fuse_bn`` folds the BatchNorm into
    the depthwise conv for inference.
    """

    def __init__(self, cin: int, cout: int, act: bool = True) -> None:
        super().__init__()
        self.pw = nn.Conv2d(cin, cout, 1, bias=True)
        self.dw = nn.Conv2d(cout, cout, 3, padding=1, groups=cout, bias=True)
        self.bn: nn.Module = nn.BatchNorm2d(cout) if act else nn.Identity()
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.dw(self.pw(x)))
        return F.relu(x) if self.act else x

    def fuse_bn(self) -> None:
        if isinstance(self.bn, nn.BatchNorm2d):
            _fold_bn(self.dw, self.bn)
            self.bn = nn.Identity()


def _fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold an eval-mode BatchNorm that follows ``conv`` into its weight and bias."""
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)


class Stem(nn.Module):
    """3x3 stride-2 conv + BatchNorm + ReLU, then a :class:`PointDepthConv`."""

    def __init__(self, cin: int, mid: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, mid, 3, stride=2, padding=1, bias=True)
        self.bn: nn.Module = nn.BatchNorm2d(mid)
        self.dp = PointDepthConv(mid, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dp(F.relu(self.bn(self.conv(x))))

    def fuse_bn(self) -> None:
        if isinstance(self.bn, nn.BatchNorm2d):
            _fold_bn(self.conv, self.bn)
            self.bn = nn.Identity()
        self.dp.fuse_bn()


class LevelHead(nn.Module):
    """One pyramid level's heads: optional shared conv, then class, objectness, box, points."""

    def __init__(self, channels: int, shared_convs: int) -> None:
        super().__init__()
        self.shared = nn.Sequential(
            *[PointDepthConv(channels, channels) for _ in range(shared_convs)]
        )
        self.cls = PointDepthConv(channels, 1, act=False)
        self.obj = PointDepthConv(channels, 1, act=False)
        self.box = PointDepthConv(channels, 4, act=False)
        self.kps = PointDepthConv(channels, 2 * NUM_POINTS, act=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.shared(x)
        return self.cls(x), self.obj(x), self.box(x), self.kps(x)


class YuNetNet(nn.Module):
    """The YuNet network, variant ``"n"`` (the published default) or ``"s"`` (smaller).

    ``forward(x)``: ``x`` float ``(B, 3, H, W)`` RGB in [0, 1], ``H`` and ``W`` multiples of
    32.  Returns the 12 tensors of the authors' ONNX export, in :data:`OUTPUT_NAMES` order:
    ``cls_8, cls_16, cls_32, obj_8, ..., bbox_8, ..., kps_8, ...``, each ``(B, N_s, C)`` with
    ``N_s = (H / s) * (W / s)`` cells in row-major order; ``cls`` and ``obj`` are sigmoids.
    """

    strides = STRIDES

    def __init__(self, variant: str = "n") -> None:
        super().__init__()
        if variant not in _SPECS:
            raise UsageError(f"unknown YuNet variant {variant!r}; choose one of {VARIANTS}")
        self.variant = variant
        spec = _SPECS[variant]
        self.stem = Stem(*spec["stem"])
        self.stages = nn.ModuleList(
            nn.Sequential(PointDepthConv(cin, cin), PointDepthConv(cin, cout))
            for cin, cout in spec["stages"]
        )
        channels = spec["stages"][-1][1]
        #: Top-down pyramid, one conv per level, index 0 = stride 8.
        self.fpn = nn.ModuleList(PointDepthConv(channels, channels) for _ in STRIDES)
        self.heads = nn.ModuleList(
            LevelHead(channels, _SHARED_HEAD_CONVS[variant]) for _ in STRIDES
        )

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Backbone features at strides 8, 16 and 32 (input already BGR 0-255)."""
        x = F.max_pool2d(self.stem(x), 2)  # stride 4
        x = self.stages[0](x)
        x = F.max_pool2d(self.stages[1](x), 2)  # stride 8
        feats = []
        for i, stage in enumerate(self.stages[2:]):
            if i:
                x = F.max_pool2d(x, 2)
            x = stage(x)
            feats.append(x)
        return feats

    def pyramid(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """Top-down: each level adds the nearest-upsampled coarser output, then its conv."""
        outs: list[torch.Tensor] = [self.fpn[-1](feats[-1])]
        for level in range(len(feats) - 2, -1, -1):
            up = F.interpolate(outs[0], size=feats[level].shape[-2:], mode="nearest")
            outs.insert(0, self.fpn[level](feats[level] + up))
        return outs

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h, w = x.shape[-2:]
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
            raise UsageError(f"YuNet input sides must be multiples of 32, got {h}x{w}")
        x = x.flip(1) * 255.0  # YuNet was trained on BGR 0-255
        levels = [
            head(f) for head, f in zip(self.heads, self.pyramid(self.features(x)), strict=True)
        ]

        def flat(t: torch.Tensor) -> torch.Tensor:
            return t.permute(0, 2, 3, 1).reshape(t.shape[0], -1, t.shape[1])

        cls = [flat(lv[0]).sigmoid() for lv in levels]
        obj = [flat(lv[1]).sigmoid() for lv in levels]
        box = [flat(lv[2]) for lv in levels]
        kps = [flat(lv[3]) for lv in levels]
        return (*cls, *obj, *box, *kps)

    def fuse_bn(self) -> YuNetNet:
        """Fold every BatchNorm into its conv (inference only; the outputs stay the same)."""
        for m in self.modules():
            if isinstance(m, (Stem, PointDepthConv)):
                m.fuse_bn()
        return self


# --------------------------------------------------------------------------- decoding


def _priors(height: int, width: int, stride: int) -> torch.Tensor:
    """Cell corners ``(x, y)`` of one level, row-major: ``(rows * cols, 2)``."""
    rows, cols = height // stride, width // stride
    ys, xs = torch.meshgrid(
        torch.arange(rows, dtype=torch.float32),
        torch.arange(cols, dtype=torch.float32),
        indexing="ij",
    )
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], 1) * stride


def decode_outputs(
    outputs: Sequence[torch.Tensor | np.ndarray],
    input_hw: tuple[int, int],
    score_floor: float = DECODE_FLOOR,
    top_k: int = PRE_NMS_TOP_K,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Raw YuNet outputs -> per image ``(boxes (K, 4), scores (K,), points (K, 5, 2))``, no NMS.

    ``outputs`` are the 12 arrays of :meth:`YuNetNet.forward` or the ONNX export (torch or
    numpy), ``input_hw`` the network input's ``(H, W)``.  Boxes ``x0, y0, x1, y1`` and points
    are in network-input pixels; scores are raw ``sqrt(cls * obj)``.  Candidates scoring at
    least ``score_floor`` are kept, at most ``top_k`` of them, best first (ties keep cell order).
    """
    if len(outputs) != len(OUTPUT_NAMES):
        raise ValueError(f"expected {len(OUTPUT_NAMES)} YuNet outputs, got {len(outputs)}")
    t = [torch.as_tensor(o).float().cpu() for o in outputs]
    n = len(STRIDES)
    height, width = input_hw
    priors, strides = [], []
    for level, s in enumerate(STRIDES):
        p = _priors(height, width, s)
        if p.shape[0] != t[level].shape[1]:
            raise ValueError(
                f"stride-{s} output has {t[level].shape[1]} cells; a {height}x{width} input has "
                f"{p.shape[0]}"
            )
        priors.append(p)
        strides.append(torch.full((p.shape[0], 1), float(s)))
    prior = torch.cat(priors)
    stride = torch.cat(strides)
    cls = torch.cat(t[0:n], 1)[..., 0].clamp(0, 1)
    obj = torch.cat(t[n : 2 * n], 1)[..., 0].clamp(0, 1)
    box = torch.cat(t[2 * n : 3 * n], 1)
    kps = torch.cat(t[3 * n : 4 * n], 1)
    scores = torch.sqrt(cls * obj)

    results = []
    for b in range(scores.shape[0]):
        idx = torch.nonzero(scores[b] >= score_floor).reshape(-1)
        sc = scores[b, idx]
        order = torch.argsort(-sc, stable=True)[:top_k]
        idx, sc = idx[order], sc[order]
        pr, st = prior[idx], stride[idx]
        centre = pr + box[b, idx, :2] * st
        size = torch.exp(box[b, idx, 2:]) * st
        boxes = torch.cat([centre - size / 2, centre + size / 2], 1)
        pts = pr[:, None, :] + kps[b, idx].reshape(-1, NUM_POINTS, 2) * st[:, None, :]
        results.append(
            (
                boxes.numpy().astype(np.float32),
                sc.numpy().astype(np.float32),
                pts.numpy().astype(np.float32),
            )
        )
    return results


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


def calibrate_scores(raw: np.ndarray, score_threshold: float) -> np.ndarray:
    """``sigmoid(logit(raw) - logit(score_threshold))``: the operating score reads as 0.5."""
    z = _logit(raw) - _logit(score_threshold)
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


def raw_score_for(threshold: float, score_threshold: float) -> float:
    """The raw score a calibrated ``threshold`` stands for (inverse of :func:`calibrate_scores`)."""
    if threshold <= 0.0:
        return 0.0
    if threshold >= 1.0:
        return 1.0
    z = float(_logit(threshold) + _logit(score_threshold))
    return 1.0 / (1.0 + math.exp(-z))


# --------------------------------------------------------------------------- resolution


#: The resolution policy's sizes (see :func:`detection_passes`).
SMALL_SIDE = 320
MEDIUM_SIDE = 640
LARGE_PHOTO = 1600
FINE_MIN_SIDE = 960
FINE_MAX_SIDE = 1280
#: The fine pass looks at a big photo at this fraction of its size (at least FINE_MIN_SIDE):
#: a quarter is a cheap box-averaged reduction of the decoded photo.
FINE_SCALE = 1 / 4
#: The fine pass of a big photo contributes faces narrower than this fraction of the photo's
#: longer side (narrower than 32 px in the 640 pass, where YuNet starts to miss them).
FINE_MAX_FACE = 1 / 20


def detection_passes(
    height: int, width: int, det_size: int | None = None
) -> tuple[tuple[int, float | None], ...]:
    """How an image is run through YuNet: ``((longer side, widest face kept or None), ...)``.

    Each pass letterboxes the image so its longer side is that size (the canvas is then padded
    to a multiple of 32); a pass with a face limit only contributes faces narrower than that
    many image pixels.  An explicit ``det_size`` is one pass at that size.  Otherwise, by the
    image's longer side ``L`` (YuNet finds faces from about 10 px -- eyes 5 px apart -- to
    the whole canvas; it was trained and evaluated at 640):

    * ``L <= 640``: one pass at the image's own size (no resampling), at least 320, so the
      faces of a small image are upscaled into the range YuNet finds reliably;
    * ``640 < L <= 1600``: one pass at 640 -- portraits, couples and group shots;
    * ``L > 1600`` (big photos, 12 MP and more): the 640 pass for the large faces, plus a
      fine pass at ``L / 4`` (960 to 1,280) for faces narrower than ``L / 20``.  One fine
      pass alone would not do: there, large faces exceed YuNet's range and skin and clothing
      give large false boxes, which is why the fine pass only keeps small faces.

    The fine pass is sized for speed: a 12 MP photo is reduced to 1/4 by averaging and the
    whole annotate stays near 0.3 s on two cores.  YuNet-n is reliable from about 6 px
    between the eyes at network scale, so by default the smallest faces found have about
    ``6 * L / fine`` px between the eyes: 12 px in a 2,000 px photo, 24 px in a 12 MP one.
    For crowds of smaller faces pass ``det_size`` (e.g. 2048: one pass at that size; a
    two-pass run with a fine pass at ``L / 2`` found 100 % of 12 px faces in a tiled 12 MP
    test image, at about 5x the time).
    """
    if det_size is not None:
        return ((int(det_size), None),)
    longer = max(int(height), int(width))
    if longer <= MEDIUM_SIDE:
        return ((max(longer, SMALL_SIDE), None),)
    if longer <= LARGE_PHOTO:
        return ((MEDIUM_SIDE, None),)
    # rounded down, so the fine pass never needs more than a quarter-size JPEG decode
    fine = min(max(int(longer * FINE_SCALE) // 32 * 32, FINE_MIN_SIDE), FINE_MAX_SIDE)
    return ((MEDIUM_SIDE, None), (fine, longer * FINE_MAX_FACE))


# --------------------------------------------------------------------------- detector


def _checkpoint_data(source: Any) -> dict[str, Any]:
    """A validated YuNet checkpoint dict (:func:`facemark.checkpoint.read`, then YuNet's own
    arch and variant) from a path or an already loaded dict."""
    data = ckpt.read(source, task=TASK)
    if data["arch"] != ARCH:
        raise CheckpointError(f"the checkpoint holds a {data['arch']!r} detector, not YuNet")
    variant = dict(data["arch_kwargs"]).get("variant")
    if variant not in VARIANTS:
        raise CheckpointError(f"unknown YuNet variant {variant!r} in the checkpoint")
    return data


def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """A hash of the parameters as stored (names, dtypes, shapes and bytes), key order free."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key].detach().cpu().contiguous()
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class YuNetDetector(Detector):
    """YuNet behind facemark's :class:`Detector` interface.

    Images are letterboxed as :func:`detection_passes` says (padded with 0 right and below to a
    multiple of 32), images whose canvas has the same shape run in one batch, raw scores are
    calibrated, NMS removes duplicates and the boxes and points are mapped back to the image.
    The detector owns ``net``: it folds its BatchNorms into the convs (same outputs, faster).
    """

    name: ClassVar[str] = "yunet"

    def __init__(
        self,
        net: YuNetNet,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        device: str | torch.device = "cpu",
        config: DetectorConfig | None = None,
        weights_hash: str = "",
        info: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(config)
        if not 0.0 < score_threshold < 1.0:
            raise CheckpointError(f"YuNet score_threshold must be in (0, 1), got {score_threshold}")
        self.device = torch.device(device)
        self.variant = net.variant
        self.net = net.eval().fuse_bn().to(self.device)
        if self.device.type == "cuda":
            self.net = self.net.to(memory_format=torch.channels_last)
        self.score_threshold = float(score_threshold)
        self.weights_hash = weights_hash
        self.info = dict(info or {})
        box_map = self.info.get("box_map")
        self.box_map = None if box_map is None else np.asarray(box_map, np.float64).reshape(-1, 4)

    @classmethod
    def from_checkpoint(
        cls,
        path_or_dict: Any,
        device: str | torch.device = "cpu",
        config: DetectorConfig | None = None,
    ) -> YuNetDetector:
        """Load a converted YuNet checkpoint (``tools/convert_yunet.py``); others are refused."""
        data = _checkpoint_data(path_or_dict)
        net = YuNetNet(dict(data["arch_kwargs"])["variant"])
        try:
            net.load_state_dict(data["state_dict"])
        except RuntimeError as exc:
            raise CheckpointError(
                f"weights do not fit YuNet-{net.variant}: {first_line(exc)}"
            ) from None
        threshold = float(data.get("score_threshold", DEFAULT_SCORE_THRESHOLD))
        info = {
            k: data.get(k)
            for k in ("arch", "arch_kwargs", "metadata", "facemark_version", "box_map")
        }
        return cls(net, threshold, device, config, weights_sha256(data["state_dict"]), info)

    @property
    def version(self) -> str:
        return f"yunet_{self.variant}-{self.weights_hash[:12]}"

    def detection_side(self, width: int, height: int) -> int:
        """The largest pass :func:`detection_passes` makes of an image this big."""
        return max(size for size, _ in detection_passes(height, width, self.config.det_size))

    def face_boxes(self, yunet_boxes: np.ndarray, points: np.ndarray) -> np.ndarray:
        """facemark face boxes from YuNet's (WIDER FACE style) boxes and five points.

        Through the checkpoint's ``box_map`` (fitted on the training frames by
        ``tools/fit_yunet_boxes.py``): the face box's edges, in units of the YuNet box around
        its centre, as a linear function of the five points in the same units.  Without a
        map the YuNet boxes are returned unchanged.  Inputs and output in image pixels.
        """
        boxes = np.asarray(yunet_boxes, dtype=np.float64).reshape(-1, 4)
        if self.box_map is None or not len(boxes):
            return boxes.astype(np.float32)
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        size = np.maximum(boxes[:, 2:] - boxes[:, :2], 1.0)
        rel = box_map_features(boxes, np.asarray(points, np.float64)) @ self.box_map
        return (np.tile(centre, 2) + rel * np.tile(size, 2)).astype(np.float32)

    @staticmethod
    def _canvas(image: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The image letterboxed to ``size`` on a 0-padded canvas, and its image->canvas map."""
        return letterbox(image, size, pad_value=PAD_VALUE)

    @torch.inference_mode()
    def raw_outputs(self, canvases: np.ndarray) -> tuple[torch.Tensor, ...]:
        """The network's 12 outputs for a ``(B, H, W, 3)`` uint8 RGB batch of canvases."""
        x = input_tensor(canvases, self.device)  # NHWC memory; the module stays NCHW on CPU
        return tuple(o.float().cpu() for o in self.net(x))

    def detect_batch(
        self,
        images: Sequence[np.ndarray],
        names: Sequence[str | None] | None = None,
        sizes: Sequence[tuple[int, int]] | None = None,
    ) -> list[Detections]:
        rgb = [as_rgb_array(im) for im in images]
        scales = self.scales(rgb, sizes)
        # one canvas per image and pass; canvases of the same shape share a forward pass;
        # the passes (and their face limits, in full-size pixels) follow the full-size photo
        jobs: list[tuple[int, np.ndarray, np.ndarray, float | None]] = []
        for i, (im, k) in enumerate(zip(rgb, scales, strict=True)):
            h, w = round(im.shape[0] * k), round(im.shape[1] * k)
            for size, max_face in detection_passes(h, w, self.config.det_size):
                limit = None if max_face is None else max_face / k
                jobs.append((i, *self._canvas(im, size), limit))
        groups: dict[tuple[int, int], list[int]] = {}
        for j, job in enumerate(jobs):
            groups.setdefault(job[1].shape[:2], []).append(j)
        floor = max(raw_score_for(self.config.threshold, self.score_threshold), DECODE_FLOOR)
        found: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in rgb]
        for hw, idx in groups.items():
            outs = self.raw_outputs(np.stack([jobs[j][1] for j in idx]))
            for j, decoded in zip(idx, decode_outputs(outs, hw, floor), strict=True):
                i, _, M, max_face = jobs[j]
                found[i].append(_to_image(*decoded, M, max_face))
        return [self._finish(parts, k) for parts, k in zip(found, scales, strict=True)]

    def _finish(
        self, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], scale: float
    ) -> Detections:
        """Merge the passes, calibrate, threshold, NMS, face boxes, the shared options."""
        boxes = np.concatenate([p[0] for p in parts]).reshape(-1, 4)
        raw = np.concatenate([p[1] for p in parts]).reshape(-1)
        points = np.concatenate([p[2] for p in parts]).reshape(-1, NUM_POINTS, 2)
        scores = calibrate_scores(raw, self.score_threshold)
        keep = scores >= self.config.threshold
        if not keep.any():
            return Detections.empty(with_points=True)
        boxes, scores, points = boxes[keep], scores[keep], points[keep]
        keep = nms(boxes, scores, NMS_IOU)
        boxes, scores, points = boxes[keep], scores[keep], points[keep]
        found = Detections(self.face_boxes(boxes, points), scores, points)
        return found.finish(self.config, scale)


def box_map_features(boxes: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(F, 11)``: 1 and the five points in units of their YuNet box, about its centre."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    size = np.maximum(boxes[:, 2:] - boxes[:, :2], 1.0)
    rel = (np.asarray(points, np.float64).reshape(-1, NUM_POINTS, 2) - centre[:, None]) / size[
        :, None
    ]
    return np.concatenate([np.ones((len(boxes), 1)), rel.reshape(len(boxes), -1)], axis=1)


def _to_image(
    boxes: np.ndarray, raw: np.ndarray, points: np.ndarray, M: np.ndarray, max_face: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Canvas -> image pixels through the inverse of the letterbox map; drop faces too wide."""
    found = Detections(boxes, raw, points).mapped(M)  # the raw scores ride along unchanged
    if max_face is not None:
        found = found.select((found.boxes[:, 2] - found.boxes[:, 0]) < max_face)
    return found.boxes, found.scores, found.points
