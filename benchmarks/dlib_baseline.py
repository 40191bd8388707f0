"""dlib's HOG face detector and 68-point shape predictor on a list of images.

Runs INSIDE a separate virtual environment that has only dlib (``dlib-bin``), the model files
(``face-recognition-models``), numpy and Pillow; facemark and torch are never imported here, so
the baseline cannot borrow anything from the project.  ``benchmarks/run.py`` calls it by
subprocess with a request JSON and scores the answer with facemark's own metrics.

Request (``--input``)::

    {"images": [{"path": "a.jpg", "boxes": [[x0, y0, x1, y1], ...]}, ...],   # boxes optional
     "arrays": "images.npz",      # optional: decoded RGB images, keys "0", "1", ... in order
     "detect": true,              # run the HOG detector (+ landmarks on every detection)
     "upsample": 1,               # as dlib's own examples
     "timing": {"paths": ["a.jpg", ...], "repeats": 5}}                      # optional

``arrays`` lets the caller hand over the very pixels its own models saw, so accuracy never
depends on two decoders agreeing; the timed end-to-end pass decodes ``timing.paths`` itself.

Answer (``--output``): per image the detections (box, score, 68 keypoints) and the keypoints
for each given box, plus timings (medians over ``repeats`` passes, one thread).

Coordinates are pixel-index (x, y) like facemark's.  dlib's Python API returns integer
keypoints (its ``point`` type), so its predictions carry up to half a pixel of rounding.

Setup::

    python3 -m venv /tmp/dlib-venv
    /tmp/dlib-venv/bin/pip install dlib-bin face-recognition-models numpy pillow
    /tmp/dlib-venv/bin/python benchmarks/dlib_baseline.py --input req.json --output out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import dlib
import numpy as np
from bench_timing import median_pass, per_second  # stdlib-only sibling module
from PIL import Image, ImageOps


def predictor_path() -> str:
    """The 68-point model shipped by ``face-recognition-models`` (dlib's own iBUG 300-W model)."""
    import face_recognition_models

    return face_recognition_models.pose_predictor_model_location()


def read_rgb(path: str) -> np.ndarray:
    """RGB uint8 with EXIF orientation applied: the same decoding facemark uses."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def to_rect(box: list[float]) -> dlib.rectangle:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return dlib.rectangle(x0, y0, x1, y1)


def from_rect(rect: dlib.rectangle) -> list[float]:
    return [float(rect.left()), float(rect.top()), float(rect.right()), float(rect.bottom())]


def shape_points(shape: dlib.full_object_detection) -> list[list[float]]:
    return [[float(shape.part(i).x), float(shape.part(i).y)] for i in range(shape.num_parts)]


class Dlib68:
    """HOG detector + 68-point predictor, loaded once."""

    def __init__(self, model: str, upsample: int) -> None:
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(model)
        self.upsample = upsample

    def detect(self, image: np.ndarray) -> tuple[list[dlib.rectangle], list[float]]:
        # run() rather than __call__ to get each detection's score (threshold 0 = dlib default)
        rects, scores, _ = self.detector.run(image, self.upsample, 0.0)
        return list(rects), [float(s) for s in scores]

    def landmarks(self, image: np.ndarray, rect: dlib.rectangle) -> dlib.full_object_detection:
        return self.predictor(image, rect)


def predict(model: Dlib68, images: list[np.ndarray], items: list[dict], detect: bool) -> list[dict]:
    """Detections and keypoints for every image (no timing)."""
    out = []
    for image, item in zip(images, items, strict=True):
        rec: dict = {"path": item.get("path"), "width": image.shape[1], "height": image.shape[0]}
        if detect:
            rects, scores = model.detect(image)
            rec["detections"] = [
                {
                    "box": from_rect(r),
                    "score": s,
                    "keypoints": shape_points(model.landmarks(image, r)),
                }
                for r, s in zip(rects, scores, strict=True)
            ]
        rec["given"] = [
            {"box": box, "keypoints": shape_points(model.landmarks(image, to_rect(box)))}
            for box in item.get("boxes") or []
        ]
        out.append(rec)
    return out


def timings(model: Dlib68, paths: list[str], repeats: int) -> dict:
    """Detection ms/image, landmark ms/face and decode+detect+landmarks images/s (one thread)."""
    images = [read_rgb(p) for p in paths]
    rects = [model.detect(im)[0] for im in images]  # also warms up caches
    faces = [(im, r) for im, rs in zip(images, rects, strict=True) for r in rs]

    def detect_pass() -> None:
        for im in images:
            model.detect(im)

    def landmark_pass() -> None:
        for im, r in faces:
            model.landmarks(im, r)

    def pipeline_pass() -> None:
        for p in paths:
            im = read_rgb(p)
            for r in model.detect(im)[0]:
                model.landmarks(im, r)

    det = median_pass(detect_pass, repeats, len(images))
    pipe = median_pass(pipeline_pass, repeats, len(paths))
    result = {
        "images": len(images),
        "faces": len(faces),
        "detect_ms_per_image": det["median"],
        "detect_ms_per_image_runs": det["runs"],
        "pipeline_ms_per_image": pipe["median"],
        "pipeline_ms_per_image_runs": pipe["runs"],
        "pipeline_images_per_s": per_second(pipe["median"]),
    }
    if faces:
        lm = median_pass(landmark_pass, repeats, len(faces))
        result["landmarks_ms_per_face"] = lm["median"]
        result["landmarks_ms_per_face_runs"] = lm["runs"]
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True, help="request JSON (see module docstring)")
    ap.add_argument("--output", required=True, help="answer JSON, written atomically")
    ap.add_argument("--predictor", default=None, help="shape_predictor_68_face_landmarks.dat")
    args = ap.parse_args(argv)

    request = json.loads(Path(args.input).read_text())
    items = request["images"]
    upsample = int(request.get("upsample", 1))
    model_path = args.predictor or request.get("predictor") or predictor_path()
    model = Dlib68(model_path, upsample)

    if request.get("arrays"):
        with np.load(request["arrays"]) as arrays:
            images = [arrays[str(i)] for i in range(len(items))]
    else:
        images = [read_rgb(it["path"]) for it in items]
    answer = {
        "dlib_version": dlib.__version__,
        "predictor": model_path,
        "upsample": upsample,
        "images": predict(model, images, items, bool(request.get("detect", True))),
    }
    timing = request.get("timing")
    if timing:
        answer["timing"] = timings(model, list(timing["paths"]), int(timing.get("repeats", 5)))

    out = Path(args.output)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(answer))
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
