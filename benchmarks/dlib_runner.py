"""The project side of the dlib baseline: find dlib's venv, call it, fit its face-box mapping.

dlib lives in its own virtual environment (it is never a facemark dependency), so everything
crosses a process boundary: images go over as one ``.npz`` of the exact pixels our models see,
boxes and answers as JSON (see ``dlib_baseline.py`` for both formats).

**Boxes for the "GT boxes" setting.**  dlib's shape predictor was trained on boxes from its own
HOG detector, and it is sensitive to where the box sits on the face; feeding it facemark's face
box (keypoint bounds extended to the forehead) would measure that mismatch, not dlib.  So we
learn, on the training frames where HOG finds the face, a linear map from a box made from the
true keypoints to HOG's box (:func:`fit_box_map`).  Two starting boxes are fitted and checked
(:func:`calibrate`): facemark's face box, and the bounding box of the keypoints without the jaw
(:data:`INNER`).  HOG anchors its box on the inner features, and the jaw-based face box predicts
its centre badly; on the training frames the predictor does about as well from the inner map as
from HOG's own boxes and far worse from the face-box map, so the inner map is what the benchmark
uses.  The check's figures are recorded with the results every run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from benchmarks import scoring

SCRIPT = Path(__file__).resolve().parent / "dlib_baseline.py"
DEFAULT_PYTHON = Path("/tmp/dlib-venv/bin/python")
SINGLE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


class DlibUnavailable(RuntimeError):
    """dlib's venv is missing or broken; the message says why, and the benchmark skips dlib."""


def probe(python: str | os.PathLike) -> dict[str, str]:
    """Check that ``python`` can import dlib and its model files; their versions, or raise."""
    python = Path(python)
    if not python.exists():
        raise DlibUnavailable(
            f"no Python at {python} (create the dlib venv, see benchmarks/README.md)"
        )
    code = (
        "import json, dlib, face_recognition_models as f, importlib.metadata as m;"
        "print(json.dumps({'dlib': dlib.__version__,"
        " 'dlib_bin': m.version('dlib-bin'),"
        " 'face_recognition_models': m.version('face_recognition_models'),"
        " 'predictor': f.pose_predictor_model_location()}))"
    )
    try:
        proc = subprocess.run(
            [str(python), "-c", code], capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DlibUnavailable(f"{python} did not run: {exc}") from exc
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise DlibUnavailable(f"{python} cannot import dlib: {last}")
    return json.loads(proc.stdout)


def run(
    python: str | os.PathLike,
    images: Sequence[np.ndarray],
    boxes: Sequence[Sequence[Sequence[float]]] | None = None,
    detect: bool = True,
    timing_paths: Sequence[str] | None = None,
    repeats: int = 5,
    upsample: int = 1,
) -> dict:
    """Run dlib on ``images`` (RGB uint8); the answer of ``dlib_baseline.py`` as a dict.

    ``boxes[i]`` are boxes (already in dlib's convention) to place landmarks in for image ``i``;
    ``timing_paths`` are image files for the timed passes (omit to skip timing).
    """
    with tempfile.TemporaryDirectory(prefix="facemark-dlib-") as tmp:
        tmp_path = Path(tmp)
        arrays = tmp_path / "images.npz"
        np.savez(
            arrays,
            **{str(i): np.ascontiguousarray(im, dtype=np.uint8) for i, im in enumerate(images)},
        )
        items = [
            {"boxes": [list(map(float, b)) for b in boxes[i]] if boxes else []}
            for i in range(len(images))
        ]
        request: dict = {
            "images": items,
            "arrays": str(arrays),
            "detect": detect,
            "upsample": upsample,
        }
        if timing_paths:
            request["timing"] = {"paths": [str(p) for p in timing_paths], "repeats": repeats}
        (tmp_path / "request.json").write_text(json.dumps(request))
        out = tmp_path / "answer.json"
        cmd = [
            str(python),
            str(SCRIPT),
            "--input",
            str(tmp_path / "request.json"),
            "--output",
            str(out),
        ]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env={**os.environ, **SINGLE_THREAD}
        )
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            raise DlibUnavailable(f"dlib_baseline.py failed (exit {proc.returncode})")
        return json.loads(out.read_text())


# --- calibration ---------------------------------------------------------------------------

BOX_SOURCE = "inner"  # the map the benchmark uses for dlib's ground-truth-box rows (see calibrate)


def matched(answer: dict, gt: np.ndarray) -> list[dict | None]:
    """Per image, the detection in ``answer`` that belongs to the labelled face, or None."""
    out = []
    for g, rec in zip(gt, answer["images"], strict=True):
        dets = rec.get("detections", [])
        k = scoring.match_detection([d["box"] for d in dets], [d["score"] for d in dets], g)
        out.append(None if k is None else dets[k])
    return out


def calibrate(python: str | os.PathLike, images: Sequence[np.ndarray], gt: np.ndarray) -> dict:
    """Fit the box maps on labelled frames and measure dlib's NME_io from each kind of box.

    Returns the maps (``face`` and ``inner``), the check (mean NME_io and FR@0.10 on the frames
    HOG found, from HOG's own boxes and from each map) and which map the benchmark uses.
    """
    gt = np.asarray(gt, dtype=np.float64)
    found = matched(run(python, images, detect=True), gt)
    keep = [i for i, d in enumerate(found) if d is not None]
    hog = np.array([found[i]["box"] for i in keep], dtype=np.float64).reshape(-1, 4)
    kept_gt = gt[keep]
    maps = {src: fit_box_map(source_boxes(kept_gt, src), hog) for src in ("inner", "face")}
    columns = {"hog": hog}
    columns.update(
        {src: apply_box_map(m["coef"], source_boxes(kept_gt, src)) for src, m in maps.items()}
    )
    per_image = [[columns[c][j].tolist() for c in columns] for j in range(len(keep))]
    answer = run(python, [images[i] for i in keep], boxes=per_image, detect=False)
    check = {}
    for k, name in enumerate(columns):
        pred = [np.array(rec["given"][k]["keypoints"]) for rec in answer["images"]]
        result = scoring.score(pred, kept_gt)
        check[name] = {"nme_io": result["nme_io"], "fr_10": result["fr_10"]}
    return {
        "source": BOX_SOURCE,
        "frames": len(images),
        "found": len(keep),
        "maps": maps,
        "check": check,
    }


def gt_box_for_dlib(calibration: dict, gt: np.ndarray) -> np.ndarray:
    """dlib's box for each labelled face (N, 4), by the calibrated map."""
    source = calibration["source"]
    return apply_box_map(calibration["maps"][source]["coef"], source_boxes(gt, source))


# --- box mapping ----------------------------------------------------------------------------

#: Keypoints a source box is the bounding box of: ``inner`` leaves out the jaw (0-16).
INNER = slice(17, 68)


def source_boxes(gt: np.ndarray, source: str) -> np.ndarray:
    """Boxes (N, 4) made from ground-truth keypoints (N, 68, 2) that a map starts from.

    ``face`` is facemark's face box (``transforms.face_box_from_keypoints``); ``inner`` is the
    bounding box of brows, eyes, nose and mouth, which is where HOG's box is anchored.
    """
    from facemark import transforms

    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 68, 2)
    if source == "face":
        return transforms.face_box_from_keypoints(gt).astype(np.float64)
    if source == "inner":
        pts = gt[:, INNER]
        return np.concatenate([pts.min(axis=1), pts.max(axis=1)], axis=1)
    raise ValueError(f"unknown box source {source!r}")


def _centre_size(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre x, centre y, and the regressors (width, height), per box."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)
    return (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2, size


def fit_box_map(src: np.ndarray, hog: np.ndarray) -> dict[str, object]:
    """Least-squares map from source boxes (N, 4) to dlib's HOG boxes (N, 4).

    HOG's boxes are square, so the map predicts a square: its centre is the source box's
    centre plus ``a*w + b*h`` in x and in y, its side ``a*w + b*h``, where ``w, h`` are the
    source box's width and height: linear, and equivariant to translation and scale.
    """
    src = np.asarray(src, dtype=np.float64).reshape(-1, 4)
    hog = np.asarray(hog, dtype=np.float64).reshape(-1, 4)
    if len(src) < 3 or len(src) != len(hog):
        raise ValueError(
            f"need at least 3 pairs of boxes to fit a box map, got {len(src)}, {len(hog)}"
        )
    sx, sy, size = _centre_size(src)
    hx, hy, hsize = _centre_size(hog)
    targets = {"dx": hx - sx, "dy": hy - sy, "side": hsize.mean(axis=1)}
    coef = {
        k: [float(c) for c in np.linalg.lstsq(size, t, rcond=None)[0]] for k, t in targets.items()
    }
    iou = box_iou(apply_box_map(coef, src), hog)
    return {
        "coef": coef,
        "pairs": int(len(src)),
        "iou_mean": float(iou.mean()),
        "iou_median": float(np.median(iou)),
    }


def apply_box_map(coef: dict[str, Sequence[float]], src: np.ndarray) -> np.ndarray:
    """Source boxes (N, 4) mapped to where dlib's HOG detector would put them."""
    sx, sy, size = _centre_size(src)
    cx = sx + size @ np.asarray(coef["dx"], dtype=np.float64)
    cy = sy + size @ np.asarray(coef["dy"], dtype=np.float64)
    half = size @ np.asarray(coef["side"], dtype=np.float64) / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of matching rows of two (N, 4) box arrays."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)
