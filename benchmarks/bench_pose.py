"""Head pose benchmark: symmetry checks on real photos, yaw against a proxy on labelled frames.

    python benchmarks/bench_pose.py [--photos DIR] [--max-side 1600] [--out results/pose.json]

There is no ground-truth pose for facemark's data, so this checks what must hold whatever
the truth is (the figures in docs/pose.md come from this command):

1. **Real photos** (``--photos``, default ``../shared/photos``; each first scaled to at most
   ``--max-side`` px): ``FaceMarker`` finds the faces of each photo, of its mirror image
   (Pillow ``FLIP_LEFT_RIGHT``) and of the photo rotated in plane by +10 and +20 degrees
   counter-clockwise (``Image.rotate(angle, expand=True)``); each face is matched to the
   transformed photo's face whose box centre is nearest the mapped centre.  Mirroring must
   negate yaw (and roll): ``|yaw + yaw_mirror|``; rotating must add the angle to roll:
   ``|roll_rot - roll - angle|``.  The rotated photo is posed with the original photo's
   focal length (the same camera; only the picture turned).  Medians, 90th percentiles and
   the worst faces, for all matched faces and for the faces with an eye distance of 30 px
   or more (enough pixels for the landmark model to be sure).  ``*_kp_nme`` says how far
   the landmarks themselves moved (mean point distance after undoing the transform, in eye
   distances): a big pose change with a big landmark change is the landmark model's, not
   the pose solver's.
2. **Labelled frames** (ground-truth keypoints of ``val`` and ``test``): yaw against the yaw
   proxy ``(x30 - (x36 + x45) / 2) / |p45 - p36|`` (nose tip against the eye-corner
   midpoint, in eye distances): Spearman rank correlation, and mean yaw in 10 bins of equal
   count along the proxy (monotonic when each bin's mean exceeds the previous one's).
3. **Speed**: microseconds per face of ``head_pose`` and of ``head_pose_batch`` (the frames
   of one size together) on the labelled frames' keypoints.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = ROOT.parent / "shared" / "photos"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "pose.json"
ANGLES = (10, 20)
BIG_EYES = 30.0


def eye_distance(kps: np.ndarray) -> float:
    return float(np.linalg.norm(kps[45] - kps[36]))


def rotate_point(p: np.ndarray, deg: float, size: tuple[int, int], new: tuple[int, int]):
    """Where Pillow's ``rotate(deg, expand=True)`` moves pixel-centre point ``p``."""
    c0 = (np.array(size, float) - 1) / 2
    c1 = (np.array(new, float) - 1) / 2
    a = math.radians(deg)
    R = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    return (np.asarray(p, float) - c0) @ R.T + c1


def nme(a: np.ndarray, b: np.ndarray) -> float:
    """Mean point distance in eye distances: how much the landmarks moved (not the pose)."""
    return float(np.linalg.norm(np.asarray(a) - b, axis=1).mean() / eye_distance(b))


def match(centre: np.ndarray, faces: list, tol: float):
    """The face whose box centre is nearest ``centre`` (None beyond ``tol`` px)."""
    best, dist = None, tol
    for f in faces:
        c = (f.box[:2] + f.box[2:]) / 2
        d = float(np.linalg.norm(c - centre))
        if d < dist:
            best, dist = f, d
    return best


def summary(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    v = np.abs(np.array(values))
    return {
        "n": len(v),
        "median": round(float(np.median(v)), 3),
        "p90": round(float(np.percentile(v, 90)), 3),
        "max": round(float(v.max()), 3),
        "within_2deg": round(float((v <= 2).mean()), 3),
    }


def photos_check(photo_dir: Path, max_side: int) -> dict:
    from facemark.pipeline import FaceMarker
    from facemark.pose import head_pose
    from facemark.transforms import FLIP_PERM

    marker = FaceMarker()
    rows = []
    files = sorted(p for p in photo_dir.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    for path in files:
        from facemark.images import load_image

        im = Image.fromarray(load_image(path))
        scale = min(1.0, max_side / max(im.size))
        if scale < 1:
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
        w, h = im.size
        focal = float(max(w, h))
        base = marker(np.asarray(im))
        mirrored = marker(np.asarray(im.transpose(Image.FLIP_LEFT_RIGHT)))
        rotated = {}
        for deg in ANGLES:
            r = im.rotate(deg, resample=Image.BICUBIC, expand=True)
            rotated[deg] = (r.size, marker(np.asarray(r)))
        for k, face in enumerate(base):
            centre = (face.box[:2] + face.box[2:]) / 2
            tol = 0.25 * float(face.box[2] - face.box[0])
            row = {
                "photo": path.name,
                "face": k,
                "eye_px": round(eye_distance(face.keypoints), 1),
                "yaw": face.pose.yaw,
                "pitch": face.pose.pitch,
                "roll": face.pose.roll,
            }
            m = match(np.array([w - 1 - centre[0], centre[1]]), mirrored, tol)
            if m is not None:
                back = m.keypoints[FLIP_PERM].astype(np.float64)
                back[:, 0] = w - 1 - back[:, 0]
                row["mirror_kp_nme"] = nme(back, face.keypoints)
                row["mirror_yaw_sum"] = face.pose.yaw + m.pose.yaw
                row["mirror_roll_sum"] = face.pose.roll + m.pose.roll
                row["mirror_pitch_diff"] = m.pose.pitch - face.pose.pitch
            for deg, (size, faces) in rotated.items():
                m = match(rotate_point(centre, deg, (w, h), size), faces, tol)
                if m is not None:
                    p = head_pose(m.keypoints, size, focal=focal)
                    moved = rotate_point(face.keypoints, deg, (w, h), size)
                    row[f"rot_kp_nme_{deg}"] = nme(m.keypoints, moved)
                    row[f"roll_err_{deg}"] = (p.roll - face.pose.roll - deg + 180) % 360 - 180
                    row[f"yaw_diff_{deg}"] = p.yaw - face.pose.yaw
            rows.append(row)
        print(f"{path.name}: {len(base)} face(s)", file=sys.stderr)

    def stats(key: str, big: bool = False) -> dict:
        vals = [r[key] for r in rows if key in r and (not big or r["eye_px"] >= BIG_EYES)]
        return summary(vals)

    def worst(key: str, n: int = 3) -> list[dict]:
        have = sorted((r for r in rows if key in r), key=lambda r: -abs(r[key]))[:n]
        kp = "mirror_kp_nme" if key.startswith("mirror") else f"rot_kp_nme_{key[-2:]}"
        return [
            {
                "photo": r["photo"],
                "face": r["face"],
                "eye_px": r["eye_px"],
                key: round(r[key], 2),
                "landmarks_moved_eye": round(r[kp], 3),
            }
            for r in have
        ]

    keys = ["mirror_yaw_sum", "mirror_roll_sum", "mirror_pitch_diff"]
    keys += [f"roll_err_{d}" for d in ANGLES] + [f"yaw_diff_{d}" for d in ANGLES]
    keys += ["mirror_kp_nme"] + [f"rot_kp_nme_{d}" for d in ANGLES]
    yaws = [abs(r["yaw"]) for r in rows]
    return {
        "photos": len(files),
        "faces": len(rows),
        "max_side": max_side,
        "abs_yaw_median": round(statistics.median(yaws), 1) if yaws else None,
        "abs_yaw_max": round(max(yaws), 1) if yaws else None,
        "all": {k: stats(k) for k in keys},
        f"eyes_ge_{int(BIG_EYES)}px": {k: stats(k, True) for k in keys},
        "worst": {k: worst(k) for k in keys[:1] + keys[3:5]},
        "faces_detail": [
            {k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()} for r in rows
        ],
    }


def frames_check() -> dict:
    from facemark import metrics
    from facemark.data import load_split
    from facemark.pose import head_pose, head_pose_batch

    kps_all, sizes = [], []
    for split in ("val", "test"):
        faces = load_split(split)
        kps_all.append(faces.keypoints.astype(np.float64))
        sizes += [(im.shape[1], im.shape[0]) for im in faces.images]
    kps = np.concatenate(kps_all)
    t0 = time.perf_counter()
    poses = [head_pose(k, s) for k, s in zip(kps, sizes, strict=True)]
    us = (time.perf_counter() - t0) / len(kps) * 1e6
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, s in enumerate(sizes):
        by_size.setdefault(s, []).append(i)
    t0 = time.perf_counter()
    for s, idx in by_size.items():
        head_pose_batch(kps[idx], s)
    us_batch = (time.perf_counter() - t0) / len(kps) * 1e6
    yaw = np.array([p.yaw for p in poses])
    pitch = np.array([p.pitch for p in poses])
    roll = np.array([p.roll for p in poses])
    err = np.array([p.error for p in poses])
    eyes = metrics.interocular(kps)
    proxy = (kps[:, 30, 0] - (kps[:, 36, 0] + kps[:, 45, 0]) / 2) / eyes
    order = np.argsort(proxy)
    bins = []
    for chunk in np.array_split(order, 10):
        bins.append(
            {
                "proxy": round(float(proxy[chunk].mean()), 3),
                "yaw": round(float(yaw[chunk].mean()), 2),
                "n": len(chunk),
            }
        )
    means = [b["yaw"] for b in bins]
    return {
        "frames": len(kps),
        "valid": int(np.isfinite(yaw).sum()),
        "spearman_yaw_proxy": round(metrics.spearman(proxy, yaw), 4),
        "bins_monotonic": bool(all(b > a for a, b in zip(means, means[1:], strict=False))),
        "bins": bins,
        "yaw_range": [round(float(yaw.min()), 1), round(float(yaw.max()), 1)],
        "abs_yaw_median": round(float(np.median(np.abs(yaw))), 1),
        "pitch_median": round(float(np.median(pitch)), 1),
        "abs_roll_median": round(float(np.median(np.abs(roll))), 1),
        "reprojection_rms_px_median": round(float(np.median(err)), 2),
        "reprojection_rms_eye_median": round(float(np.median(err / eyes)), 4),
        "us_per_face": round(us, 1),
        "us_per_face_batch": round(us_batch, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--max-side", type=int, default=1600)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--skip-photos", action="store_true")
    args = parser.parse_args(argv)
    result = {"frames": frames_check()}
    print(json.dumps(result["frames"], indent=1))
    if not args.skip_photos:
        if args.photos.is_dir():
            result["photos"] = photos_check(args.photos, args.max_side)
            shown = {k: v for k, v in result["photos"].items() if k != "faces_detail"}
            print(json.dumps(shown, indent=1))
        else:
            print(f"no photos at {args.photos}: skipped", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
