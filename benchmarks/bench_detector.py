"""Face detector benchmark: YuNet-n, YuNet-s, the old facemark detector, dlib HOG, OpenCV Haar.

    python benchmarks/bench_detector.py [--photos DIR] [--skip dlib,haar,...]

One command measures every detector on the same images and writes
``benchmarks/results/detector.json`` and ``docs/detector-benchmark.md``:

1. **Real photos** (``--photos``, default ``../shared/photos``; ground truth in
   ``benchmarks/photos.json``): recall over all labelled faces and over the *required* ones
   (eye distance >= 12 px and no ``note``: the noted faces are blurred, profile, tiny, partly
   outside, or a photo of a photo, and finding them is optional), false positives, and the
   missed required faces and false positives by photo.  Centre rules, which do not depend
   on the detectors' box conventions: a detection *finds* a true face when each box holds
   the other's centre (each face takes one detection, nearest centres first); a detection
   whose box holds no true box's centre and whose centre lies in no true box is a *false
   positive*; the rest are *duplicates* (of a face already found) or *loose* boxes (one rule
   only: much too big or displaced), counted, neither found nor false.  Overlays of the
   group photos (3 faces or more) go to ``--overlays``.
2. **Dataset frames**: recall on the 160 test frames and the 360 validation frames
   (``facemark.data.load_split("val")``): a face is found when a box contains the centroid of
   its keypoints (:func:`facemark.evaluate.match_detection`, the end-to-end benchmark's rule);
   ``extra/frame`` counts the other boxes and ``frames with extra`` the share of frames with
   any.  Also the faces found on the archive's ``obamas.jpg`` (2) and ``mona_lisa.jpg`` (1).
3. **Face-free photos**: detections per image on scikit-image's samples without a human
   face (:data:`FACE_FREE`).
4. **Speed**: median ms per ``detect`` call on a decoded image of about 0.3, 2 and 12 MP
   (``--speed-photo`` resized with Pillow; at 12 MP the photo as it is), and the whole
   pipeline on a 12 MP JPEG file with several faces (``--pipeline-photo`` scaled to 12 MP):
   ``FaceMarker(path)`` from the file (decode, detect, 68 landmarks per face) against
   dlib's HOG detector + 68-point shape predictor (decode, detect, landmarks).

facemark's detectors see photos the way ``facemark annotate`` does (through
:class:`facemark.images.Photo`: decoded in full, reduced by averaging to what the detector
looks at); dlib and Haar get the full-size decoded pixels.  dlib runs in its own venv
(``--dlib-python``, see benchmarks/README.md) by subprocess.  OpenCV and scikit-image are not
facemark dependencies: used in-process when importable, else through ``--helper-python`` (a
venv with ``opencv-python-headless<5``, ``scikit-image``, numpy and Pillow), which runs this
file with ``--worker`` (that mode imports neither facemark nor torch).
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageOps  # noqa: E402

SHARED_ZIP = ROOT.parent / "shared" / "data" / "P1_Facial_Keypoints-master.zip"
DEFAULT_PHOTOS = ROOT.parent / "shared" / "photos"
DEFAULT_PHOTOS_JSON = ROOT / "benchmarks" / "photos.json"
DEFAULT_ANIMALS = ROOT.parent / "shared" / "data" / "nonhuman"
DEFAULT_OVERLAYS = ROOT / "benchmarks" / "results" / "overlays"
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "detector.json"
DEFAULT_MD = ROOT / "docs" / "detector-benchmark.md"
DEFAULT_HELPER = Path(os.environ.get("FACEMARK_BENCH_PYTHON", "/tmp/bench-venv/bin/python"))

#: The archive's two photos and their face counts.
PHOTOS = {"obamas.jpg": 2, "mona_lisa.jpg": 1}
#: scikit-image sample images without a human face (astronaut and camera have one).
FACE_FREE = (
    "brick", "chelsea", "clock", "coffee", "coins", "grass", "gravel", "horse",
    "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket",
    "stereo_motorcycle", "text",
)  # fmt: skip

#: facemark's detectors (specs for ``load_detector``) and the two classic ones.
#: facemark's rows; ``annotate`` is YuNet-n with every check annotate applies (the landmark
#: model's confidence and faceness): the faces a user gets, not the detector's raw boxes.
OURS = ("yunet_n", "yunet_s", "facemark", "annotate")
EXTERNAL = ("dlib_hog", "haar")
LABELS = {
    "yunet_n": "YuNet-n (default)",
    "yunet_s": "YuNet-s",
    "facemark": "facemark (old detector)",
    "annotate": "YuNet-n + landmark and faceness checks (what annotate keeps)",
    "dlib_hog": "dlib HOG (upsample 1)",
    "haar": "OpenCV Haar cascade",
}
PARTS = ("photos", "overlays", "frames", "archive", "face_free", "animals", "speed", "pipeline")
#: A labelled face is required when its eyes are at least this far apart and it has no note.
REQUIRED_EYE_DISTANCE = 12.0
#: Group photos (this many faces or more) get overlays.
GROUP_FACES = 3
#: Megapixels of the speed images (the last: the speed photo as it is).
SPEED_MP = (0.3, 2.0, 12.0)
PIPELINE_MP = 12.0
#: Images of this many megapixels or more are timed with about half the repeats (a dlib
#: pass over 12 MP takes seconds; the whole command must stay well under ten minutes).
BIG_MP = 5.0


def repeats_for(pixels: int, repeats: int) -> int:
    """Timing repeats for an image of ``pixels``: ``repeats``, about halved for big images."""
    return repeats if pixels < BIG_MP * 1e6 else max(1, (repeats + 1) // 2)


Boxes = tuple[np.ndarray, np.ndarray]  # (F, 4) x0 y0 x1 y1, (F,) scores


# --------------------------------------------------------------------------- ground truth


def load_ground_truth(path: Path) -> dict[str, list[dict[str, Any]]]:
    """``{photo name: [face, ...]}`` from photos.json (each face: box, eye_distance, note?)."""
    data = json.loads(Path(path).read_text())
    return {name: list(rec["faces"]) for name, rec in data["photos"].items()}


def is_required(face: dict[str, Any]) -> bool:
    """A clear face every detector should find: eyes >= 12 px apart and no note."""
    return float(face.get("eye_distance", 0.0)) >= REQUIRED_EYE_DISTANCE and not face.get("note")


def _centres(boxes: np.ndarray) -> np.ndarray:
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)


def _contains(boxes: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(B, P): whether box b contains point p."""
    x, y = points[None, :, 0], points[None, :, 1]
    return (
        (boxes[:, None, 0] <= x)
        & (x <= boxes[:, None, 2])
        & (boxes[:, None, 1] <= y)
        & (y <= boxes[:, None, 3])
    )


def related(det: np.ndarray, gt: np.ndarray, both: bool = False) -> np.ndarray:
    """(D, G): the detection's box contains the true box's centre, or (``both``: and) the
    detection's centre lies in the true box."""
    det = np.asarray(det, dtype=np.float64).reshape(-1, 4)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    holds, inside = _contains(det, _centres(gt)), _contains(gt, _centres(det)).T
    return (holds & inside) if both else (holds | inside)


def match_photo(gt: np.ndarray, det: np.ndarray) -> tuple[list[int | None], list[str]]:
    """Pair detections with true faces, one each, nearest centres first.

    A detection *matches* a face when each box holds the other's centre; it is *related* to
    it when either does.  Returns, per true face, the index of its detection (or None), and
    per detection its kind: ``"match"``, ``"duplicate"`` (matches only faces already taken),
    ``"loose"`` (related to a face but matching none: a box much too big or displaced, e.g.
    one over a face and a torso) or ``"fp"`` (related to no face).
    """
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    det = np.asarray(det, dtype=np.float64).reshape(-1, 4)
    rel, mutual = related(det, gt), related(det, gt, both=True)
    size = np.maximum(np.hypot(gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]), 1e-9)
    dist = np.linalg.norm(_centres(det)[:, None] - _centres(gt)[None], axis=2) / size[None]
    pairs = sorted(zip(*np.nonzero(mutual), strict=True), key=lambda p: dist[p])
    face_det: list[int | None] = [None] * len(gt)
    kinds = [
        "duplicate" if mutual[d].any() else "loose" if rel[d].any() else "fp"
        for d in range(len(det))
    ]
    for d, g in pairs:
        if face_det[g] is None and kinds[d] != "match":
            face_det[g], kinds[d] = int(d), "match"
    return face_det, kinds


def _box_list(box: Sequence[float]) -> list[float]:
    return [round(float(v), 1) for v in box]


def score_photos(truth: dict[str, list[dict[str, Any]]], found: dict[str, Boxes]) -> dict[str, Any]:
    """Recall (all faces, required faces), false positives and their lists, on the photos
    present in ``found``."""
    faces = required = hit = hit_required = duplicates = loose = 0
    missed: list[dict[str, Any]] = []
    optional_missed: list[dict[str, Any]] = []
    fps: list[dict[str, Any]] = []
    per_photo: dict[str, dict[str, Any]] = {}
    for name in sorted(found):
        boxes, scores = found[name]
        gt = truth[name]
        face_det, kinds = match_photo(np.array([f["box"] for f in gt]), boxes)
        for face, d in zip(gt, face_det, strict=True):
            req = is_required(face)
            faces += 1
            required += req
            hit += d is not None
            hit_required += req and d is not None
            if d is None:
                rec = {
                    "photo": name,
                    "box": _box_list(face["box"]),
                    "eye_distance": face.get("eye_distance"),
                }
                if req:
                    missed.append(rec)
                else:
                    optional_missed.append({**rec, "note": face.get("note")})
        for d, kind in enumerate(kinds):
            duplicates += kind == "duplicate"
            loose += kind == "loose"
            if kind == "fp":
                fps.append(
                    {"photo": name, "box": _box_list(boxes[d]), "score": round(float(scores[d]), 3)}
                )
        per_photo[name] = {
            "faces": len(gt),
            "found": sum(d is not None for d in face_det),
            "detections": len(kinds),
            "fp": kinds.count("fp"),
            "kinds": kinds,
            "face_found": [d is not None for d in face_det],
        }
    return {
        "photos": len(found),
        "faces": faces,
        "found": hit,
        "recall_all": hit / max(faces, 1),
        "required_faces": required,
        "required_found": hit_required,
        "recall_required": hit_required / max(required, 1),
        "false_positives": len(fps),
        "duplicates": duplicates,
        "loose": loose,
        "missed_required": missed,
        "missed_optional": optional_missed,
        "false_positive_list": fps,
        "per_photo": per_photo,
    }


def score_frames(keypoints: np.ndarray, found: Sequence[Boxes]) -> dict[str, Any]:
    """Recall (a box contains the keypoints' centroid), extra boxes per frame, the share of
    frames with any extra box."""
    from facemark.evaluate import match_detection

    hits = extra = with_extra = 0
    for kps, (boxes, scores) in zip(keypoints, found, strict=True):
        hit = match_detection(boxes, scores, kps) is not None
        more = len(boxes) - hit
        hits += hit
        extra += more
        with_extra += more > 0
    n = max(len(found), 1)
    return {
        "frames": len(found),
        "found": hits,
        "recall": hits / n,
        "extra_per_frame": extra / n,
        "frames_with_extra": with_extra / n,
    }


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


def resized_to(image: Image.Image, megapixels: float) -> Image.Image:
    """``image`` scaled (Lanczos, aspect kept) to about ``megapixels``."""
    scale = (megapixels * 1e6 / (image.width * image.height)) ** 0.5
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


# --------------------------------------------------------------------------- OpenCV / skimage


def _haar_cascade(threads: int) -> Any:
    import cv2

    if not hasattr(cv2, "CascadeClassifier"):  # OpenCV 5 moved it out of the main package
        raise RuntimeError(
            f"OpenCV {cv2.__version__} has no Haar cascade (pip install 'opencv-python-headless<5')"
        )
    cv2.setNumThreads(int(threads))
    return cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def _haar_detect(cascade: Any, image: np.ndarray, min_face: float) -> Boxes:
    """Haar (scaleFactor 1.1, minNeighbors 5) on the full-resolution grayscale image."""
    import cv2

    side = max(1, int(round(min_face)))
    gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(side, side))
    boxes = np.asarray(found, dtype=np.float32).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]  # x, y, w, h -> x0, y0, x1, y1
    return boxes, np.ones(len(boxes), np.float32)


def haar_job(request: dict[str, Any], images: dict[str, np.ndarray]) -> dict[str, Any]:
    """Haar boxes for ``request["detect"]`` keys and median ms for ``request["time"]`` keys."""
    import cv2

    cascade = _haar_cascade(int(request.get("threads", 2)))
    min_face = float(request.get("min_face", 10.0))
    out: dict[str, Any] = {"opencv": cv2.__version__, "boxes": {}, "ms": {}}
    for key in request.get("detect", []):
        out["boxes"][key] = _haar_detect(cascade, images[key], min_face)[0].tolist()
    repeats = int(request.get("repeats", 5))
    for key in request.get("time", []):
        _haar_detect(cascade, images[key], min_face)  # warm-up
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            _haar_detect(cascade, images[key], min_face)
            runs.append(1000 * (time.perf_counter() - t))
        out["ms"][key] = {"median": statistics.median(runs), "runs": runs}
    return out


def worker(request_path: Path) -> int:
    """``--worker REQUEST``: the helper venv's side (numpy, Pillow, OpenCV, scikit-image only).

    ``{"op": "haar", "arrays": NPZ, "detect": [keys], "time": [keys], "repeats", "threads",
    "min_face", "output": JSON}`` or ``{"op": "face_free", "npz": OUT, "output": JSON}``.
    """
    request = json.loads(Path(request_path).read_text())
    if request["op"] == "haar":
        with np.load(request["arrays"]) as npz:
            keys = set(request.get("detect", [])) | set(request.get("time", []))
            images = {k: npz[k] for k in keys}
        answer = haar_job(request, images)
    elif request["op"] == "face_free":
        import skimage

        images, note = load_face_free()
        np.savez(request["npz"], **images)
        answer = {"names": list(images), "note": note, "scikit_image": skimage.__version__}
    elif request["op"] == "versions":
        answer = {}
        for mod in ("cv2", "skimage"):
            try:
                answer[mod] = __import__(mod).__version__
            except ImportError:
                answer[mod] = None
    else:
        raise SystemExit(f"unknown op {request['op']!r}")
    Path(request["output"]).write_text(json.dumps(answer))
    return 0


class Helper:
    """Runs :func:`worker` jobs in process when the modules import here, else in the helper
    venv by subprocess."""

    def __init__(self, python: Path | None) -> None:
        self.python = python
        self.local = {mod: _importable(mod) for mod in ("cv2", "skimage")}
        self.remote: dict[str, str | None] = {}
        if python is not None and not all(self.local.values()) and Path(python).exists():
            try:
                self.remote = self._call({"op": "versions"}, {})
            except RuntimeError:
                self.remote = {}

    def has(self, mod: str) -> bool:
        return self.local[mod] or bool(self.remote.get(mod))

    def where(self, mod: str) -> str:
        return "in process" if self.local[mod] else f"via {self.python}"

    def _call(self, request: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="facemark-bench-") as tmp:
            if arrays:
                request["arrays"] = os.path.join(tmp, "arrays.npz")
                np.savez(request["arrays"], **arrays)
            request["output"] = os.path.join(tmp, "answer.json")
            if request["op"] == "face_free":
                request["npz"] = os.path.join(tmp, "face_free.npz")
            req = os.path.join(tmp, "request.json")
            Path(req).write_text(json.dumps(request))
            proc = subprocess.run(
                [str(self.python), str(Path(__file__).resolve()), "--worker", req],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr)
                raise RuntimeError(f"helper {self.python} failed (exit {proc.returncode})")
            answer = json.loads(Path(request["output"]).read_text())
            if request["op"] == "face_free":
                with np.load(request["npz"]) as npz:
                    answer["images"] = {k: npz[k] for k in answer["names"]}
            return answer

    def haar(
        self,
        images: dict[str, np.ndarray],
        detect: Sequence[str],
        timed: Sequence[str] = (),
        repeats: int = 5,
        threads: int = 2,
        min_face: float = 10.0,
    ) -> dict[str, Any]:
        request = {
            "op": "haar",
            "detect": list(detect),
            "time": list(timed),
            "repeats": repeats,
            "threads": threads,
            "min_face": min_face,
        }
        if self.local["cv2"]:
            return haar_job(request, images)
        wanted = set(detect) | set(timed)
        return self._call(request, {k: v for k, v in images.items() if k in wanted})

    def face_free(self) -> tuple[dict[str, np.ndarray], str | None, str | None]:
        """(images, note, scikit-image version)."""
        if self.local["skimage"]:
            import skimage

            images, note = load_face_free()
            return images, note, skimage.__version__
        if not self.remote.get("skimage"):
            return {}, "scikit-image not installed here nor in --helper-python", None
        answer = self._call({"op": "face_free"}, {})
        return answer["images"], answer["note"], answer["scikit_image"]


def _importable(mod: str) -> bool:
    try:
        __import__(mod)
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- detectors


class Runner:
    """One detector row: detections for named images, and median ms per ``detect``."""

    key = ""
    label = ""

    def detect(self, images: dict[str, Any]) -> dict[str, Boxes]:
        """Boxes per image; values are RGB arrays, or photo paths (decoded as annotate does)."""
        raise NotImplementedError

    def time(self, images: dict[str, np.ndarray], repeats: int) -> dict[str, dict[str, Any]]:
        raise NotImplementedError


class OursRunner(Runner):
    """facemark's detectors through :class:`facemark.FaceMarker` (the annotate path)."""

    def __init__(
        self, key: str, spec: str, config: Any, landmark_model: Any, checked: bool = False
    ) -> None:
        """``landmark_model``: a spec, or a loaded ``Landmarker`` (one shared by every row);
        ``checked``: report the faces annotate keeps (``FaceMarker.mark``), not raw boxes."""
        from facemark.hub import load_detector
        from facemark.pipeline import FaceMarker

        self.key, self.spec, self.checked = key, spec, checked
        self.detector = load_detector(spec, "cpu", config)
        self.marker = FaceMarker(detector=self.detector, model=landmark_model)
        base = key.split("@")[0]
        self.label = LABELS.get(base, spec) + (
            f" (det_size {config.det_size})" if config.det_size else ""
        )
        self.version = self.detector.version

    def detect(self, images: dict[str, Any]) -> dict[str, Boxes]:
        """Paths are opened by the pipeline's own ``as_photo`` (as ``FaceMarker(path)`` and
        annotate do: decoded in full, reduced for the detector), arrays wrapped as they are."""
        from facemark.pipeline import as_photo

        out = {}
        for name, im in images.items():
            if self.checked:  # as annotate: FaceMarker opens paths itself
                faces = self.marker.mark([im])[0][0]
                boxes = np.array([f.box for f in faces], np.float64).reshape(-1, 4)
                out[name] = (boxes, np.array([f.score for f in faces], np.float64))
                continue
            d = self.marker.detect([as_photo(im)])[0]
            out[name] = (np.asarray(d.boxes, np.float64), np.asarray(d.scores, np.float64))
        return out

    def time(self, images: dict[str, np.ndarray], repeats: int) -> dict[str, dict[str, Any]]:
        from benchmarks.bench_timing import median_pass

        out = {}
        for name, im in images.items():
            self.detector.detect(im)  # warm-up
            n = repeats_for(im.shape[0] * im.shape[1], repeats)
            out[name] = median_pass(lambda im=im: self.detector.detect(im), n, 1)
        return out

    def pipeline(self, path: Path, repeats: int) -> dict[str, Any]:
        from benchmarks.bench_timing import median_pass

        faces = self.marker(path)  # warm-up, and what it finds
        with Image.open(path) as im:
            n = repeats_for(im.width * im.height, repeats)
        t = median_pass(lambda: self.marker(path), n, 1)
        boxes = np.array([f.box for f in faces], np.float64).reshape(-1, 4)
        return {"ms": t["median"], "runs": t["runs"], "faces": len(faces), "boxes": boxes}


class HaarRunner(Runner):
    key, label = "haar", LABELS["haar"]

    def __init__(self, helper: Helper, threads: int, min_face: float) -> None:
        self.helper, self.threads, self.min_face = helper, threads, min_face

    def detect(self, images: dict[str, Any]) -> dict[str, Boxes]:
        arrays = {k: _full_pixels(v) for k, v in images.items()}
        answer = self.helper.haar(
            arrays, list(arrays), threads=self.threads, min_face=self.min_face
        )
        self.version = answer["opencv"]
        return {
            k: (np.asarray(b, np.float64).reshape(-1, 4), np.ones(len(b)))
            for k, b in answer["boxes"].items()
        }

    def time(self, images: dict[str, np.ndarray], repeats: int) -> dict[str, dict[str, Any]]:
        out = {}
        for name, im in images.items():  # one call per image: each has its own repeats
            n = repeats_for(im.shape[0] * im.shape[1], repeats)
            answer = self.helper.haar(
                {name: im}, [], [name], n, threads=self.threads, min_face=self.min_face
            )
            out[name] = answer["ms"][name]
        return out


class DlibRunner(Runner):
    """dlib's HOG detector (upsample 1) in its own venv, via ``dlib_runner.run``."""

    key, label = "dlib_hog", LABELS["dlib_hog"]

    def __init__(self, python: Path, versions: dict[str, str]) -> None:
        self.python, self.versions = python, versions
        self.version = versions.get("dlib", "")

    def detect(self, images: dict[str, Any]) -> dict[str, Boxes]:
        from benchmarks import dlib_runner

        names = list(images)
        answer = dlib_runner.run(
            self.python, [_full_pixels(images[n]) for n in names], detect=True, upsample=1
        )
        out = {}
        for name, rec in zip(names, answer["images"], strict=True):
            dets = rec.get("detections", [])
            out[name] = (
                np.asarray([d["box"] for d in dets], np.float64).reshape(-1, 4),
                np.asarray([d["score"] for d in dets], np.float64),
            )
        return out

    def _timing(self, path: Path, repeats: int) -> dict[str, Any]:
        from benchmarks import dlib_runner

        with Image.open(path) as im:
            n = repeats_for(im.width * im.height, repeats)
        return dlib_runner.run(
            self.python, [], detect=False, timing_paths=[str(path)], repeats=n, upsample=1
        )["timing"]

    def time_files(self, paths: dict[str, Path], repeats: int) -> dict[str, dict[str, Any]]:
        out = {}
        for name, path in paths.items():
            t = self._timing(path, repeats)
            out[name] = {"median": t["detect_ms_per_image"], "runs": t["detect_ms_per_image_runs"]}
        return out

    def pipeline(self, path: Path, repeats: int) -> dict[str, Any]:
        t = self._timing(path, repeats)
        return {
            "ms": t["pipeline_ms_per_image"],
            "runs": t["pipeline_ms_per_image_runs"],
            "faces": t["faces"],
            "detect_ms": t["detect_ms_per_image"],
            "landmarks_ms_per_face": t.get("landmarks_ms_per_face"),
        }


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _full_pixels(image: Any) -> np.ndarray:
    """Full-size RGB pixels of an array or a photo path (facemark's decoder)."""
    if isinstance(image, Path):
        from facemark.images import load_image

        return load_image(image)
    return np.asarray(image)


# --------------------------------------------------------------------------- overlays

COLOURS = {
    "required": (0, 200, 0),
    "optional": (255, 210, 0),
    "missed": (255, 0, 0),
    "match": (0, 160, 255),
    "duplicate": (255, 140, 0),
    "loose": (160, 80, 0),
    "fp": (255, 0, 255),
}


def draw_overlay(
    image: np.ndarray,
    faces: list[dict[str, Any]],
    boxes: np.ndarray,
    kinds: list[str],
    face_found: list[bool],
    title: str,
    out: Path,
    max_side: int = 1600,
) -> None:
    """True boxes thin (green required, yellow optional, red missed required), detections
    thick (blue matched, orange duplicate, brown loose, magenta false positive)."""
    im = Image.fromarray(image)
    scale = min(1.0, max_side / max(im.size))
    if scale < 1:
        im = im.resize(
            (round(im.width * scale), round(im.height * scale)), Image.Resampling.BILINEAR
        )
    draw = ImageDraw.Draw(im)
    lw = max(2, round(max(im.size) / 500))
    for face, hit in zip(faces, face_found, strict=True):
        req = is_required(face)
        colour = COLOURS["required" if req else "optional"]
        if req and not hit:
            colour = COLOURS["missed"]
        draw.rectangle([v * scale for v in face["box"]], outline=colour, width=lw)
    for box, kind in zip(boxes, kinds, strict=True):
        b = [float(v) * scale for v in box]
        draw.rectangle(b, outline=COLOURS[kind], width=2 * lw)
        if kind != "match":
            draw.text((b[0] + 3, b[1] + 3), kind.upper(), fill=COLOURS[kind])
    legend = (
        f"{title} | true: green required, yellow optional, red MISSED | "
        "det: blue match, orange duplicate, brown loose, magenta FP"
    )
    draw.rectangle([0, 0, im.width, 14], fill=(0, 0, 0))
    draw.text((3, 1), legend, fill=(255, 255, 255))
    out.parent.mkdir(parents=True, exist_ok=True)
    im.save(out, quality=88)


# --------------------------------------------------------------------------- report


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _ms(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def markdown(results: dict[str, Any]) -> str:
    """docs/detector-benchmark.md from the results dict."""
    from benchmarks.report import table

    rows = results["detectors"]
    env = results["environment"]
    lines = [
        "# Face detector benchmark",
        "",
        f"Generated by `{results['command']}` on {results['date']}.",
        "",
        f"- Machine: {env['cpu']}, {env['cores']} cores visible ({env['platform']})",
        f"- Timing: torch threads {results['settings']['threads']} (OpenCV the same; dlib "
        f"single-threaded), median of {results['settings']['repeats']} repeats after a warm-up "
        f"({repeats_for(10**8, results['settings']['repeats'])} for images of "
        f"{BIG_MP:g} MP or more)",
        f"- Load average (1 min) at start / end: {env.get('load_start', '?')} / "
        f"{env.get('load_end', '?')} (the cores were shared with other jobs: read the "
        "timings as relative)",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v),
        f"- Detector settings: threshold {results['settings']['threshold']}, min face "
        f"{results['settings']['min_face']:g} px (facemark's `DetectorConfig`); Haar "
        "scaleFactor 1.1, minNeighbors 5; dlib HOG upsample 1, threshold 0",
        "",
    ]
    photos = results.get("photos")
    if photos:
        first = next((r["photos"] for r in rows.values() if r.get("photos")), None)
        lines += [
            f"## Real photos ({photos['photos']} photos, {first['faces'] if first else '?'} "
            f"faces, {first['required_faces'] if first else '?'} required)",
            "",
            "Required: eye distance >= 12 px and no note (noted faces: blurred, profile, tiny, "
            "partly outside, photo of a photo). A detection finds a true face when each box "
            "holds the other's centre (one detection per face). A false positive holds no true "
            "box's centre and has its centre in no true box (optional faces included); a "
            "duplicate is a second detection of a face already found; a loose box touches a "
            "face by one of the two rules only (much too big or displaced), neither found nor "
            "false. facemark's detectors decode through `Photo` like `facemark annotate`; "
            "dlib and Haar see the full-size pixels.",
            "",
        ]
        lines += table(
            ["detector", "recall, all faces", "recall, required", "false positives",
             "duplicates", "loose boxes"],
            [
                [r["label"], f"{_pct(p['recall_all'])} ({p['found']}/{p['faces']})",
                 f"{_pct(p['recall_required'])} ({p['required_found']}/{p['required_faces']})",
                 str(p["false_positives"]), str(p["duplicates"]), str(p.get("loose", 0))]
                for r in rows.values()
                if (p := r.get("photos"))
            ],
        )  # fmt: skip
        lines += ["", "Missed required faces and false positives:", ""]
        for key, r in rows.items():
            p = r.get("photos")
            if not p:
                continue
            missed = ", ".join(
                f"{m['photo']} ({m['eye_distance']:.0f} px eyes)" for m in p["missed_required"]
            )
            scored = key != "haar"  # the cascade gives no scores
            fps = ", ".join(
                f"{f['photo']}" + (f" ({f['score']:.2f})" if scored else "")
                for f in p["false_positive_list"]
            )
            lines.append(
                f"- **{r['label']}**: missed required: {missed or 'none'}; false positives"
                f"{' (score)' if scored else ''}: {fps or 'none'}"
            )
        if photos.get("overlays"):
            lines += ["", f"Overlays of the group photos: `{photos['overlays']}` (not committed)."]
        lines.append("")
    frames = results.get("frames")
    if frames:
        lines += [
            "## Dataset frames",
            "",
            "A face is found when a box contains the centroid of its 68 keypoints "
            "(`evaluate.match_detection`); extra = the other boxes.",
            "",
        ]
        body = []
        for r in rows.values():
            t, v = r.get("test"), r.get("val")
            if t or v:
                cells = [r["label"]]
                for s in (t, v):
                    cells += (
                        [_pct(s["recall"]), f"{s['extra_per_frame']:.3f}",
                         _pct(s["frames_with_extra"])]
                        if s else ["–"] * 3
                    )  # fmt: skip
                body.append(cells)
        header = ["detector", f"test recall ({frames['test']} frames)", "test extra/frame",
                  "test frames with extra", f"val recall ({frames['val']} frames)",
                  "val extra/frame", "val frames with extra"]  # fmt: skip
        lines += table(header, body) + [""]
    if any(r.get("archive") for r in rows.values()) or any(
        r.get("face_free") for r in rows.values()
    ):
        lines += [
            "## Archive photos and face-free photos",
            "",
        ]
        body = []
        for r in rows.values():
            a, f = r.get("archive") or {}, r.get("face_free")
            ff = "–" if not f else f"{f['fp_per_image']:.2f} ({f['images']} images)"
            where = (
                "–"
                if not f
                else ", ".join(f"{k} {v}" for k, v in f["by_image"].items() if v) or "none"
            )
            body.append(
                [r["label"], str(a.get("obamas.jpg", "–")), str(a.get("mona_lisa.jpg", "–")),
                 ff, where]
            )  # fmt: skip
        header = ["detector", "obamas.jpg (2)", "mona_lisa.jpg (1)",
                  "FP/image, face-free photos", "face-free photos with a detection"]  # fmt: skip
        lines += table(header, body) + [""]
    animals = results.get("animals")
    if animals:
        lines += [
            f"## Animal photos ({animals['photos']} photos, no people; "
            f"{animals['held_out']} held out from fitting the faceness head)",
            "",
            "Photos where a face is reported, out of all and out of the held-out part "
            "(whole sources held out: other breeds, species and photographers than the head "
            "was fitted on; benchmarks/animals.py). Every face here is a false one.",
            "",
        ]
        body = [
            [r["label"],
             f"{a['photos_with_face']} ({_pct(a['photos_with_face'] / animals['photos'])})",
             f"{a['held_out_with_face']} ({_pct(a['held_out_with_face'] / animals['held_out'])})",
             str(a["faces"])]
            for r in rows.values()
            if (a := r.get("animals"))
        ]  # fmt: skip
        header = ["detector", "photos with a face, all", "held out", "faces, all"]
        lines += table(header, body) + [""]
    speed = results.get("speed")
    if speed:
        heads = [f"{s['label']}" for s in speed["images"].values()]
        lines += [
            "## Speed",
            "",
            f"ms per `detect` call on a decoded RGB array (median); images: `{speed['source']}`"
            " resized with Pillow (Lanczos), the largest as it is.",
            "",
        ]
        body = [
            [r["label"]] + [_ms(s.get(k, {}).get("median")) for k in speed["images"]]
            for r in rows.values()
            if (s := r.get("speed"))
        ]
        lines += table(["detector"] + heads, body) + [""]
    pipe = results.get("pipeline")
    if pipe:
        lines += [
            "## Whole pipeline on a 12 MP JPEG",
            "",
            f"`{pipe['file']}`: ms from the file to 68 keypoints per face (decode, detect, "
            'landmarks; median). facemark: `FaceMarker(detector=..., model="default")(path)`, '
            "which decodes it in full and reduces it for detection; dlib: full decode, HOG, "
            "shape predictor per face.",
            "",
        ]
        body = []
        for r in rows.values():
            p = r.get("pipeline")
            if p:
                name = r["label"] + (" + 68-point predictor" if r["key"] == "dlib_hog" else "")
                if r["key"] != "dlib_hog":
                    name += " + facemark landmarks"
                body.append([name, _ms(p["ms"]), str(p["faces"]), str(p.get("found", "–"))])
        header = ["pipeline", "ms per photo", "faces returned",
                  f"labelled faces found (of {pipe['faces_labelled']})"]  # fmt: skip
        lines += table(header, body) + [""]
    if results.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in results["notes"]] + [""]
    return "\n".join(lines)


def environment(dlib_versions: dict[str, str] | None, helper: Helper | None) -> dict[str, Any]:
    from benchmarks import report

    versions = report.package_versions(("facemark", "torch", "numpy", "pillow"))
    if helper is not None:
        for mod, label in (("cv2", "opencv"), ("skimage", "scikit-image")):
            if helper.local[mod]:
                versions[label] = __import__(mod).__version__
            else:
                versions[label] = helper.remote.get(mod)
    if dlib_versions:
        versions["dlib"] = dlib_versions.get("dlib")
        versions["face_recognition_models"] = dlib_versions.get("face_recognition_models")
    return {
        "cpu": report.cpu_name(),
        "cores": report.cores_visible(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "versions": versions,
    }


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from facemark.detectors import DetectorConfig

    base = DetectorConfig()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="the real photos")
    ap.add_argument("--photos-json", type=Path, default=DEFAULT_PHOTOS_JSON, help="their faces")
    ap.add_argument(
        "--skip",
        default="",
        help=f"comma-separated detectors ({', '.join(OURS)}, dlib, haar) and parts "
        f"({', '.join(PARTS)}) to leave out",
    )
    ap.add_argument("--model", default="facemark", help="spec of the old facemark detector row")
    ap.add_argument("--animals", type=Path, default=DEFAULT_ANIMALS, help="animal photos")
    ap.add_argument(
        "--input-sizes", default="", help="comma-separated det_size values [each detector's own]"
    )
    ap.add_argument("--threshold", type=float, default=base.threshold)
    ap.add_argument("--min-face", type=float, default=base.min_face, help="smallest face, px")
    ap.add_argument("--landmark-model", default="default", help="FaceMarker's landmark model")
    ap.add_argument("--data-root", default=None, help="dataset folder [the installed one]")
    ap.add_argument("--zip", type=Path, default=SHARED_ZIP, help="archive with obamas.jpg")
    ap.add_argument("--threads", type=int, default=2, help="torch (and OpenCV) CPU threads")
    ap.add_argument("--repeats", type=int, default=5, help="timing repeats (median reported)")
    ap.add_argument("--speed-photo", default="img49.jpg", help="photo the speed images come from")
    ap.add_argument(
        "--pipeline-photo",
        default="insightface_t1.jpg",
        help="group photo scaled to 12 MP for the pipeline timing",
    )
    ap.add_argument(
        "--dlib-python",
        type=Path,
        default=Path(os.environ.get("FACEMARK_DLIB_PYTHON", "/tmp/dlib-venv/bin/python")),
    )
    ap.add_argument(
        "--helper-python",
        type=Path,
        default=DEFAULT_HELPER,
        help="python with OpenCV / scikit-image when they are not importable here",
    )
    ap.add_argument("--overlays", type=Path, default=DEFAULT_OVERLAYS)
    ap.add_argument("--no-haar", action="store_true", help="same as --skip haar")
    ap.add_argument("--out-json", "--json", dest="out_json", type=Path, default=DEFAULT_JSON)
    ap.add_argument("--out-md", type=Path, default=DEFAULT_MD)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else list(argv)
    if args_list[:1] == ["--worker"]:
        return worker(Path(args_list[1]))
    args = parse_args(args_list)
    started = time.perf_counter()

    from benchmarks import report

    load_start = report.load_average()

    import torch

    from facemark import hub
    from facemark.data import load_split
    from facemark.detectors import DetectorConfig

    torch.set_num_threads(args.threads)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.no_haar:
        skip.add("haar")
    notes: list[str] = []

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f}s] {msg}", file=sys.stderr, flush=True)

    # --- detectors
    runners: list[Runner] = []
    sizes = [int(s) for s in args.input_sizes.split(",") if s.strip()] or [None]
    ours = [key for key in OURS if key not in skip]
    # the landmark model is loaded once and shared by every facemark row
    landmarker = hub.load_model(args.landmark_model, "cpu") if ours else None
    for key in ours:
        spec = {"facemark": args.model, "annotate": "yunet_n"}.get(key, key)
        for size in sizes:
            config = DetectorConfig(threshold=args.threshold, min_face=args.min_face, det_size=size)
            runners.append(OursRunner(key if size is None else f"{key}@{size}", spec, config,
                                      landmarker, checked=key == "annotate"))  # fmt: skip
    dlib_versions = None
    if not ({"dlib", "dlib_hog"} & skip):
        from benchmarks import dlib_runner

        try:
            dlib_versions = dlib_runner.probe(args.dlib_python)
            runners.append(DlibRunner(args.dlib_python, dlib_versions))
        except dlib_runner.DlibUnavailable as exc:
            notes.append(f"dlib skipped: {exc}")
    helper = Helper(args.helper_python)
    if "haar" not in skip:
        if helper.has("cv2"):
            runners.append(HaarRunner(helper, args.threads, args.min_face))
        else:
            notes.append("OpenCV Haar skipped: cv2 not importable here nor in --helper-python")
    rows: dict[str, dict[str, Any]] = {
        r.key: {"key": r.key, "label": r.label, "version": getattr(r, "version", "")}
        for r in runners
    }

    results: dict[str, Any] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_detector.py " + " ".join(args_list),
        "settings": {
            "threshold": args.threshold,
            "min_face": args.min_face,
            "threads": args.threads,
            "repeats": args.repeats,
            "required_eye_distance": REQUIRED_EYE_DISTANCE,
        },
        "detectors": rows,
        "notes": notes,
    }

    # --- 1. real photos
    truth = load_ground_truth(args.photos_json)
    photo_paths = {n: args.photos / n for n in truth if (args.photos / n).is_file()}
    if "photos" not in skip:
        if len(photo_paths) < len(truth):
            notes.append(
                f"{len(truth) - len(photo_paths)} photos of photos.json not in {args.photos}"
            )
        groups = sorted(n for n in photo_paths if len(truth[n]) >= GROUP_FACES)
        overlay_pixels = (
            {} if "overlays" in skip else {n: _full_pixels(photo_paths[n]) for n in groups}
        )
        results["photos"] = {
            "dir": str(args.photos),
            "photos": len(photo_paths),
            "group_photos": groups,
            "overlays": None if "overlays" in skip else _shown(args.overlays),
        }
        for r in runners:
            log(f"photos: {r.key}")
            found = r.detect(dict(photo_paths))
            rows[r.key]["photos"] = score_photos(truth, found)
            for name in overlay_pixels:
                pp = rows[r.key]["photos"]["per_photo"][name]
                draw_overlay(
                    overlay_pixels[name],
                    truth[name],
                    found[name][0],
                    pp["kinds"],
                    pp["face_found"],
                    f"{r.label}: {name}",
                    args.overlays / r.key / name,
                )
        overlay_pixels.clear()

    # --- 2. dataset frames
    if "frames" not in skip:
        splits = {
            "test": load_split("test", root=args.data_root),
            "val": load_split("val", root=args.data_root),
        }
        results["frames"] = {k: len(v) for k, v in splits.items()}
        for r in runners:
            log(f"frames: {r.key}")
            for split, faces in splits.items():
                images = {str(i): im for i, im in enumerate(faces.images)}
                found = r.detect(images)
                rows[r.key][split] = score_frames(
                    faces.keypoints, [found[str(i)] for i in range(len(faces))]
                )

    # --- archive photos and face-free photos
    if "archive" not in skip:
        archive = load_photos(args.zip, args.photos)
        if len(archive) < len(PHOTOS):
            notes.append("obamas.jpg / mona_lisa.jpg not found (give --zip)")
        if archive:
            for r in runners:
                found = r.detect(dict(archive))
                rows[r.key]["archive"] = {k: int(len(v[0])) for k, v in found.items()}
    if "face_free" not in skip:
        negatives, neg_note, sk_version = helper.face_free()
        if neg_note:
            notes.append(f"face-free photos: {neg_note}")
        if negatives:
            results["face_free"] = {"images": list(negatives), "scikit_image": sk_version}
            for r in runners:
                log(f"face-free: {r.key}")
                found = r.detect(dict(negatives))
                by_image = {k: int(len(v[0])) for k, v in found.items()}
                rows[r.key]["face_free"] = {
                    "images": len(by_image),
                    "fp_per_image": sum(by_image.values()) / len(by_image),
                    "by_image": by_image,
                }

    # --- animal photos: how many get a "face"
    if "animals" not in skip and (args.animals / "manifest.tsv").is_file():
        from benchmarks.animals import split_animals

        held_out = {p.name for p in split_animals(args.animals)[1]}
        animal_paths = {p.name: p for p in sorted(args.animals.glob("*.jpg"))}
        results["animals"] = {
            "dir": _shown(args.animals),
            "photos": len(animal_paths),
            "held_out": len(held_out),
        }
        for r in runners:
            log(f"animals: {r.key}")
            found = r.detect(dict(animal_paths))
            with_face = sorted(k for k, v in found.items() if len(v[0]))
            rows[r.key]["animals"] = {
                "photos_with_face": len(with_face),
                "held_out_with_face": sum(k in held_out for k in with_face),
                "faces": int(sum(len(v[0]) for v in found.values())),
                "held_out_photos": sorted(k for k in with_face if k in held_out),
            }
    elif "animals" not in skip:
        notes.append(f"animals skipped: no manifest.tsv in {args.animals}")

    # --- 4. speed
    with tempfile.TemporaryDirectory(prefix="facemark-bench-speed-") as tmp:
        if "speed" not in skip and (args.photos / args.speed_photo).is_file():
            src_path = args.photos / args.speed_photo
            from facemark.images import load_image

            src = Image.fromarray(load_image(src_path))
            images: dict[str, np.ndarray] = {}
            files: dict[str, Path] = {}
            info: dict[str, dict[str, Any]] = {}
            for mp in SPEED_MP:
                im = src if mp == SPEED_MP[-1] else resized_to(src, mp)
                key = f"{mp:g}MP"
                images[key] = np.asarray(im)
                files[key] = src_path if im is src else Path(tmp) / f"speed_{key}.png"
                if im is not src:
                    im.save(files[key])  # lossless: dlib decodes the same pixels
                info[key] = {
                    "label": f"{im.width}x{im.height} ({im.width * im.height / 1e6:.1f} MP)",
                    "width": im.width,
                    "height": im.height,
                }
            results["speed"] = {"source": src_path.name, "images": info}
            for r in runners:
                log(f"speed: {r.key}")
                if isinstance(r, DlibRunner):
                    rows[r.key]["speed"] = r.time_files(files, args.repeats)
                else:
                    rows[r.key]["speed"] = r.time(images, args.repeats)
        elif "speed" not in skip:
            notes.append(f"speed skipped: {args.speed_photo} not in {args.photos}")

        if "pipeline" not in skip and (args.photos / args.pipeline_photo).is_file():
            with Image.open(args.photos / args.pipeline_photo) as im:
                oriented = ImageOps.exif_transpose(im).convert("RGB")
                source_width = oriented.width
                big = resized_to(oriented, PIPELINE_MP)
            path = Path(tmp) / f"pipeline_{Path(args.pipeline_photo).stem}_12MP.jpg"
            big.save(path, quality=92)
            results["pipeline"] = {
                "file": f"{args.pipeline_photo} scaled to {big.width}x{big.height} "
                f"({big.width * big.height / 1e6:.1f} MP), JPEG quality 92",
                "source": args.pipeline_photo,
                "faces_labelled": len(truth.get(args.pipeline_photo, [])),
            }
            for r in runners:
                if isinstance(r, (OursRunner, DlibRunner)):
                    log(f"pipeline: {r.key}")
                    pipe = r.pipeline(path, args.repeats)
                    boxes = pipe.pop("boxes", None)
                    if boxes is None:  # dlib's timing gives no boxes: one more detection
                        boxes = r.detect({"big": path})["big"][0]
                    gt = truth.get(args.pipeline_photo, [])
                    scale = big.width / max(1, source_width)
                    face_det, _ = match_photo(np.array([f["box"] for f in gt]) * scale, boxes)
                    pipe["found"] = sum(d is not None for d in face_det)
                    rows[r.key]["pipeline"] = pipe
        elif "pipeline" not in skip:
            notes.append(f"pipeline skipped: {args.pipeline_photo} not in {args.photos}")

    results["environment"] = environment(dlib_versions, helper)
    results["environment"].update(load_start=load_start, load_end=report.load_average())
    if "haar" in rows:
        notes.append(f"OpenCV Haar ran {helper.where('cv2')}")
    if results.get("face_free"):
        notes.append(f"scikit-image samples loaded {helper.where('skimage')}")
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    from benchmarks import report

    report.write_outputs(results, args.out_json, args.out_md, markdown, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
