"""What annotating costs in one process, in Ray Data and in Dask, on the same photos.

    python benchmarks/bench_engines.py [--photos ../shared/photos] [--threads 1] [--repeats 3]

For each engine: start-up (Ray: ``ray.init``; every engine: loading the models), the
marginal cost per image (the run over the photos twice minus the run over them once, so
start-up and the first batch's warm-up cancel; for Ray also the time its actor spends per
image, without Ray's scheduling and transfers), and writing the records (JSONL, Parquet).
All three run the same ``FaceMarker.annotate`` with the same torch threads; Ray gets one
actor (the default on 2 CPUs).  The records of each engine are compared with the single
process's (largest keypoint difference in px).  Medians over ``--repeats``.  Writes
``benchmarks/results/engines.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "engines.json"
SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def _largest_difference(rows: list[dict], reference: dict[str, dict]) -> float:
    worst = 0.0
    for row in rows:
        ref = reference[row["image"]]
        if len(row["faces"] or []) != len(ref["faces"]):
            return float("inf")
        for a, b in zip(row["faces"] or [], ref["faces"], strict=True):
            worst = max(worst, float(np.abs(np.subtract(a["keypoints"], b["keypoints"])).max()))
    return worst


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


class _Steady:
    """A long-lived Ray actor holding one predictor, as a big job's actors are."""

    def __init__(self, threads: int, measure) -> None:
        import facemark.ray as fray

        self.predictor = fray.FaceMarkerPredictor(threads=threads)
        self._measure = measure

    def measure(self) -> float:
        return self._measure(self.predictor)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "photos")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import torch

    import facemark
    from facemark.annotator import AnnotateConfig, load_marker
    from facemark.results import write_parquet

    photos = sorted(str(p) for p in args.photos.iterdir() if p.suffix.lower() in SUFFIXES)
    if not photos:
        sys.exit(f"no photos in {args.photos}")
    torch.set_num_threads(args.threads)
    result: dict = {"photos": len(photos), "threads": args.threads, "repeats": args.repeats}

    # --- one process: facemark.annotate, the run the CLI makes (decoding in a thread)
    work = Path(tempfile.mkdtemp(prefix="facemark-engines-"))
    doubled = []
    for copy in ("a", "b"):  # the photos twice under other names (runs de-duplicate paths)
        (work / copy).mkdir()
        for path in photos:
            target = work / copy / Path(path).name
            target.write_bytes(Path(path).read_bytes())
            doubled.append(str(target))
    load, _ = _timed(lambda: load_marker(AnnotateConfig(threads=args.threads)))

    def single(paths: list[str]) -> list:
        return [r.to_dict() for r in facemark.annotate(paths, threads=args.threads)]

    single(photos[:2])  # warm-up
    once = [_timed(lambda: single(photos))[0] for _ in range(args.repeats)]
    twice = [_timed(lambda: single(doubled))[0] for _ in range(args.repeats)]
    records = single(photos)
    reference = {r["image"]: r for r in records}
    with tempfile.TemporaryDirectory() as tmp:
        jsonl_s, _ = _timed(
            lambda: Path(tmp, "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        )
        parquet_s, _ = _timed(lambda: write_parquet(records, Path(tmp, "a.parquet")))
    result["process"] = {
        "startup_s": round(load, 3),
        "run_s": round(statistics.median(once), 2),
        "ms_per_image": round(
            (statistics.median(twice) - statistics.median(once)) / len(photos) * 1000, 1
        ),
        "write_jsonl_ms": round(jsonl_s * 1000, 1),
        "write_parquet_ms": round(parquet_s * 1000, 1),
    }

    # --- Dask: the same API per partition (threads scheduler, one partition per call)
    import dask.bag as db

    def dask_run(paths: list[str]) -> list:
        bag = db.from_sequence(paths, npartitions=2)
        return bag.map_partitions(
            lambda part: [r.to_dict() for r in facemark.annotate(list(part), threads=args.threads)]
        ).compute(scheduler="sync")

    d_once = [_timed(lambda: dask_run(photos))[0] for _ in range(args.repeats)]
    d_twice = [_timed(lambda: dask_run(doubled))[0] for _ in range(args.repeats)]
    result["dask"] = {
        "run_s": round(statistics.median(d_once), 2),
        "ms_per_image": round(
            (statistics.median(d_twice) - statistics.median(d_once)) / len(photos) * 1000, 1
        ),
        "max_keypoint_diff_px": _largest_difference(dask_run(photos), reference),
    }

    # --- Ray Data: read tasks + one actor per CPU share
    import ray

    init_s, _ = _timed(
        lambda: ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    )
    import pyarrow as pa

    import facemark.ray as fray

    class TimedPredictor(fray.FaceMarkerPredictor):
        """The actor's own time per image, in a column the benchmark reads and drops."""

        def __call__(self, batch):
            start = time.perf_counter()
            table = super().__call__(batch)
            each = (time.perf_counter() - start) * 1000 / max(table.num_rows, 1)
            return table.append_column("worker_ms", pa.array([each] * table.num_rows))

    def ray_run(paths: list[str]) -> list:
        return fray.annotate(paths, threads=args.threads, predictor=TimedPredictor).take_all()

    first_s, rows = _timed(lambda: ray_run(photos))
    runs = [_timed(lambda: ray_run(photos)) for _ in range(args.repeats)]
    r_once = [t for t, _ in runs]
    in_worker = statistics.median(sum(r["worker_ms"] for r in rows) / len(rows) for _, rows in runs)
    r_twice = [_timed(lambda: ray_run(doubled))[0] for _ in range(args.repeats)]
    with tempfile.TemporaryDirectory() as tmp:
        ds = fray.annotate(photos, threads=args.threads).materialize()
        r_parquet, _ = _timed(lambda: ds.write_parquet(str(Path(tmp, "pq"))))
        r_json, _ = _timed(lambda: ds.write_json(str(Path(tmp, "js"))))
    result["ray"] = {
        "init_s": round(init_s, 2),
        "first_run_s": round(first_s, 2),
        "run_s": round(statistics.median(r_once), 2),
        "ms_per_image": round(
            (statistics.median(r_twice) - statistics.median(r_once)) / len(photos) * 1000, 1
        ),
        "ms_per_image_in_worker": round(in_worker, 1),
        "write_parquet_ms": round(r_parquet * 1000, 1),
        "write_json_ms": round(r_json * 1000, 1),
        "max_keypoint_diff_px": _largest_difference(rows, reference),
    }
    # the same predictor on the same batch, in this process and in a warmed Ray actor: the
    # per-image cost of the work itself, without Ray Data's scheduling, reads and cold actors
    batch = {"bytes": [Path(p).read_bytes() for p in photos], "path": photos}

    def per_image(predictor: fray.FaceMarkerPredictor) -> float:
        predictor(batch)  # warm-up
        times = [_timed(lambda: predictor(batch))[0] for _ in range(args.repeats)]
        return statistics.median(times) * 1000 / len(photos)

    actor = ray.remote(num_cpus=1)(_Steady).remote(args.threads, per_image)
    in_actor = ray.get(actor.measure.remote())
    ray.kill(actor)
    in_process = per_image(fray.FaceMarkerPredictor(threads=args.threads))
    result["ray"]["steady_ms_per_image_in_actor"] = round(in_actor, 1)
    result["ray"]["steady_ms_per_image_in_process"] = round(in_process, 1)
    result["ray_actor_vs_process_steady"] = round(in_actor / in_process, 2)
    ray.shutdown()
    shutil.rmtree(work, ignore_errors=True)
    result["ray_vs_process"] = round(
        result["ray"]["ms_per_image"] / result["process"]["ms_per_image"], 2
    )
    result["ray_worker_vs_process"] = round(
        result["ray"]["ms_per_image_in_worker"] / result["process"]["ms_per_image"], 2
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
