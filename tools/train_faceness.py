"""Fit the faceness head ("human face or not", facemark.faceness) of a landmark model.

Positives are human faces as the pipeline hands them on: YuNet's own detections that hold a
labelled face, and the labelled face box itself, on the Udacity training frames and the
training part of wild68-train (split by photo as `train --val-by photo` splits it).
Negatives are what YuNet fires on in animal photos (at a lower threshold than the
pipeline's, so near misses teach too) plus random boxes of fur and background from the same
photos.  The animal photos are split by where they come from (the source repository, and
the species folder for the monkey set), never photo by photo, so the validation animals are
other breeds, species and photographers than the training ones.

The network is frozen: each crop goes through it once, and five small MLPs are fitted on
its pooled features (``HeatmapNet.forward_features``, ``facemark.faceness.fit_head``).  Both
classes are varied alike (cut by the border, partly covered by fur or background, darkened),
so none of these says "animal".  The threshold is the lowest on a 0.05 grid that leaves at
most 3 % of the validation animal photos with a face (``choose_threshold``).  The model is
written to --out with the head inside; the figures go to --report.

    python tools/train_faceness.py --model default --out src/facemark/weights/landmarks.pt \
        --wild ../shared/data/wild68-train --animals ../shared/data/nonhuman \
        --report benchmarks/results/faceness.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from benchmarks.animals import split_animals  # noqa: E402

from facemark import checkpoint, hub, transforms  # noqa: E402
from facemark.data import load_faces, load_split, split_faces  # noqa: E402
from facemark.detectors import DetectorConfig  # noqa: E402
from facemark.evaluate import match_detection  # noqa: E402
from facemark.faceness import fit_head  # noqa: E402
from facemark.hub import load_detector  # noqa: E402
from facemark.images import load_image  # noqa: E402

#: YuNet's threshold when mining: below the pipeline's 0.5, so near misses are negatives too.
MINE_THRESHOLD = 0.3
#: The pipeline's detector threshold: validation sees what annotate sees.
PIPELINE_THRESHOLD = DetectorConfig().threshold
#: Augmentation of both classes: box errors like the detector's, and strong blur and low
#: resolution (blurred background faces in group photos are faces; blur alone must not
#: say "not a face", so the animals get it too).
AUG = transforms.AugmentConfig(
    box_shift=0.1,
    box_scale=0.15,
    rotation=25.0,
    scale=(0.9, 1.1),
    translate=0.04,
    p_occlude=0.15,
    p_blur=0.4,
    blur_sigma=(0.5, 4.0),
    p_lowres=0.4,
    lowres_factor=(0.12, 0.6),
    fit_margin=-1.0,
)


#: At most this share of the validation animal photos may still show a face (the issue's
#: bound; dlib's HOG detector fires on 3.1 % of the 516).
ANIMAL_BOUND = 0.03


def choose_threshold(lowest_human: float, animal_share: Callable[[float], float]) -> float:
    """The lowest threshold on a 0.05 grid (0.05-0.9) at which at most ``ANIMAL_BOUND`` of
    the validation animal photos still show a face, and never above the lowest validation
    human face.  Losing a person's face costs more than keeping a pet's, so the threshold
    rises only as far as the animals require: the highest threshold that keeps every
    validation face sat at the grid's top once the head's scores saturated near 1, and then
    dropped faces the validation set happens not to hold (a blurred, hatted test frame)."""
    grid = [t / 100 for t in range(5, 95, 5)]
    cap = max((t for t in grid if t <= lowest_human), default=round(lowest_human, 3))
    return next((t for t in grid if t <= cap and animal_share(t) <= ANIMAL_BOUND), cap)


def crops_of(image: np.ndarray, boxes: np.ndarray, size: int, n_aug: int, rng) -> list:
    """``n_aug`` augmented crops per box (0: the plain inference crop)."""
    out = []
    for box in boxes:
        if n_aug == 0:
            out.append(transforms.crop_face(image, box, size)[0])
            continue
        for _ in range(n_aug):
            M, _ = transforms.random_geometry(box, size, AUG, rng)
            out.append(transforms.photometric(transforms.warp_image(image, M, size), AUG, rng))
    return out


def _copies(crops: np.ndarray, rng, share: float) -> np.ndarray:
    pick = rng.choice(len(crops), size=int(share * len(crops)), replace=False)
    return crops[pick].copy()


def cut_by_border(crops: np.ndarray, rng, share: float = 0.5) -> np.ndarray:
    """Copies of a random ``share`` of ``crops`` with one side blacked out (15-45 % of the
    crop), as the crop of a face cut by the photo's border is padded.  Added to both classes:
    without them the padding itself said "not a face" (random boxes and detections at the
    border of animal photos have it, human training crops rarely do)."""
    out = _copies(crops, rng, share)
    size = out.shape[1]
    for crop in out:
        band = int(rng.uniform(0.15, 0.45) * size)
        side = rng.integers(4)
        if side == 0:
            crop[:, :band] = 0
        elif side == 1:
            crop[:, -band:] = 0
        elif side == 2:
            crop[:band] = 0
        else:
            crop[-band:] = 0
    return out


def cover(crops: np.ndarray, texture: np.ndarray, rng, share: float = 0.5) -> np.ndarray:
    """Copies with part of the crop replaced by the same part of a random ``texture`` crop
    (fur, feathers, background): a band over the top with a wavy edge (hats, headdresses,
    hair), a band at one side, or an ellipse anywhere (hands, objects).  Added to both
    classes, so covering says nothing; the human copies teach that a face under a feathered
    hat is still a face (a Udacity test frame scored 0.17 before)."""
    out = _copies(crops, rng, share)
    n = out.shape[1]
    yy, xx = np.mgrid[0:n, 0:n]
    for crop in out:
        kind = rng.integers(3)
        if kind == 0:
            edge = rng.uniform(0.15, 0.42) * n + rng.uniform(0.02, 0.08) * n * np.sin(
                xx / n * rng.uniform(2, 9) + rng.uniform(0, 6)
            )
            mask = yy < edge
        elif kind == 1:
            width = rng.uniform(0.12, 0.35) * n
            mask = xx < width if rng.random() < 0.5 else xx > n - width
        else:
            cy, cx = rng.uniform(0.2, 0.95) * n, rng.uniform(0.1, 0.9) * n
            ry, rx = rng.uniform(0.1, 0.3, 2) * n
            mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
        crop[mask] = texture[rng.integers(len(texture))][mask]
    return out


def darken(crops: np.ndarray, rng, share: float = 0.5) -> np.ndarray:
    """Copies darker (x0.25-0.65, gamma 1-1.6) and warmer (green x0.8-0.95, blue x0.6-0.9):
    dim light and darker skin, which the human training faces (Udacity, HELEN, AFW) hold few
    of while the animal negatives hold many dark-furred primates.  Both classes, so
    darkness alone says nothing."""
    out = _copies(crops, rng, share).astype(np.float32) / 255
    k = len(out)
    gain = np.stack([np.ones(k), rng.uniform(0.8, 0.95, k), rng.uniform(0.6, 0.9, k)], 1)
    out = out ** rng.uniform(1.0, 1.6, (k, 1, 1, 1)) * rng.uniform(0.25, 0.65, (k, 1, 1, 1))
    return np.clip(255 * out * gain[:, None, None, :], 0, 255).astype(np.uint8)


def varied(crops: np.ndarray, texture: np.ndarray, rng) -> np.ndarray:
    """``crops`` and half as many again of each variation (cut, covered, dark)."""
    return np.concatenate(
        [crops, cut_by_border(crops, rng), cover(crops, texture, rng), darken(crops, rng)]
    )


def human_boxes(detector, faces) -> list[np.ndarray | None]:
    """Per labelled face: the detection that holds it (as evaluate matches), or None."""
    boxes: list[np.ndarray | None] = []
    for image, kps in zip(faces.images, faces.keypoints, strict=True):
        det = detector.detect(image)
        k = match_detection(det.boxes, det.scores, kps)
        boxes.append(det.boxes[k] if k is not None else None)
    return boxes


def random_boxes(image: np.ndarray, n: int, rng) -> np.ndarray:
    h, w = image.shape[:2]
    out = []
    for _ in range(n):
        side = rng.uniform(0.15, 0.6) * min(h, w)
        x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
        out.append([x0, y0 - 0.1 * side, x0 + side * rng.uniform(0.8, 1.0), y0 + side])
    return np.asarray(out, np.float32).reshape(-1, 4)


def mine(wild: Path, animals: Path, size: int, seed: int, rng) -> dict[str, np.ndarray]:
    """Every crop the fit and the validation need, at the landmark model's input ``size``:
    training crops (``human``, ``other``, augmented) and validation crops as annotate sees
    them (``udacity_val``, ``wild_val``, ``animal_val`` with the photo of each crop)."""
    miner = load_detector("yunet", "cpu", DetectorConfig(threshold=MINE_THRESHOLD))
    judge = load_detector("yunet", "cpu", DetectorConfig(threshold=PIPELINE_THRESHOLD))
    udacity = {s: load_split(s, progress=True) for s in ("train", "val")}
    wild_train, wild_val = split_faces(load_faces(wild, progress=True), 0.1, 0, val_by="photo")
    animals_train, animals_val = split_animals(animals, seed)
    pos: list[np.ndarray] = []
    for faces, n_aug in ((udacity["train"], 1), (wild_train, 3)):
        for image, kps, box in zip(
            faces.images, faces.keypoints, human_boxes(miner, faces), strict=True
        ):
            pos += crops_of(image, transforms.face_box_from_keypoints(kps)[None], size, n_aug, rng)
            if box is not None:
                pos += crops_of(image, box[None], size, n_aug, rng)
    neg: list[np.ndarray] = []
    for path in animals_train:
        image = load_image(path)
        neg += crops_of(image, miner.detect(image).boxes, size, 6, rng)
        neg += crops_of(image, random_boxes(image, 3, rng), size, 2, rng)
    out = {"human": np.stack(pos), "other": np.stack(neg)}
    for name, faces in (("udacity_val", udacity["val"]), ("wild_val", wild_val)):
        out[name] = np.stack(
            [
                crops_of(image, box[None], size, 0, rng)[0]
                for image, box in zip(faces.images, human_boxes(judge, faces), strict=True)
                if box is not None
            ]
        )
    animal, owner = [], []
    for k, path in enumerate(animals_val):
        image = load_image(path)
        found = crops_of(image, judge.detect(image).boxes, size, 0, rng)
        animal += found
        owner += [k] * len(found)
    out["animal_val"] = np.stack(animal) if animal else np.zeros((0, size, size, 3), np.uint8)
    out["animal_val_photo"] = np.asarray(owner, np.int64)
    out["animal_val_photos"] = np.asarray(len(animals_val))
    out["animal_train_photos"] = np.asarray(len(animals_train))
    return out


@torch.inference_mode()
def features(landmarker, crops: np.ndarray) -> np.ndarray:
    net = landmarker.model
    out = []
    for i in range(0, len(crops), 128):
        x = transforms.to_tensor(np.asarray(crops[i : i + 128]))
        out.append(net.forward_features(x.contiguous(memory_format=landmarker.memory_format))[1])
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="landmark model (heatmap arch)")
    parser.add_argument("--out", required=True, help="checkpoint to write (model + head)")
    parser.add_argument("--wild", required=True, help="wild68-train folder")
    parser.add_argument("--animals", required=True, help="nonhuman folder (with manifest.tsv)")
    parser.add_argument("--report", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--cache", default=None, help="npz keeping the mined crops (re-runs)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    source = hub.resolve_model(args.model)
    landmarker = hub.load_model(str(source), "cpu")
    if not hasattr(landmarker.model, "forward_features"):
        sys.exit(f"{args.model}: a faceness head needs a heatmap landmark model")
    size = landmarker.img_size

    cache = Path(args.cache) if args.cache else None
    if cache is not None and cache.is_file():
        crops = dict(np.load(cache))
    else:
        crops = mine(Path(args.wild), Path(args.animals), size, args.seed, rng)
        if cache is not None:
            np.savez(cache, **crops)
    print(f"{len(crops['human'])} human and {len(crops['other'])} other crops "
          f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)  # fmt: skip
    human_crops, other_crops = (varied(crops[k], crops["other"], rng) for k in ("human", "other"))
    head = fit_head(features(landmarker, human_crops), features(landmarker, other_crops))
    human = {
        name: head.score(features(landmarker, crops[name])) for name in ("udacity_val", "wild_val")
    }
    flat = head.score(features(landmarker, crops["animal_val"]))
    owner = crops["animal_val_photo"]
    animal = [flat[owner == k] for k in range(int(crops["animal_val_photos"]))]
    lowest = min(float(v.min()) for v in human.values())

    def photos_with_face(t: float) -> int:
        return int(sum(bool((s >= t).any()) for s in animal))

    threshold = choose_threshold(lowest, lambda t: photos_with_face(t) / max(len(animal), 1))
    head = head.with_threshold(threshold)

    shown = Path(args.model)
    report: dict[str, Any] = {
        "model": str(shown.resolve().relative_to(ROOT))
        if shown.is_file() and shown.resolve().is_relative_to(ROOT)
        else args.model,
        "threshold": threshold,
        "lowest_human_val_score": round(lowest, 4),
        "human_val": {
            k: {"faces": len(v), "kept": int((v >= threshold).sum())} for k, v in human.items()
        },
        "animal_split": {
            "train_photos": int(crops["animal_train_photos"]),
            "val_photos": int(crops["animal_val_photos"]),
        },
        "animal_val": {
            "photos": len(animal),
            "with_detection": int(sum(len(s) > 0 for s in animal)),
            "with_face_after_check": photos_with_face(threshold),
            "by_threshold": {f"{t / 100:g}": photos_with_face(t / 100) for t in range(10, 95, 10)},
        },
        "train_crops": {"human": len(human_crops), "other": len(other_crops)},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    data = checkpoint.load_checkpoint(source, "landmarks")
    payload = {k: data[k] for k in checkpoint.EXPORT_KEYS if k in data}
    payload.update({k: data[k] for k in ("quantized", "quantized_parts") if k in data})
    payload["faceness"] = head.to_dict()
    payload["faceness_metrics"] = report
    checkpoint.save_checkpoint(args.out, payload)
    text = json.dumps(report, indent=2)
    print(text)
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
