"""Face detector benchmark: facemark's detector against OpenCV's Haar cascade.

    python benchmarks/bench_detector.py --model PATH_OR_SPEC [--input-sizes 320,416]

Measured on the same images for every detector:

* **recall** on the 160 labelled test frames: a face counts as found when a detection's box
  contains the centroid of its true keypoints (:func:`scoring.match_detection`, the rule the
  end-to-end benchmark uses); ``extra/frame`` counts the other detections on those frames;
* **faces found** on the two photos of the dataset archive, ``obamas.jpg`` (2 faces) and
  ``mona_lisa.jpg`` (1 face);
* **false positives per image** on scikit-image's bundled photos that show no human face
  (a cat, coffee, a rocket, a motorcycle, textures, text, microscopy, ...); skipped with a
  note when scikit-image is not installed;
* **ms/image**: median wall time of one ``detect`` call over all those images, with the
  torch thread count given by ``--threads`` (2 by default, a laptop's share).

The Haar cascade (``haarcascade_frontalface_default.xml``, scaleFactor 1.1, minNeighbors 5)
runs when ``cv2`` is importable, on the full-resolution grayscale image with the same minimum
face size.  Neither scikit-image nor OpenCV is a facemark dependency; install them in a
separate environment to run this (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from benchmarks import scoring  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

from facemark import dataset  # noqa: E402

SHARED_ZIP = ROOT.parent / "shared" / "data" / "P1_Facial_Keypoints-master.zip"
PHOTOS = {"obamas.jpg": 2, "mona_lisa.jpg": 1}
#: scikit-image sample images without a human face (astronaut and camera have one).
FACE_FREE = (
    "brick", "chelsea", "clock", "coffee", "coins", "grass", "gravel", "horse",
    "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket",
    "stereo_motorcycle", "text",
)  # fmt: skip

Detect = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


# --------------------------------------------------------------------------- images


def _rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def load_photos(zip_path: Path | None, photos_dir: Path | None) -> dict[str, np.ndarray]:
    """The archive's two test photos, from a folder or straight from the zip."""
    out: dict[str, np.ndarray] = {}
    for name in PHOTOS:
        if photos_dir is not None and (photos_dir / name).is_file():
            out[name] = _rgb(Image.open(photos_dir / name))
        elif zip_path is not None and zip_path.is_file():
            with zipfile.ZipFile(zip_path) as zf:
                member = next((m for m in zf.namelist() if m.endswith(f"images/{name}")), None)
                if member is not None:
                    out[name] = _rgb(Image.open(io.BytesIO(zf.read(member))))
    return out


def load_face_free() -> tuple[dict[str, np.ndarray], str | None]:
    """scikit-image's face-free samples as RGB uint8, or a note saying why there are none."""
    try:
        import skimage.data as skdata
    except ImportError:
        return {}, "scikit-image not installed"
    out: dict[str, np.ndarray] = {}
    for name in FACE_FREE:
        try:
            img = getattr(skdata, name)()
        except Exception:  # some samples need a download; skip those
            continue
        img = img[0] if isinstance(img, tuple) else img  # stereo pairs
        arr = np.asarray(img)
        if arr.dtype == bool:
            arr = arr.astype(np.uint8) * 255
        out[name] = _rgb(Image.fromarray(arr))
    return out, None if out else "no scikit-image sample could be loaded"


# --------------------------------------------------------------------------- detectors


def facemark_detector(
    spec: str, input_size: int | None, threshold: float, min_face: float
) -> tuple[str, Detect]:
    from facemark import hub

    det = hub.load_detector(spec, device="cpu")
    size = input_size or det.input_size

    def run(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return det.detect(image, threshold=threshold, min_face=min_face, input_size=size)

    return f"facemark ({size} px)", run


def haar_detector(min_face: float) -> tuple[str, Detect] | str:
    """The Haar cascade as a detector, or the reason it cannot run."""
    try:
        import cv2
    except ImportError:
        return "OpenCV not installed: no Haar cascade row"
    if not hasattr(cv2, "CascadeClassifier"):  # OpenCV 5 moved it out of the main package
        return (
            f"OpenCV {cv2.__version__} has no Haar cascade (pip install 'opencv-python-headless<5')"
        )
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    side = int(round(min_face))

    def run(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        found = cascade.detectMultiScale(
            gray, scaleFactor=1.1, minNeighbors=5, minSize=(side, side)
        )
        boxes = np.asarray(found, dtype=np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]  # x, y, w, h -> x0, y0, x1, y1
        return boxes, np.ones(len(boxes), np.float32)

    return "OpenCV Haar cascade", run


# --------------------------------------------------------------------------- measuring


def measure(
    detect: Detect,
    test: dataset.FaceSet,
    photos: dict[str, np.ndarray],
    negatives: dict[str, np.ndarray],
) -> dict[str, Any]:
    """Run one detector over every image once, timing each call."""
    times: list[float] = []

    def timed(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = time.perf_counter()
        out = detect(image)
        times.append(time.perf_counter() - t)
        return out

    detect(test.images[0])  # warm-up (first-call allocations)
    found, extra = 0, 0
    for image, kps in zip(test.images, test.keypoints, strict=True):
        boxes, scores = timed(image)
        hit = scoring.match_detection(boxes, scores, kps)
        found += hit is not None
        extra += len(boxes) - (hit is not None)
    photo_counts = {name: int(len(timed(img)[0])) for name, img in photos.items()}
    fps = {name: int(len(timed(img)[0])) for name, img in negatives.items()}
    return {
        "test_frames": len(test),
        "recall": found / max(len(test), 1),
        "extra_per_frame": extra / max(len(test), 1),
        "photos": photo_counts,
        "face_free_images": len(fps),
        "fp_per_image": (sum(fps.values()) / len(fps)) if fps else None,
        "fp_by_image": fps,
        "ms_median": 1000 * statistics.median(times),
    }


def markdown(rows: list[tuple[str, dict[str, Any]]], notes: list[str]) -> str:
    head = (
        "| detector | test recall (160 frames) | extra det./frame | obamas.jpg (2) "
        "| mona_lisa.jpg (1) | FP/image, face-free photos | ms/image (median) |"
    )
    lines = [head, "|" + " --- |" * 7]
    for name, r in rows:
        photos = [str(r["photos"].get(p, "-")) for p in PHOTOS]
        fp = (
            "-"
            if r["fp_per_image"] is None
            else f"{r['fp_per_image']:.2f} ({r['face_free_images']} images)"
        )
        lines.append(
            f"| {name} | {100 * r['recall']:.1f}% | {r['extra_per_frame']:.2f} | {photos[0]} "
            f"| {photos[1]} | {fp} | {r['ms_median']:.1f} |"
        )
    return "\n".join(lines + [""] + [f"- {n}" for n in notes]) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--model", default="default", help="facemark detector spec (name, run, path, URL)"
    )
    ap.add_argument("--input-sizes", default="", help="comma-separated network sizes [model's own]")
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--min-face", type=float, default=24.0, help="smallest face width, image px")
    ap.add_argument("--data-root", default=None, help="dataset folder [the installed one]")
    ap.add_argument(
        "--zip", type=Path, default=SHARED_ZIP, help="archive holding images/obamas.jpg"
    )
    ap.add_argument(
        "--photos", type=Path, default=None, help="folder with obamas.jpg, mona_lisa.jpg"
    )
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--no-haar", action="store_true", help="skip OpenCV even when installed")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw numbers here")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    test = dataset.load_split("test", root=args.data_root)
    photos = load_photos(args.zip, args.photos)
    negatives, neg_note = load_face_free()
    notes = [
        f"torch threads: {args.threads}; threshold {args.threshold}; min face {args.min_face:g} px"
    ]
    if len(photos) < len(PHOTOS):
        notes.append("obamas.jpg / mona_lisa.jpg not found (give --zip or --photos)")
    if neg_note:
        notes.append(f"face-free photos skipped: {neg_note}")
    else:
        notes.append("face-free photos: scikit-image " + ", ".join(negatives))

    detectors: list[tuple[str, Detect]] = []
    sizes = [int(s) for s in args.input_sizes.split(",") if s.strip()] or [None]
    for size in sizes:
        detectors.append(facemark_detector(args.model, size, args.threshold, args.min_face))
    haar = None if args.no_haar else haar_detector(args.min_face)
    if isinstance(haar, tuple):
        detectors.append(haar)
        notes.append("Haar runs on the full-resolution grayscale image; facemark on its letterbox")
    elif haar is not None:
        notes.append(haar)

    rows = [(name, measure(fn, test, photos, negatives)) for name, fn in detectors]
    print(markdown(rows, notes))
    if args.json is not None:
        args.json.write_text(json.dumps({name: r for name, r in rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
