"""What the faceness head costs: landmark ms per face with and without it, same run.

    python benchmarks/bench_faceness.py [--model default] [--threads 2] [--repeats 30]

The head reads features the landmark network computes anyway (pooled stage outputs and the
score maps' peaks) and adds five small MLPs, so the cost is the pooling and those: timed here on
random crops at batch 1 and 32, the two passes interleaved so both see the same machine
load.  Writes ``benchmarks/results/faceness-speed.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "faceness-speed.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    import torch

    from facemark import hub

    torch.set_num_threads(args.threads)
    lm = hub.load_model(args.model, "cpu")
    if lm.faceness is None:
        sys.exit(f"{args.model} has no faceness head")
    out: dict = {"model": args.model, "threads": args.threads, "repeats": args.repeats}
    for batch in (1, 32):
        x = torch.rand(
            batch, 3, lm.img_size, lm.img_size, generator=torch.Generator().manual_seed(0)
        )
        times: dict[str, list[float]] = {"plain": [], "faceness": []}
        for _ in range(3):  # warm-up
            lm.predict_crops(x)
            lm.predict_crops(x, faceness=True)
        for _ in range(args.repeats):
            for key, flag in (("plain", False), ("faceness", True)):
                t = time.perf_counter()
                lm.predict_crops(x, faceness=flag)
                times[key].append((time.perf_counter() - t) * 1000 / batch)
        plain, with_head = (statistics.median(times[k]) for k in ("plain", "faceness"))
        out[f"b{batch}"] = {
            "ms_per_face": round(plain, 3),
            "ms_per_face_with_faceness": round(with_head, 3),
            "extra_pct": round(100 * (with_head - plain) / plain, 1),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
