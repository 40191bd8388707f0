"""How many augmented training samples per second the data pipeline delivers.

    python benchmarks/bench_loader.py                      # installed dataset, 0/1/2 workers
    python benchmarks/bench_loader.py --data DIR --img-size 128 --workers 0 2 --samples 3000

Loads the split once (decode time is reported separately), then for each worker count iterates
a DataLoader exactly as training does (shuffled batches, augmentation on) and reports
samples/s.  The machine's cores may be shared, so it also reports samples per CPU-second of the
loading work for ``workers=0`` (the pipeline's cost per core, whatever else is running), and
with ``--profile`` the CPU time of each stage of one sample.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from facemark import transforms
from facemark.data import LandmarkDataset, load_split


def bench_loader(
    ds: LandmarkDataset, workers: int, batch_size: int, samples: int
) -> tuple[float, float]:
    """(samples per wall-clock second, samples per CPU-second of this process)."""
    loader = torch.utils.data.DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        drop_last=True,
    )
    seen, start, cpu_start, epoch = 0, None, 0.0, 0
    while seen < samples:
        ds.set_epoch(epoch)
        for images, _ in loader:
            if start is None:  # do not count worker start-up and the first batch
                start, cpu_start, seen = time.perf_counter(), time.process_time(), 0
                continue
            seen += len(images)
            if seen >= samples:
                break
        epoch += 1
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return seen / wall, seen / max(cpu, 1e-9)


def profile(ds: LandmarkDataset, n: int = 300) -> dict[str, float]:
    """Mean CPU milliseconds per sample for each stage (main process, one thread)."""
    cfg, size = ds.config, ds.img_size
    totals = dict(geometry=0.0, warp=0.0, photometric=0.0, to_tensor=0.0)
    for i in range(n):
        image, kps = ds.faces.images[i], ds.faces.keypoints[i]
        rng = transforms.sample_rng(0, 0, i)
        t0 = time.process_time()
        box = transforms.face_box_from_keypoints(kps)
        M, flipped = transforms.random_geometry(box, size, cfg, rng)
        transforms.transform_keypoints(kps, M, flipped)
        t1 = time.process_time()
        crop = transforms.warp_image(image, M, size)
        t2 = time.process_time()
        crop = transforms.photometric(crop, cfg, rng)
        t3 = time.process_time()
        transforms.to_tensor(crop)
        t4 = time.process_time()
        for key, dt in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            totals[key] += dt
    return {k: 1000 * v / n for k, v in totals.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="dataset folder (default: the installed one)")
    ap.add_argument("--split", default="trainval")
    ap.add_argument("--img-size", type=int, default=128)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--samples", type=int, default=2000, help="samples timed per setting")
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--profile", action="store_true", help="also time each stage")
    args = ap.parse_args()

    torch.set_num_threads(1)
    t = time.perf_counter()
    faces = load_split(args.split, args.data)
    load_s = time.perf_counter() - t
    mb = sum(im.nbytes for im in faces.images) / 1e6
    print(f"loaded {len(faces)} {args.split} frames in {load_s:.1f} s ({mb:.0f} MB decoded)")
    ds = LandmarkDataset(faces, args.img_size, augment=not args.no_augment)
    if args.profile:
        stages = profile(ds)
        total = sum(stages.values())
        parts = ", ".join(f"{k} {v:.3f}" for k, v in stages.items())
        print(f"per sample (ms): {parts}; total {total:.3f} -> {1000 / total:.0f} samples/s/core")
    mode = "augmented" if not args.no_augment else "plain"
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for w in args.workers:
        rate, per_cpu = bench_loader(ds, w, args.batch_size, args.samples)
        extra = f" ({per_cpu:.0f} per CPU-second)" if w == 0 else ""
        print(f"workers={w}: {rate:7.0f} {mode} samples/s at {args.img_size} px{extra}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
