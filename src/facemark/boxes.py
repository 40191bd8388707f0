"""Box and whole-image geometry shared by every detector, training and evaluation.

Boxes are ``(N, 4)`` arrays of ``x0, y0, x1, y1`` in the pixel-index convention (integer
``i`` is the centre of pixel ``i``); matrices are ``(2, 3)`` affine maps from one image's
pixels to another's.  Pure numpy (and Pillow for resizing): no torch, so anything can use it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: The padding value of a letterboxed image (mid grey), at training and inference alike.
GREY = 128

#: Greedy NMS overlap above which the lower-scored of two boxes is dropped.
NMS_IOU = 0.4


def box_area(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.clip(boxes[..., 2] - boxes[..., 0], 0, None) * np.clip(
        boxes[..., 3] - boxes[..., 1], 0, None
    )


def intersection(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return float(max(w, 0.0) * max(h, 0.0))


def resize_matrix(src_w: int, src_h: int, dst_w: int, dst_h: int) -> np.ndarray:
    """Pixel-index coordinates of a whole image resized from ``src`` to ``dst`` size."""
    sx, sy = dst_w / src_w, dst_h / src_h
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]])


def map_boxes(boxes: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Boxes through an axis-aligned (scale + shift) affine matrix."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = boxes.copy()
    out[:, [0, 2]] = boxes[:, [0, 2]] * M[0, 0] + M[0, 2]
    out[:, [1, 3]] = boxes[:, [1, 3]] * M[1, 1] + M[1, 2]
    return out.astype(np.float32)


def letterbox_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """``(rows, cols)`` of an image once its longer side is resized to ``size``."""
    r = size / max(height, width)
    return max(1, int(round(height * r))), max(1, int(round(width * r)))


def pad_multiple(n: int, multiple: int = 32) -> int:
    """``n`` rounded up to a multiple of the network's coarsest stride."""
    return -(-n // multiple) * multiple


def letterbox(
    image: np.ndarray,
    size: int,
    pad_to: tuple[int, int] | None = None,
    pad_value: int = GREY,
) -> tuple[np.ndarray, np.ndarray]:
    """Resize so the longer side is ``size`` and pad with ``pad_value`` right and below.

    Returns ``(canvas uint8, M)`` where ``M`` maps image pixels to canvas pixels.  ``pad_to``
    ``(H, W)`` sets the canvas size (at least the resized image); by default the canvas is the
    resized image padded up to a multiple of 32, the network's coarsest stride.
    """
    h, w = image.shape[:2]
    nh, nw = letterbox_shape(h, w, size)
    if (nw, nh) == (w, h):
        resized = np.asarray(image)
    else:
        pil = Image.fromarray(image)
        resized = np.asarray(pil.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=3.0))
    ph, pw = pad_to if pad_to is not None else (pad_multiple(nh), pad_multiple(nw))
    canvas = np.full((max(ph, nh), max(pw, nw), 3), pad_value, dtype=np.uint8)
    canvas[:nh, :nw] = resized
    return canvas, resize_matrix(w, h, nw, nh)


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
