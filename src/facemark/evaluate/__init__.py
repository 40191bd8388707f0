"""``facemark evaluate``: standard 68-point metrics for one or several landmark models.

The figures are the 300-W conventions (:mod:`facemark.metrics`): NME normalised by the outer
eye corners, failure rate and CED area under 0.08 and 0.10, and NME per facial region, plus the
inference cost per face.  Two ways to get the face box isolate two questions:

* ``boxes="gt"`` crops from the true keypoints (:func:`transforms.face_box_from_keypoints`),
  exactly as training does, so the figures measure the landmark model alone;
* ``boxes="detect"`` uses the face detector, as ``annotate`` does, so they measure the whole
  pipeline.  An image where no detection contains the centroid of the true keypoints is a
  *miss*: it counts as a failure in FR and AUC (its NME is infinite) and is reported, but it
  cannot enter the mean NME, which is over the faces that were found.

Everything returns plain dicts and lists so benchmarks and notebooks can call
:func:`evaluate_models` / :func:`evaluate_model` without the CLI; the CLI only prints them.

This package gathers the public names of its modules, one concern each: ``frames`` (which
frames and val split), ``boxes`` (gt boxes or the matching detection), ``prediction``,
``timing`` and ``threads`` (the cost per face and the torch threads behind it), ``scoring``
and ``subsets`` (the figures), ``evaluation`` (one model's result as a dict), ``one_model``,
``orchestrate`` (:func:`evaluate_models`), ``command`` (:func:`evaluate`: what the CLI
asks for, checked once), ``report`` (the files of ``--report``), ``tables`` (what the CLI
prints) and ``progress``.
"""

from __future__ import annotations

from facemark.evaluate.boxes import BOX_MODES, face_boxes, match_detection
from facemark.evaluate.command import evaluate
from facemark.evaluate.evaluation import Evaluation
from facemark.evaluate.frames import (
    SPLITS,
    VAL_DEFAULTS,
    load_labeled,
    load_split,
    split_settings_from_config,
)
from facemark.evaluate.one_model import run_evaluation
from facemark.evaluate.orchestrate import (
    BATCH_SIZE,
    evaluate_model,
    evaluate_models,
    evaluate_sources,
)
from facemark.evaluate.prediction import predict_faces
from facemark.evaluate.report import (
    MODEL_COLORS,
    TRUE_COLOR,
    worst_indices,
    write_ced_plot,
    write_per_image_csv,
    write_report,
    write_subsets_csv,
    write_worst_gallery,
)
from facemark.evaluate.scoring import confidence_quartile, confidence_vs_error, score
from facemark.evaluate.subsets import SIZE_BINS, subset_scores
from facemark.evaluate.tables import (
    CONFIDENCE_ROWS,
    SUBSET_GROUPS,
    confidence_table,
    regions_table,
    result_notes,
    results_table,
    subsets_tables,
)
from facemark.evaluate.timing import TIMING_BATCHES, time_inference

# Pieces from facemark.metrics that evaluate's public API has always offered.
from facemark.metrics import YAW_BINS, average_ranks, bin_index, spearman, yaw_proxy

__all__ = [
    "evaluate",
    "BATCH_SIZE",
    "BOX_MODES",
    "CONFIDENCE_ROWS",
    "MODEL_COLORS",
    "SIZE_BINS",
    "SPLITS",
    "SUBSET_GROUPS",
    "TIMING_BATCHES",
    "TRUE_COLOR",
    "VAL_DEFAULTS",
    "YAW_BINS",
    "Evaluation",
    "bin_index",
    "confidence_quartile",
    "confidence_table",
    "confidence_vs_error",
    "evaluate_model",
    "evaluate_models",
    "evaluate_sources",
    "face_boxes",
    "load_labeled",
    "load_split",
    "match_detection",
    "predict_faces",
    "regions_table",
    "result_notes",
    "results_table",
    "run_evaluation",
    "score",
    "split_settings_from_config",
    "subset_scores",
    "subsets_tables",
    "time_inference",
    "worst_indices",
    "write_ced_plot",
    "write_per_image_csv",
    "write_report",
    "write_subsets_csv",
    "write_worst_gallery",
    "yaw_proxy",
    "spearman",
    "average_ranks",
]
