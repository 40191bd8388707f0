"""Train the "human face or not" check (facemark.faceness) and choose its threshold.

Positives are human faces as the pipeline hands them on: YuNet's own detections that hold a
labelled face (and the labelled face box itself) on the Udacity training frames and the
training part of wild68-train.  Negatives are what YuNet fires on in animal photos (at a
lower threshold than the pipeline's, so near misses teach too) plus random boxes of fur and
background from the same photos.  The animal photos are split by where they come from (the
source repository, and the species folder for the monkey set), never photo by photo, so the
validation animals are other breeds, species and photographers than the training ones.

The threshold is the highest that keeps every validation human face (Udacity val frames and
wild68 val photos, YuNet detections) with a margin; the figures go to --report.

    python tools/train_faceness.py --wild ../shared/data/wild68-train \
        --animals ../shared/data/nonhuman --out src/facemark/weights/faceness.pt \
        --report benchmarks/results/faceness.json
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from facemark import checkpoint, dataset, labelsets, transforms
from facemark.detectors import DetectorConfig, load_detector
from facemark.evaluate import match_detection
from facemark.faceness import ARCH, IMG_SIZE, TASK, FaceCheckNet
from facemark.images import load_image

#: YuNet's threshold when mining: below the pipeline's 0.5, so near misses are negatives too.
MINE_THRESHOLD = 0.3
#: Share of animal source groups held out for validation.
ANIMAL_VAL = 0.3
#: The chosen threshold is this fraction of the lowest validation human face's score.
MARGIN = 0.5
AUG = transforms.AugmentConfig(
    box_shift=0.1,
    box_scale=0.15,
    rotation=25.0,
    scale=(0.9, 1.1),
    translate=0.04,
    p_occlude=0.15,
    fit_margin=-1.0,
)


def animal_group(source: str) -> str:
    """Source repository, plus the species folder (``n3``) for the monkey set."""
    repo = source.split("@", 1)[0]
    species = re.search(r"/(n\d)/", source)
    return f"{repo}:{species.group(1)}" if species else repo


def split_animals(folder: Path, seed: int) -> tuple[list[Path], list[Path]]:
    with open(folder / "manifest.tsv", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    groups = sorted({animal_group(r["source"]) for r in rows})
    order = sorted(groups, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    # hold out groups until ANIMAL_VAL of the photos are in val
    val_groups: set[str] = set()
    counts = {g: sum(animal_group(r["source"]) == g for r in rows) for g in groups}
    for g in order:
        if sum(counts[v] for v in val_groups) >= ANIMAL_VAL * len(rows):
            break
        if counts[g] <= 0.25 * len(rows):  # no single source may be most of val
            val_groups.add(g)
    train = [folder / r["file"] for r in rows if animal_group(r["source"]) not in val_groups]
    val = [folder / r["file"] for r in rows if animal_group(r["source"]) in val_groups]
    return train, val


def crops_of(image: np.ndarray, boxes: np.ndarray, n_aug: int, rng) -> list[np.ndarray]:
    """``n_aug`` augmented crops per box (0: the plain inference crop)."""
    out = []
    for box in boxes:
        if n_aug == 0:
            out.append(transforms.crop_face(image, box, IMG_SIZE)[0])
            continue
        for _ in range(n_aug):
            M, _ = transforms.random_geometry(box, IMG_SIZE, AUG, rng)
            crop = transforms.warp_image(image, M, IMG_SIZE)
            out.append(transforms.photometric(crop, AUG, rng))
    return out


def human_boxes(detector, faces, threshold: float) -> tuple[list[np.ndarray], list[float]]:
    """Per face: the matched detection's box (or none) and its detector score."""
    boxes, scores = [], []
    for image, kps in zip(faces.images, faces.keypoints, strict=True):
        det = detector.detect(image)
        keep = det.scores >= threshold
        k = match_detection(det.boxes[keep], det.scores[keep], kps)
        boxes.append(det.boxes[keep][k] if k is not None else None)
        scores.append(float(det.scores[keep][k]) if k is not None else float("nan"))
    return boxes, scores


def random_boxes(image: np.ndarray, n: int, rng) -> np.ndarray:
    h, w = image.shape[:2]
    out = []
    for _ in range(n):
        side = rng.uniform(0.15, 0.6) * min(h, w)
        x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
        out.append([x0, y0 - 0.1 * side, x0 + side * rng.uniform(0.8, 1.0), y0 + side])
    return np.asarray(out, np.float32).reshape(-1, 4)


def score(model: FaceCheckNet, crops: np.ndarray) -> np.ndarray:
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(crops), 256):
            x = transforms.to_tensor(crops[i : i + 256])
            out.append(torch.sigmoid(model(x)).numpy())
    return np.concatenate(out) if out else np.zeros(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wild", required=True, help="wild68-train folder")
    parser.add_argument("--animals", required=True, help="nonhuman folder (with manifest.tsv)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--report", default=None)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="Udacity frames (quick runs)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    detector = load_detector("yunet", "cpu", DetectorConfig(threshold=MINE_THRESHOLD))

    udacity = {s: dataset.load_split(s, progress=True, limit=args.limit) for s in ("train", "val")}
    wild_train, wild_val = labelsets.split_faces(
        labelsets.load_faces(args.wild, progress=True), 0.1, 0, val_by="photo"
    )
    humans = {
        "train": [udacity["train"], wild_train],
        "val": {"udacity_val": udacity["val"], "wild_val": wild_val},
    }
    pos: list[np.ndarray] = []
    for faces, n_aug in zip(humans["train"], (1, 3), strict=True):
        boxes, _ = human_boxes(detector, faces, MINE_THRESHOLD)
        for image, kps, box in zip(faces.images, faces.keypoints, boxes, strict=True):
            gt = transforms.face_box_from_keypoints(kps)[None]
            pos += crops_of(image, gt, n_aug, rng)
            if box is not None:
                pos += crops_of(image, box[None], n_aug, rng)
    print(f"positives: {len(pos)} crops ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)

    animals_train, animals_val = split_animals(Path(args.animals), args.seed)
    neg: list[np.ndarray] = []
    for path in animals_train:
        image = load_image(path)
        det = detector.detect(image)
        neg += crops_of(image, det.boxes, 6, rng)
        neg += crops_of(image, random_boxes(image, 3, rng), 2, rng)
    print(f"negatives: {len(neg)} crops ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)

    x = np.stack(pos + neg)
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))].astype(np.float32)
    model = FaceCheckNet()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = args.epochs * (len(x) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=max(steps, 1))
    pos_weight = torch.tensor(len(neg) / max(len(pos), 1))
    for epoch in range(args.epochs):
        model.train()
        order = rng.permutation(len(x))
        total = 0.0
        for i in range(0, len(order) - 127, 128):
            idx = order[i : i + 128]
            batch = transforms.to_tensor(x[idx])
            if rng.random() < 0.5:
                batch = torch.flip(batch, dims=[3])
            loss = F.binary_cross_entropy_with_logits(
                model(batch), torch.from_numpy(y[idx]), pos_weight=pos_weight
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * len(idx)
        print(f"epoch {epoch + 1}: loss {total / len(x):.4f}", file=sys.stderr)

    # validation: what the pipeline sees (detections at its own threshold 0.5)
    report: dict = {"animal_split": {"train": len(animals_train), "val": len(animals_val)}}
    human_scores: dict[str, np.ndarray] = {}
    for name, faces in humans["val"].items():
        boxes, _ = human_boxes(detector, faces, 0.5)
        crops = [
            crops_of(im, b[None], 0, rng)[0]
            for im, b in zip(faces.images, boxes, strict=True)
            if b is not None
        ]
        human_scores[name] = score(model, np.stack(crops))
    animal_scores: list[np.ndarray] = []
    for path in animals_val:
        image = load_image(path)
        det = detector.detect(image)
        det_boxes = det.boxes[det.scores >= 0.5]
        animal_scores.append(
            score(model, np.stack(crops_of(image, det_boxes, 0, rng)))
            if len(det_boxes)
            else np.zeros(0)
        )
    lowest = min(float(s.min()) for s in human_scores.values())
    threshold = round(MARGIN * lowest, 4)
    with_face = [bool((s >= threshold).any()) for s in animal_scores]
    report.update(
        {
            "threshold": threshold,
            "lowest_human_val_score": lowest,
            "human_val": {
                k: {
                    "faces": len(v),
                    "kept": int((v >= threshold).sum()),
                    "p01": float(np.percentile(v, 1)),
                }
                for k, v in human_scores.items()
            },
            "animal_val": {
                "photos": len(animal_scores),
                "with_detection": int(sum(len(s) > 0 for s in animal_scores)),
                "with_face_after_check": int(sum(with_face)),
            },
            "train_crops": {"positive": len(pos), "negative": len(neg)},
            "seconds": round(time.perf_counter() - t0, 1),
        }
    )
    metrics = {
        "animal_val_photos_with_face": sum(with_face) / max(len(with_face), 1),
        "human_val_kept": float(
            np.mean(np.concatenate([v >= threshold for v in human_scores.values()]))
        ),
    }
    checkpoint.save_checkpoint(
        args.out,
        {
            "task": TASK,
            "arch": ARCH,
            "arch_kwargs": {},
            "img_size": IMG_SIZE,
            "state_dict": {
                k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()
            },
            "threshold": threshold,
            "metrics": metrics,
            "run_name": "faceness",
        },
    )
    text = json.dumps(report, indent=2)
    print(text)
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
