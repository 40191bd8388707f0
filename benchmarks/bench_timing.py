"""Timing by repeated full passes (stdlib only: ``dlib_baseline.py`` imports it in dlib's venv).

A figure is one full pass over the images divided by the number of images (or faces); the pass
is repeated and the median pass reported, so a neighbour's burst of CPU use on a shared machine
does not decide the result.  All passes are kept so the spread can be checked.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_pass(fn: Callable[[], object], repeats: int, count: int, per: float = 1000.0) -> dict:
    """Run ``fn`` ``repeats`` times; median and all of ``per * seconds / count`` (ms per item)."""
    if repeats < 1 or count < 1:
        raise ValueError(f"need repeats >= 1 and count >= 1, got {repeats}, {count}")
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(per * (time.perf_counter() - t0) / count)
    return {"median": statistics.median(runs), "runs": runs}


def interleaved(
    passes: dict[str, Callable[[], object]], repeats: int, count: int, warmup: int = 3
) -> dict[str, float]:
    """Median ms per item of each pass, the passes taking turns call by call (``warmup``
    untimed rounds first), so a load that drifts on a shared machine reaches them alike."""
    for _ in range(warmup):
        for fn in passes.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in passes}
    for _ in range(repeats):
        for name, fn in passes.items():
            t = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t) * 1000.0 / count)
    return {name: statistics.median(v) for name, v in times.items()}


def per_second(ms: float) -> float:
    """Items per second from milliseconds per item."""
    return 1000.0 / ms if ms > 0 else float("inf")


def merge(rounds: list[dict]) -> dict:
    """One timing dict from several rounds of the same measurement.

    Every ``<figure>_runs`` list is concatenated and ``<figure>`` becomes the median of all of
    them; other keys are taken from the first round; ``rounds`` says how many were merged.
    """
    if not rounds:
        raise ValueError("nothing to merge")
    out = dict(rounds[0])
    for key in [k for k in out if k.endswith("_runs")]:
        runs = [v for r in rounds for v in r.get(key, [])]
        out[key] = runs
        out[key[: -len("_runs")]] = statistics.median(runs)
    if "pipeline_ms_per_image" in out:
        out["pipeline_images_per_s"] = per_second(out["pipeline_ms_per_image"])
    out["rounds"] = len(rounds)
    return out
