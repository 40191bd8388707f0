"""Fit the map from YuNet's boxes and five points to facemark's face box, and store it.

YuNet was trained on WIDER FACE boxes; facemark's landmark model crops from its own face box
(``transforms.face_box_from_keypoints``: the 68 points' box raised by a forehead margin).
This runs YuNet on the training frames only (never val or test), pairs each detection with
its frame's true face box, and fits a small ridge regression: the face box's edges, in units
of the YuNet box around its centre, from the five points in the same units.  The coefficients
go into the converted YuNet checkpoint as ``box_map``.

    python tools/fit_yunet_boxes.py src/facemark/weights/yunet_n.pt [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from facemark import checkpoint, transforms
from facemark.data import load_split
from facemark.detectors.base import DetectorConfig
from facemark.detectors.yunet import YuNetDetector, box_map_features
from facemark.evaluate import match_detection

RIDGE = 1e-3


def fit(features: np.ndarray, targets: np.ndarray, ridge: float = RIDGE) -> np.ndarray:
    """Ridge least squares: ``(F, k) x coef (k, 4) ~ targets (F, 4)``."""
    k = features.shape[1]
    gram = features.T @ features + ridge * len(features) * np.eye(k)
    return np.linalg.solve(gram, features.T @ targets)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="a converted YuNet checkpoint (updated in place)")
    parser.add_argument("--limit", type=int, default=None, help="use N training frames")
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)

    data = checkpoint.load_checkpoint(args.weights, "detector")
    data.pop("box_map", None)
    detector = YuNetDetector.from_checkpoint(data, config=DetectorConfig(threshold=0.5))
    faces = load_split("train", root=args.data_root, progress=True, limit=args.limit)
    feats, targets, missed = [], [], 0
    t0 = time.perf_counter()
    for image, kps in zip(faces.images, faces.keypoints, strict=True):
        det = detector.detect(image)
        k = match_detection(det.boxes, det.scores, kps)
        if k is None:
            missed += 1
            continue
        box, points = det.boxes[k].astype(np.float64), det.points[k].astype(np.float64)
        target = transforms.face_box_from_keypoints(kps).astype(np.float64)
        feats.append(box_map_features(box[None], points[None])[0])
        centre = (box[:2] + box[2:]) / 2
        size = np.maximum(box[2:] - box[:2], 1.0)
        targets.append((target - np.tile(centre, 2)) / np.tile(size, 2))
    X, Y = np.array(feats), np.array(targets)
    coef = fit(X, Y)
    residual = Y - X @ coef
    before = Y - np.array([[-0.5, -0.5, 0.5, 0.5]])
    print(
        f"{len(X)} training frames fitted ({missed} without a detection) in "
        f"{time.perf_counter() - t0:.0f} s; mean |edge error| in YuNet-box units: "
        f"{np.abs(before).mean():.4f} unmapped -> {np.abs(residual).mean():.4f} mapped",
        file=sys.stderr,
    )
    data["box_map"] = coef.astype(np.float32).tolist()
    data["box_map_fit"] = {
        "frames": len(X),
        "missed": missed,
        "split": "train",
        "mean_abs_edge_error": float(np.abs(residual).mean()),
    }
    checkpoint.save_checkpoint(args.weights, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
