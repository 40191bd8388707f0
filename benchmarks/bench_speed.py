"""Landmark models side by side: ms per face at batch 1 and 32, interleaved in one run.

    python benchmarks/bench_speed.py --models default,old=path/to/landmarks.pt \
        [--threads 2] [--repeats 30]

Each model (a spec as ``--model`` takes it, optionally ``NAME=SPEC``) runs
``Landmarker.predict_crops`` on the same random uint8 crops at its own input size: network,
decoding and, where the model has one and ``--no-faceness`` is not given, the faceness head
(what ``annotate`` runs per face).  The models take turns call by call, so a load that
drifts on a shared machine reaches them alike; the figure is the median over ``--repeats``
calls.  This is how a new default model is held to "no slower than the one it replaces".
Writes ``benchmarks/results/speed.json``.
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

OUT = ROOT / "benchmarks" / "results" / "speed.json"
BATCHES = (1, 32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="default", help="NAME=SPEC or SPEC, comma-separated")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument(
        "--no-faceness", action="store_true", help="leave out the faceness heads (compare networks)"
    )
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    import numpy as np
    import torch

    from facemark import hub

    torch.set_num_threads(args.threads)

    def head(lm) -> bool:
        return lm.faceness is not None and not args.no_faceness

    models = {}
    for spec in (m.strip() for m in args.models.split(",") if m.strip()):
        name, _, path = spec.partition("=") if "=" in spec else (spec, "", spec)
        models[name] = hub.load_model(path, "cpu")
    out: dict = {
        "command": "python benchmarks/bench_speed.py " + " ".join(argv or sys.argv[1:]),
        "threads": args.threads,
        "repeats": args.repeats,
        "torch": torch.__version__,
        "models": {
            name: {"arch": lm.arch, "img_size": lm.img_size, "faceness": head(lm)}
            for name, lm in models.items()
        },
    }
    for batch in BATCHES:
        rng = np.random.default_rng(0)
        crops = {  # uint8 (F, S, S, 3): what the photo path hands the network
            name: rng.integers(0, 256, (batch, lm.img_size, lm.img_size, 3), dtype=np.uint8)
            for name, lm in models.items()
        }
        passes = {
            name: functools.partial(lm.predict_crops, crops[name], faceness=head(lm))
            for name, lm in models.items()
        }
        for name, ms in bench_timing.interleaved(passes, args.repeats, batch).items():
            out["models"][name][f"ms_per_face_b{batch}"] = round(ms, 3)
    report.write_record(out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
