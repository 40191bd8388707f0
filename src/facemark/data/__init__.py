"""Labelled faces: one data layer for every format ``--data`` reads.

Start at :func:`open_labels`: it reads a Udacity dataset root (or the installed dataset), a
folder of images with ``.pts`` files, an annotations JSONL, a COCO keypoints JSON or a
keypoints CSV, and its :class:`LabelSet` gives the train/val/test parts
(:meth:`LabelSet.split`) and the torch view (:meth:`LabelSet.landmark_dataset`)::

    from facemark.data import open_labels

    labels = open_labels("wild68-train")       # or None: the installed dataset
    train = labels.split("train")              # a FaceSet, split as config.SPLIT says
    val_ds = labels.landmark_dataset("val", 128, augment=False)

The modules, by concern (each imports its siblings, never this package):

* :mod:`~facemark.data.faces`: :class:`FaceSet` and how a set is split, subset and merged;
* :mod:`~facemark.data.decoding`: decoding many images on threads through
  :func:`facemark.images.load_image`, the project's one decoder;
* :mod:`~facemark.data.keypoints_csv`, :mod:`~facemark.data.pts`,
  :mod:`~facemark.data.records` (JSONL, COCO) and :mod:`~facemark.data.labels`: the formats;
* :mod:`~facemark.data.udacity` and :mod:`~facemark.data.decoded_cache`: the dataset root,
  its identity splits and its decoded-pixel cache;
* :mod:`~facemark.data.formats`: which format a path holds, loading and fingerprinting it;
* :mod:`~facemark.data.labelset`: :func:`open_labels`; :mod:`~facemark.data.sources`: the
  sources of a training run;
* :mod:`~facemark.data.torch_view`: :class:`LandmarkDataset`, the only module that needs
  torch (imported on first use, so ``import facemark.data`` stays torch-free);
* :mod:`~facemark.data.canvas` and :mod:`~facemark.data.canvas_parts`: the detector's
  synthetic training canvases.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from facemark.data.decoding import ImageReader, folder_reader
from facemark.data.faces import (
    MAX_COORDINATE,
    FaceSet,
    SkippedRow,
    concat_faces,
    describe,
    file_keys,
    identity_of,
    photo_key,
    points_inside,
    points_usable,
    report_skipped,
    split_faces,
    split_indices,
    split_unit,
)
from facemark.data.formats import (
    FORMAT_NAMES,
    FORMATS,
    detect_format,
    fingerprint,
    is_udacity,
    load_faces,
    read_labels,
)
from facemark.data.keypoints_csv import load_labeled_folder, read_keypoints_csv
from facemark.data.labels import Label, Labels, faces_from_labels, image_roots
from facemark.data.labelset import LabelSet, open_labels
from facemark.data.pts import IMAGE_SUFFIXES, read_pts, read_pts_folder
from facemark.data.records import read_coco_file, read_jsonl_files
from facemark.data.sources import (
    Source,
    as_sources,
    source_names,
    source_weights,
    training_fingerprint,
    training_sets,
    training_sources,
)
from facemark.data.udacity import (
    SPLITS,
    TEST_CSV,
    TEST_DIR,
    TRAIN_CSV,
    TRAIN_DIR,
    dataset_fingerprint,
    load_split,
    split_sizes,
)
from facemark.lazy import attach

if TYPE_CHECKING:
    from facemark.data.torch_view import LandmarkDataset

#: Names imported on first use (they need torch).
_LAZY = {"LandmarkDataset": "facemark.data.torch_view"}

__all__ = [
    "FORMATS",
    "FORMAT_NAMES",
    "IMAGE_SUFFIXES",
    "MAX_COORDINATE",
    "SPLITS",
    "TEST_CSV",
    "TEST_DIR",
    "TRAIN_CSV",
    "TRAIN_DIR",
    "FaceSet",
    "ImageReader",
    "Label",
    "LabelSet",
    "Labels",
    "LandmarkDataset",
    "SkippedRow",
    "Source",
    "as_sources",
    "concat_faces",
    "dataset_fingerprint",
    "describe",
    "detect_format",
    "faces_from_labels",
    "file_keys",
    "fingerprint",
    "folder_reader",
    "identity_of",
    "image_roots",
    "is_udacity",
    "load_faces",
    "load_labeled_folder",
    "load_split",
    "open_labels",
    "photo_key",
    "points_inside",
    "points_usable",
    "read_coco_file",
    "read_jsonl_files",
    "read_keypoints_csv",
    "read_labels",
    "read_pts",
    "read_pts_folder",
    "report_skipped",
    "source_names",
    "source_weights",
    "split_faces",
    "split_indices",
    "split_unit",
    "split_sizes",
    "training_fingerprint",
    "training_sets",
    "training_sources",
]


__getattr__, __dir__ = attach(globals(), _LAZY)
