"""Landmarks on real photos: facemark models against dlib on the wild68 validation split.

    python benchmarks/bench_wild.py --models default,old=path/to/landmarks.pt \
        [--wild ../shared/data/wild68-train] [--dlib-python /tmp/dlib-venv/bin/python]

Writes ``benchmarks/results/wild.json`` and ``docs/wild-benchmark.md``.  The sets:

* **wild val**: the faces of ``wild68-train`` (HELEN train + half of AFW, 300-W markup) that
  ``facemark train --data ... --val-by photo`` holds out (10 % of the photos, seed 0), never
  trained on by facemark; **dlib's 68-point model was trained on 300-W, these photos
  included**, so its row here is an upper bound for dlib, not a held-out figure;
* the Udacity **val** (held-out persons) and **test** frames, as in docs/benchmarks.md.

facemark's models are scored by ``facemark.evaluate`` with ground-truth boxes (landmark
accuracy alone) and end to end with the bundled detector (YuNet and every check annotate
applies: a face rejected counts as missed); dlib end to end with its own HOG detector
(upsample 1) and shape predictor.  Per set: NME_io over the faces found, FR@0.10 and AUC@0.10
with misses as failures, faces missed, NME by region and by yaw bin (``metrics.YAW_BINS``).
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from benchmarks import dlib_runner, ours, report, scoring  # noqa: E402

from facemark import hub, metrics  # noqa: E402
from facemark.data import load_faces, load_split, split_faces  # noqa: E402
from facemark.files import sha256_file  # noqa: E402
from facemark.hub import load_detector  # noqa: E402

DEFAULT_WILD = ROOT.parent / "shared" / "data" / "wild68-train"
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "wild.json"
DEFAULT_MD = ROOT / "docs" / "wild-benchmark.md"
#: The split ``train --data ... --val-by photo`` makes with its defaults.
VAL_FRACTION, SEED = 0.1, 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="default", help="NAME=SPEC or SPEC, comma-separated")
    ap.add_argument("--wild", type=Path, default=DEFAULT_WILD)
    ap.add_argument("--dlib-python", default=str(dlib_runner.DEFAULT_PYTHON))
    ap.add_argument("--sets", default="wild_val,udacity_val,udacity_test")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out-json", type=Path, default=DEFAULT_JSON)
    ap.add_argument("--out-md", type=Path, default=DEFAULT_MD)
    return ap.parse_args(argv)


def load_sets(wild: Path, wanted: list[str]) -> dict[str, Any]:
    sets: dict[str, Any] = {}
    if "wild_val" in wanted:
        faces = load_faces(wild)
        sets["wild_val"] = split_faces(faces, VAL_FRACTION, SEED, val_by="photo")[1]
    for split in ("val", "test"):
        if f"udacity_{split}" in wanted:
            sets[f"udacity_{split}"] = load_split(split)
    return sets


def _group_nme(per_image: list[float | None], groups: list[Any]) -> dict[Any, dict[str, Any]]:
    """Faces and NME_io over the faces found (None: missed), per group label, sorted."""
    out: dict[Any, dict[str, Any]] = {}
    for group in sorted(set(groups)):
        vals = [v for v, g in zip(per_image, groups, strict=True) if g == group]
        found = [v for v in vals if v is not None]
        out[group] = {"faces": len(vals), "nme_io": float(np.mean(found)) if found else None}
    return out


def by_yaw(per_image: list[float | None], gt: np.ndarray) -> list[dict[str, Any]]:
    """NME_io (faces found) and faces per yaw bin of the true points."""
    bins = [int(b) for b in metrics.bin_index(metrics.yaw_proxy(gt), metrics.YAW_BINS)]
    groups = _group_nme(per_image, bins)
    empty = {"faces": 0, "nme_io": None}
    return [groups.get(k, empty) for k in range(len(metrics.YAW_BINS) - 1)]


def by_folder(per_image: list[float | None], names: list[str]) -> dict[str, dict[str, Any]]:
    """NME_io (faces found) and faces per source folder (``helen_train``, ``afw_train``): the
    held-back evaluation scores HELEN-test-like and AFW-like photos apart."""
    return _group_nme(per_image, [n.split("/")[0] if "/" in n else "" for n in names])


def low_confidence_rule(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per facemark model, the rule ``facemark.confidence.LOW_CONFIDENCE`` is set by: the
    2nd percentile of its mean confidence over the validation faces (Udacity val and wild
    val pooled, ground-truth boxes), with the faces under it and their NME against the rest.

    Re-run with a new bundled model, this gives the value to put in ``LOW_CONFIDENCE``.
    """
    out: dict[str, dict[str, Any]] = {}
    pooled: dict[str, tuple[list[float], list[float]]] = {}
    for row in rows:
        if row["boxes"] == "gt" and row["set"] in ("wild_val", "udacity_val"):
            conf, nme = pooled.setdefault(row["model"], ([], []))
            pairs = zip(row.get("per_image_confidence") or [], row.get("per_image_nme") or [],
                        strict=True)  # fmt: skip
            for c, e in pairs:
                if c is not None and e is not None:
                    conf.append(c)
                    nme.append(e)
    for model, (conf, nme) in pooled.items():
        if not conf:
            continue
        c, e = np.asarray(conf), np.asarray(nme)
        p02 = float(np.percentile(c, 2))
        below = c < round(p02, 2)
        out[model] = {
            "faces": len(c),
            "p02": p02,
            "threshold": round(p02, 2),
            "below": int(below.sum()),
            "nme_io_below": float(e[below].mean()) if below.any() else None,
            "nme_io_rest": float(e[~below].mean()),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    specs = [m.strip() for m in args.models.split(",") if m.strip()]
    models, files = {}, {}
    for spec in specs:
        name, _, path = spec.partition("=") if "=" in spec else (spec, "", spec)
        source = hub.resolve_model(path or name, "landmarks")
        models[name] = hub.load_model(source, "cpu")
        files[name] = sha256_file(source)  # which weights these rows are of
    detector = load_detector("default", "cpu")
    sets = load_sets(args.wild, args.sets.split(","))
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for set_name, faces in sets.items():
        print(f"{set_name}: {len(faces)} faces", file=sys.stderr, flush=True)
        for boxes in ("gt", "detect"):
            for model, summary in ours.accuracy(models, faces, boxes, detector).items():
                rows.append({"set": set_name, "model": model, "boxes": boxes, **summary})
        try:
            dlib_runner.probe(args.dlib_python)
            answer = dlib_runner.run(args.dlib_python, faces.images, detect=True, upsample=1)
            found = [
                None if d is None else d["keypoints"]
                for d in dlib_runner.matched(answer, faces.keypoints)
            ]
            rows.append(
                {"set": set_name, "model": "dlib", "boxes": "detect",
                 **scoring.score(found, faces.keypoints)}
            )  # fmt: skip
        except dlib_runner.DlibUnavailable as exc:
            notes.append(f"dlib skipped: {exc}")
    low_confidence = low_confidence_rule(rows)
    for row in rows:
        gt = sets[row["set"]].keypoints
        per_image = row.pop("per_image_nme", []) or []
        row["yaw"] = by_yaw(per_image, gt)
        row["folders"] = by_folder(per_image, list(sets[row["set"]].names))
        row.pop("per_image_confidence", None)
    results = {
        "date": started,
        "command": "python benchmarks/bench_wild.py " + " ".join(argv or sys.argv[1:]),
        "sets": {k: len(v) for k, v in sets.items()},
        "model_sha256": files,
        "rows": rows,
        "low_confidence": low_confidence,
        "notes": sorted(set(notes)),
        "machine": report.cpu_name(),
    }
    report.write_outputs(results, args.out_json, args.out_md, markdown, print)
    return 0


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def markdown(results: dict[str, Any]) -> str:
    from benchmarks.report import table

    lines = [
        "# Landmarks on real photos",
        "",
        f"Generated by `{results['command']}` on {results['date']}.",
        "",
        "wild val: the held-out photos of wild68-train (300-W markup of HELEN train and half of "
        "AFW; 10 % of the photos, seed 0, as `train --val-by photo` splits them). **dlib's "
        "model was trained on 300-W, these photos included**: its wild val row is not a "
        "held-out figure. Udacity val/test: the video frames of docs/benchmarks.md. `gt`: "
        "crops from the true points; `detect`: end to end with each tool's own detector "
        "(facemark: YuNet and annotate's checks), a missed face counted as a failure in FR "
        "and AUC. NME_io in % of the outer-eye-corner distance, over the faces found.",
        "",
    ]
    for set_name, n in results["sets"].items():
        rows = [r for r in results["rows"] if r["set"] == set_name]
        lines += [f"## {set_name} ({n} faces)", ""]
        lines += table(
            ["model", "boxes", "NME_io %", "FR@0.10 %", "AUC@0.10", "missed", "jaw", "brows",
             "nose", "eyes", "mouth"],
            [
                [r["model"], r["boxes"], _pct(r["nme_io"]), _pct(r["fr_10"]),
                 f"{r['auc_10']:.3f}" if r["auc_10"] is not None else "–", str(r["missed"])]
                + [_pct((r.get("regions") or {}).get(k))
                   for k in ("jaw", "brows", "nose", "eyes", "mouth")]
                for r in rows
            ],
        )  # fmt: skip
        pairs = zip(metrics.YAW_BINS, metrics.YAW_BINS[1:], strict=False)
        edges = [f"{lo:g}-{hi:g}" if hi != float("inf") else f">={lo:g}" for lo, hi in pairs]
        lines += ["", "By yaw (nose-tip offset / eye distance; faces per bin):", ""]
        lines += table(
            ["model", "boxes"] + [f"{e} ({b['faces']})" for e, b in zip(edges, rows[0]["yaw"],
                                                                      strict=True)],
            [[r["model"], r["boxes"]] + [_pct(b["nme_io"]) for b in r["yaw"]] for r in rows],
        )  # fmt: skip
        folders = list((rows[0].get("folders") or {}).items())
        if len(folders) > 1:
            lines += ["", "By source folder (faces):", ""]
            lines += table(
                ["model", "boxes"] + [f"{f} ({v['faces']})" for f, v in folders],
                [[r["model"], r["boxes"]] + [_pct(r["folders"][f]["nme_io"]) for f, _ in folders]
                 for r in rows],
            )  # fmt: skip
        lines.append("")
    rule = results.get("low_confidence") or {}
    if rule:
        lines += [
            "## Low-confidence threshold",
            "",
            "The rule `facemark.confidence.LOW_CONFIDENCE` is set by: the 2nd percentile of a "
            "model's mean point confidence over the validation faces (Udacity val and wild val, "
            "ground-truth boxes), rounded to 0.01; the faces under it and their NME_io against "
            "the rest's.",
            "",
        ]
        lines += table(
            ["model", "faces", "2nd percentile", "threshold", "faces below", "NME_io below %",
             "NME_io rest %"],
            [[m, str(r["faces"]), f"{r['p02']:.3f}", f"{r['threshold']:.2f}", str(r["below"]),
              _pct(r["nme_io_below"]), _pct(r["nme_io_rest"])] for m, r in rule.items()],
        )  # fmt: skip
        lines.append("")
    if results["notes"]:
        lines += ["## Notes", ""] + [f"- {n}" for n in results["notes"]] + [""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
