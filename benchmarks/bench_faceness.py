"""What the faceness head costs: landmark ms per face with and without it, same run.

    python benchmarks/bench_faceness.py [--model default] [--threads 2] [--repeats 30]

The head reads features the landmark network computes anyway (pooled stage outputs and the
score maps' peaks) and adds five small MLPs, so the cost is the pooling and those: timed here on
random crops at batch 1 and 32, the two passes interleaved so both see the same machine
load.  Writes ``benchmarks/results/faceness-speed.json``.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(ROOT))

from benchmarks import bench_timing, report  # noqa: E402

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
        passes = {
            "plain": functools.partial(lm.predict_crops, x),
            "faceness": functools.partial(lm.predict_crops, x, faceness=True),
        }
        ms = bench_timing.interleaved(passes, args.repeats, batch)
        plain, with_head = ms["plain"], ms["faceness"]
        out[f"b{batch}"] = {
            "ms_per_face": round(plain, 3),
            "ms_per_face_with_faceness": round(with_head, 3),
            "extra_pct": round(100 * (with_head - plain) / plain, 1),
        }
    report.write_record(out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
