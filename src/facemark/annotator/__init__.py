"""``annotate``: photos in; every face's box and 68 keypoints out.

``facemark.annotate(inputs, out=None, ...)`` returns one :class:`~facemark.results.ImageResult`
per image, whose ``to_dict()`` is::

    {"image": "photos/a.jpg", "width": 640, "height": 480,
     "faces": [{"box": [x0, y0, x1, y1], "score": 0.98,
                "keypoints": [[x, y], ... 68], "confidence": [c0, ... c67],
                "low_confidence": False, "pose": {...}}]}

in pixels of the image as a viewer shows it (EXIF orientation applied), coordinates rounded to
two decimals.  With ``out`` it also writes ``annotations.jsonl`` (one such line per image) and,
as asked, annotated copies, a dataset-style CSV, a COCO keypoints JSON, a Parquet table
and iBUG ``.pts`` files.  See docs/annotate.md.

How a run is organised, and why:

* Inputs are collected and de-duplicated first, and every output name is planned from the
  whole collection (paths relative to the inputs' common folder), so shards of one collection
  never collide and an output can be checked against every input before anything is written.
* Images are decoded once, in background threads a few batches ahead of the models; the
  detector runs on a batch of images, the landmark model on all faces of that batch.
* Annotated copies and ``.pts`` files are written by a background thread; an image's JSONL
  line is appended only after its files exist, so ``--skip-existing`` (which trusts the JSONL)
  can resume an interrupted run without leaving holes.
* A file that cannot be read is a warning and a count, never the end of the run.

The package's modules, one concern each: ``inputs`` (what to annotate, output names,
shards), ``config`` (:class:`AnnotateConfig` and the models it loads), ``decoding`` (the
decode threads), ``outputs`` (the files of a run), ``run`` (the run and :func:`annotate`)
and ``report`` (:class:`Summary`, progress bar, closing table).
"""

from __future__ import annotations

from facemark.annotator.config import AnnotateConfig, load_marker
from facemark.annotator.decoding import available_cpus
from facemark.annotator.inputs import (
    IMAGE_SUFFIXES,
    InputImage,
    collect_inputs,
    has_image_suffix,
    parse_shard,
    plan_output_names,
    select_shard,
    shard_of,
)
from facemark.annotator.outputs import (
    DEFAULT_OUT,
    JSONL_NAME,
    Layout,
    check_output,
    draw_overlay,
    mark_output,
    merge_records,
    recorded_images,
    write_csv,
    write_pts,
)
from facemark.annotator.report import Summary, progress_bar, summary_table
from facemark.annotator.run import AnnotateWarning, annotate, run
from facemark.files import OUTPUT_MARKER

__all__ = [
    "DEFAULT_OUT",
    "IMAGE_SUFFIXES",
    "JSONL_NAME",
    "OUTPUT_MARKER",
    "AnnotateConfig",
    "AnnotateWarning",
    "InputImage",
    "Layout",
    "Summary",
    "annotate",
    "available_cpus",
    "check_output",
    "collect_inputs",
    "draw_overlay",
    "has_image_suffix",
    "load_marker",
    "mark_output",
    "merge_records",
    "parse_shard",
    "plan_output_names",
    "progress_bar",
    "recorded_images",
    "run",
    "select_shard",
    "shard_of",
    "summary_table",
    "write_csv",
    "write_pts",
]
