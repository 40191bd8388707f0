"""The animal photos (``../shared/data/nonhuman``) and how they are split.

The faceness head is fitted on part of them and judged on the rest; the split keeps whole
sources together (the source repository, and the species folder of the monkey set), so the
validation animals are other breeds, species and photographers than the training ones.
``tools/train_faceness.py`` and ``benchmarks/bench_detector.py`` both split here.
"""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "nonhuman"
#: Share of the animal photos held out for validation (whole source groups).
VAL_SHARE = 0.3


def animal_group(source: str) -> str:
    """Source repository, plus the species folder (``n3``) for the monkey set."""
    repo = source.split("@", 1)[0]
    species = re.search(r"/(n\d)/", source)
    return f"{repo}:{species.group(1)}" if species else repo


def split_animals(folder: Path, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """(train, val) photos, whole source groups to each side; a group of more than a quarter
    of the photos always trains (holding it out would leave too little of its kind)."""
    with open(Path(folder) / "manifest.tsv", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    counts: dict[str, int] = {}
    for r in rows:
        counts[animal_group(r["source"])] = counts.get(animal_group(r["source"]), 0) + 1
    order = sorted(counts, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    val_groups: set[str] = set()
    for group in order:
        if sum(counts[v] for v in val_groups) >= VAL_SHARE * len(rows):
            break
        if counts[group] <= 0.25 * len(rows):
            val_groups.add(group)
    train = [Path(folder) / r["file"] for r in rows if animal_group(r["source"]) not in val_groups]
    val = [Path(folder) / r["file"] for r in rows if animal_group(r["source"]) in val_groups]
    return train, val
