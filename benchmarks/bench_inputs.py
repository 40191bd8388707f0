"""Does a photo give the same faces whatever form it arrives in?

    python benchmarks/bench_inputs.py [--photos ../shared/photos] [--threads 2]

Runs the bundled pipeline on every photo four ways: by path, as the file's bytes, as the
Pillow image ``Image.open`` returns (EXIF orientation not yet applied) and as the decoded
RGB array (turned upright, as a viewer shows it).  Faces are paired by box overlap; the
keypoint difference to the path's is reported in % of the eye distance (outer corners).
Writes ``benchmarks/results/input-parity.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "input-parity.json"
SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = np.maximum(a[:2], b[:2])
    x1, y1 = np.minimum(a[2:], b[2:])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def compare(reference: list, other: list) -> tuple[bool, float]:
    """(same number of faces, largest keypoint difference in % of the eye distance) over
    the faces paired by the best box overlap."""
    worst = 0.0
    for face in reference:
        if not other:
            break
        match = max(other, key=lambda f: _iou(face.box, f.box))
        eyes = float(np.linalg.norm(face.keypoints[45] - face.keypoints[36])) or 1.0
        diff = float(np.abs(match.keypoints - face.keypoints).max()) / eyes * 100.0
        worst = max(worst, diff)
    return len(reference) == len(other), worst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "photos")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    from PIL import Image, ImageOps

    import facemark

    paths = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in SUFFIXES)
    if not paths:
        sys.exit(f"no photos in {args.photos}")
    marker = facemark.FaceMarker(threads=args.threads)
    ways = {
        "bytes": lambda p: p.read_bytes(),
        "pil": lambda p: Image.open(p),
        "array": lambda p: np.asarray(ImageOps.exif_transpose(Image.open(p)).convert("RGB")),
    }
    rows = []
    for path in paths:
        ref = marker(path)
        row = {"photo": path.name, "faces": len(ref)}
        for way, load in ways.items():
            faces = marker(load(path))
            same, diff = compare(ref, faces)
            row[way] = {"same_count": same, "max_diff_pct": round(diff, 4)}
            if way == "bytes":
                row[way]["identical"] = same and all(
                    np.array_equal(a.keypoints, b.keypoints)
                    for a, b in zip(ref, faces, strict=False)
                )
        rows.append(row)
    summary = {
        way: {
            "photos": len(rows),
            "count_differs": sum(not r[way]["same_count"] for r in rows),
            "max_diff_pct": max(r[way]["max_diff_pct"] for r in rows),
            "over_0.5pct": sum(r[way]["max_diff_pct"] > 0.5 for r in rows),
        }
        for way in ways
    }
    summary["bytes"]["not_identical"] = sum(not r["bytes"]["identical"] for r in rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "photos": rows}, indent=1) + "\n")
    for way, s in summary.items():
        print(way, s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
