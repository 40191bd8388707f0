"""Reproduce docs/benchmarks.md: accuracy, speed and training time of facemark against baselines.

    python benchmarks/run.py            # full run (writes docs/benchmarks.md, results JSON)
    python benchmarks/run.py --quick    # fewer repeats and fit frames, writes under results/

Compared on the same images, scored by the same code (:mod:`scoring` + ``facemark.metrics``):

* facemark's default landmark model with facemark's default detector (``--model``,
  ``--detector``: any spec ``facemark --model`` accepts);
* the Udacity P1 network trained with the same data and time budget (``--baseline``), with
  facemark's detector for the end-to-end rows, since it has none of its own;
* dlib's HOG detector + 68-point shape predictor, run in its own virtual environment
  (``--dlib-python``; see benchmarks/README.md).  Skipped, with the reason, when absent.

Each model is scored on the validation split (identity split, default seed) and the 160
labelled test frames, with ground-truth boxes (landmark accuracy alone) and with detector boxes
(end to end: a missed face counts as a failure).  Anything that cannot run (no such model, no
dlib) is skipped with its reason, which the report shows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from benchmarks import bench_timing, dlib_runner, ours, report, scoring  # noqa: E402
from rich.console import Console  # noqa: E402

from facemark import evaluate, paths, runs  # noqa: E402
from facemark.data import TEST_DIR, TRAIN_DIR, dataset_fingerprint, load_split  # noqa: E402
from facemark.errors import FacemarkError  # noqa: E402
from facemark.files import write_json  # noqa: E402

console = Console(stderr=True)

DOCS = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "benchmarks" / "results"
NOTES = ROOT / "benchmarks" / "notes.md"
SPLITS = ("val", "test")
BOXES = ("gt", "detect")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Benchmark facemark against the Udacity baseline and dlib.",
    )
    ap.add_argument("--model", default="default", help="landmark model spec (default: bundled)")
    ap.add_argument("--detector", default="default", help="face detector spec (default: bundled)")
    ap.add_argument("--baseline", default="udacity", help="Udacity baseline run or checkpoint")
    ap.add_argument(
        "--model-run",
        default=None,
        help="run folder/name that trained --model "
        "(for training time; default: found from the checkpoint)",
    )
    ap.add_argument("--baseline-run", default=None, help="run folder/name that trained --baseline")
    ap.add_argument(
        "--training-run",
        action="append",
        default=[],
        metavar="LABEL=RUN",
        help="another run for the training-time table, e.g. 'facemark on GPU=gpu-run' (repeatable)",
    )
    ap.add_argument(
        "--notes",
        type=Path,
        default=NOTES,
        help="markdown added to the report as its Notes section (default: "
        "benchmarks/notes.md when it exists)",
    )
    ap.add_argument(
        "--dlib-python",
        default=os.environ.get("FACEMARK_DLIB_PYTHON", str(dlib_runner.DEFAULT_PYTHON)),
        help="python of the dlib venv",
    )
    ap.add_argument("--data-root", default=None, help="dataset folder (default: the installed one)")
    ap.add_argument(
        "--photos",
        nargs="+",
        default=[],
        metavar="PATH",
        help="photos (files or folders) to time end to end as well, e.g. bigger real photos",
    )
    ap.add_argument("--quick", action="store_true", help="fewer repeats and fit frames (minutes)")
    ap.add_argument(
        "--repeats", type=int, default=None, help="timed passes per figure (5; quick 2)"
    )
    ap.add_argument(
        "--threads",
        default=None,
        help="torch thread counts to time facemark with (default 2,1)",
    )
    ap.add_argument(
        "--fit-frames",
        type=int,
        default=None,
        help="training frames for dlib's box map (all; quick 400)",
    )
    ap.add_argument(
        "--skip", default="", help="comma list of parts to skip: model,baseline,dlib,speed"
    )
    ap.add_argument(
        "--out-md",
        type=Path,
        default=None,
        help="report (docs/benchmarks.md; quick: benchmarks/results/quick.md)",
    )
    ap.add_argument(
        "--out-json",
        type=Path,
        default=None,
        help="raw figures (benchmarks/results/benchmarks.json; quick: quick.json)",
    )
    args = ap.parse_args(argv)
    args.repeats = args.repeats or (2 if args.quick else 5)
    args.threads = [int(t) for t in (args.threads or "2,1").split(",")]
    args.fit_frames = args.fit_frames if args.fit_frames is not None else (400 if args.quick else 0)
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = args.skip - {"model", "baseline", "dlib", "speed"}
    if unknown:
        ap.error(f"--skip knows model, baseline, dlib, speed; not {', '.join(sorted(unknown))}")
    pairs = [item.partition("=") for item in args.training_run]
    if any(not label.strip() or not run.strip() for label, _, run in pairs):
        ap.error("--training-run wants LABEL=RUN")
    args.training_run = [(label.strip(), run.strip()) for label, _, run in pairs]
    stem = "quick" if args.quick else "benchmarks"
    args.out_md = args.out_md or (RESULTS / "quick.md" if args.quick else DOCS)
    args.out_json = args.out_json or (RESULTS / f"{stem}.json")
    return args


# --------------------------------------------------------------------------- environment


def machine() -> dict[str, Any]:
    """What the timings were taken on: CPU, cores, memory, software, and how busy it was."""
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads_default": torch.get_num_threads(),
    }
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        names = [
            ln.split(":", 1)[1].strip()
            for ln in cpuinfo.splitlines()
            if ln.startswith("model name")
        ]
        info["cpu"] = names[0] if names else platform.processor()
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["memory_gib"] = round(int(mem) / 2**20, 1)
    except (OSError, IndexError, ValueError):
        info["cpu"] = platform.processor() or "unknown"
    if hasattr(os, "getloadavg"):
        info["load_avg_start"] = [round(v, 2) for v in os.getloadavg()]
    return info


def git_commit() -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (proc.stdout.strip() + ("-dirty" if dirty else "")) if proc.returncode == 0 else None


# --------------------------------------------------------------------------- data


class Images:
    """One split: the FaceSet (decoded images, ground truth) and the image files (for timing)."""

    def __init__(self, split: str, root: Path | None) -> None:
        self.split = split
        self.faces = load_split(split, root=root)
        self.gt = np.asarray(self.faces.keypoints, dtype=np.float64)
        base = Path(root) if root is not None else paths.dataset_dir()
        folder = TEST_DIR if split == "test" else TRAIN_DIR
        self.paths = [base / folder / n for n in self.faces.names]

    @property
    def images(self) -> list[np.ndarray]:
        return self.faces.images

    def __len__(self) -> int:
        return len(self.faces)


# --------------------------------------------------------------------------- accuracy


def dlib_accuracy(
    args: argparse.Namespace, sets: dict[str, Images], root: Path | None
) -> dict[str, Any]:
    """dlib on every split and box setting, after calibrating its ground-truth boxes."""
    versions = dlib_runner.probe(args.dlib_python)
    console.print(
        f"dlib {versions['dlib']} (dlib-bin {versions['dlib_bin']}): calibrating its boxes"
    )
    train = load_split("train", root=root)
    idx = np.arange(len(train))
    if args.fit_frames and args.fit_frames < len(idx):
        idx = np.sort(np.random.default_rng(0).choice(idx, args.fit_frames, replace=False))
    calibration = dlib_runner.calibrate(
        args.dlib_python, [train.images[i] for i in idx], np.asarray(train.keypoints)[idx]
    )
    console.print(
        f"  on {calibration['found']} of {calibration['frames']} training frames, dlib NME_io "
        + ", ".join(f"{k} boxes {100 * v['nme_io']:.2f}%" for k, v in calibration["check"].items())
    )
    rows = []
    for split, data in sets.items():
        console.print(f"dlib on {split} ({len(data)} frames)")
        boxes = dlib_runner.gt_box_for_dlib(calibration, data.gt)
        answer = dlib_runner.run(
            args.dlib_python, data.images, boxes=[[b] for b in boxes], detect=True
        )
        given = [rec["given"][0]["keypoints"] for rec in answer["images"]]
        found = [
            None if d is None else d["keypoints"] for d in dlib_runner.matched(answer, data.gt)
        ]
        rows.append(_row("dlib", split, "gt", scoring.score(given, data.gt)))
        rows.append(_row("dlib", split, "detect", scoring.score(found, data.gt)))
    return {"info": {**versions, "upsample": 1, "calibration": calibration}, "rows": rows}


def load_landmarkers(args: argparse.Namespace, results: dict[str, Any]) -> dict[str, Any]:
    """The facemark models that can be loaded, by row name; the others go to ``skipped``."""
    from facemark import checkpoint, hub

    loaded = {}
    for name, spec, part in (
        ("facemark", args.model, "model"),
        ("udacity", args.baseline, "baseline"),
    ):
        if part in args.skip:
            results["skipped"][name] = "skipped with --skip"
            continue
        try:
            path = hub.resolve_model(spec, "landmarks")
            payload = checkpoint.load_checkpoint(path, "landmarks")
            loaded[name] = hub.load_model(str(path))
        except (FacemarkError, ImportError) as exc:
            results["skipped"][name] = _reason(exc)
            console.print(f"[yellow]skipping {name}:[/] {_reason(exc)}")
            continue
        config = payload.get("config") or {}
        info = {
            "spec": spec,
            "checkpoint": str(path),
            "arch": payload.get("arch"),
            "img_size": payload.get("img_size"),
            "epoch": payload.get("epoch"),
        }
        split = {k: config.get(k) for k in ("val_fraction", "seed", "val_by") if k in config}
        if any(split.get(k, v) != v for k, v in evaluate.VAL_DEFAULTS.items()):
            info["warning"] = (
                f"trained with a different validation split {split}: its val rows "
                "include frames it trained on"
            )
        results["models"][name] = info
        run = args.model_run if name == "facemark" else args.baseline_run
        results["training"][name] = runs.describe(path, run)
        console.print(f"{name}: {path} ({payload.get('arch')})")
    return loaded


def load_detector(args: argparse.Namespace, results: dict[str, Any]) -> Any | None:
    from facemark import hub

    try:
        path = hub.resolve_model(args.detector, "detector")
        detector = hub.load_detector(str(path))
    except (FacemarkError, ImportError) as exc:
        results["skipped"]["detector"] = f"no detector-box rows for facemark models: {_reason(exc)}"
        console.print(f"[yellow]no detector:[/] {_reason(exc)}")
        return None
    results["models"]["detector"] = {"spec": args.detector, "checkpoint": str(path)}
    return detector


def _row(model: str, split: str, boxes: str, result: dict[str, Any]) -> dict[str, Any]:
    return {"model": model, "split": split, "boxes": boxes, **result}


# --------------------------------------------------------------------------- speed


def speed(
    args: argparse.Namespace,
    sets: dict[str, TimedSet],
    landmarkers: dict[str, Any],
    detector: Any | None,
    dlib_ok: bool,
) -> dict[str, dict[str, Any]]:
    """``{set: {contender: timings}}``, measured in interleaved rounds (see ours.py).

    The Udacity network has no detector, so it is timed on landmarks only (labelled sets).
    """
    rounds: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in range(args.repeats):
        console.print(f"timing round {r + 1} of {args.repeats}")
        for set_name, data in sets.items():
            if dlib_ok:
                answer = dlib_runner.run(
                    args.dlib_python, [], detect=False, timing_paths=data.paths, repeats=1
                )
                rounds.setdefault((set_name, "dlib@1"), []).append(
                    {"threads": 1, **answer["timing"]}
                )
            for name, landmarker in landmarkers.items():
                det = detector if name == "facemark" else None
                if det is None and data.gt is None:
                    continue
                for t in args.threads:
                    rounds.setdefault((set_name, f"{name}@{t}"), []).append(
                        ours.timings(landmarker, det, data.images, data.gt, data.paths, t)
                    )
    out: dict[str, dict[str, Any]] = {}
    for (set_name, key), timed in rounds.items():
        out.setdefault(set_name, {})[key] = bench_timing.merge(timed)
    return out


class TimedSet:
    """Images to time on: decoded, their files, and ground truth when labelled."""

    def __init__(self, images: list[np.ndarray], paths: list[Path], gt: np.ndarray | None) -> None:
        self.images, self.paths, self.gt = images, paths, gt


def photo_set(specs: list[str]) -> TimedSet:
    """Unlabelled photos from files and folders (``--photos``), decoded like annotate does."""
    from facemark import annotator, images

    files: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if annotator.has_image_suffix(p.name))
        elif path.is_file():
            files.append(path)
        else:
            raise FacemarkError(f"--photos: no such file or folder: {spec}")
    if not files:
        raise FacemarkError(f"--photos: no images in {', '.join(specs)}")
    return TimedSet([images.load_image(f) for f in files], files, None)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()
    root = Path(args.data_root) if args.data_root else None
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/run.py "
        + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "commit": git_commit(),
        "quick": args.quick,
        "settings": {
            "repeats": args.repeats,
            "threads": args.threads,
            "fit_frames": args.fit_frames,
        },
        "machine": machine(),
        "models": {},
        "skipped": {},
        "accuracy": [],
        "speed": {},
        "training": {},
    }
    try:
        photos = photo_set(args.photos) if args.photos else None
        sets = {s: Images(s, root) for s in SPLITS}
        results["data"] = {s: len(d) for s, d in sets.items()}
        results["data"]["fingerprint"] = dataset_fingerprint(root)
    except FacemarkError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 1
    console.print(f"data: {len(sets['val'])} val frames, {len(sets['test'])} test frames")

    landmarkers = load_landmarkers(args, results)
    detector = load_detector(args, results) if landmarkers else None
    for split, data in sets.items():
        for boxes in BOXES:
            if landmarkers and (boxes == "gt" or detector is not None):
                console.print(f"facemark models on {split}, {boxes} boxes")
                for name, row in ours.accuracy(landmarkers, data.faces, boxes, detector).items():
                    results["accuracy"].append(_row(name, split, boxes, row))

    dlib_ok = False
    if "dlib" in args.skip:
        results["skipped"]["dlib"] = "skipped with --skip"
    else:
        try:
            out = dlib_accuracy(args, sets, root)
            results["models"]["dlib"] = out["info"]
            results["accuracy"] += out["rows"]
            dlib_ok = True
        except dlib_runner.DlibUnavailable as exc:
            results["skipped"]["dlib"] = str(exc)
            console.print(f"[yellow]skipping dlib:[/] {exc}")

    if "speed" in args.skip:
        results["skipped"]["speed"] = "skipped with --skip"
    else:
        timed = {"test": TimedSet(sets["test"].images, sets["test"].paths, sets["test"].gt)}
        if args.photos:
            timed["photos"] = photos
            results["data"]["photos"] = [_rel(p) for p in photos.paths]
        if hasattr(os, "getloadavg"):
            results["machine"]["load_avg_timing"] = [round(v, 2) for v in os.getloadavg()]
        results["speed"] = speed(args, timed, landmarkers, detector, dlib_ok)

    for label, run_name in args.training_run:
        results["training"][label] = runs.describe(None, run_name)
    if args.notes and Path(args.notes).is_file():
        results["notes"] = Path(args.notes).read_text()

    if hasattr(os, "getloadavg"):
        results["machine"]["load_avg_end"] = [round(v, 2) for v in os.getloadavg()]
    results["elapsed_s"] = round(time.time() - started, 1)
    results["targets"] = report.targets(results)
    write_json(args.out_json, results)
    report.write_markdown(args.out_md, results, json_path=args.out_json)
    report.print_summary(results, Console())
    console.print(
        f"wrote {_rel(args.out_md)} and {_rel(args.out_json)} in {results['elapsed_s']:.0f} s"
    )
    return 0


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, FacemarkError) else f"{type(exc).__name__}: {exc}"


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
