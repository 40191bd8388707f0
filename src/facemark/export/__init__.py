"""``facemark export``: a landmark model or a face detector as ONNX or TorchScript, or a
landmark model as an int8 checkpoint (:func:`export_int8`, ``--format int8``).

The exported graph takes exactly what the torch network takes: ``float32 (B, 3, H, W)``, RGB,
values in [0, 1]; each network normalises inside, so the graph does too.  The batch is
dynamic; a detector's height and width are dynamic as well (multiples of 32).

What comes out:

* **landmarks** (default): the decoded prediction, ``keypoints (B, 68, 2)`` in pixels of the
  ``S x S`` face crop (pixel-index convention) and ``confidence (B, 68)`` in [0, 1]: the
  network and its ``decode`` traced together, which is what a deployer wants.  ``raw=True``
  exports the network's raw outputs instead (decoded by ``model.decode`` in
  :mod:`facemark.models`).  The crop itself (``transforms.crop_matrix``: a square around the
  face box centre, side ``max(w, h) * CROP_SCALE``) is not in the graph.
* **detectors**: the raw network outputs (YuNet's 12 tensors, facemark's heat and box maps).
  Decoding (priors, score calibration, thresholds, NMS, YuNet's box map) stays in facemark's
  Python code (:func:`facemark.detectors.yunet.decode_outputs`, :func:`facemark.detection.
  decode`); the numbers it needs (score threshold, box map, strides) are in the metadata.

Every file carries metadata (``facemark_version``, ``task``, ``arch``, ``input_size``, ...):
ONNX as ``metadata_props``, TorchScript as the extra file ``facemark.json``;
:func:`read_metadata` reads either.  After writing, the file is loaded back and compared
with torch on random inputs (the largest absolute difference of every output) and both are
timed.

ONNX goes through torch's TorchScript-based exporter by default (``dynamo=True``: the newer
``torch.export``-based one; see :mod:`facemark.export.onnx`).

One module per concern; this package only gathers their public names:

* :mod:`~facemark.export.options`: formats, constants, the checks of the options and of
  ``--out``;
* :mod:`~facemark.export.network`: the network a spec names, wrapped for export, with its
  metadata;
* :mod:`~facemark.export.onnx`, :mod:`~facemark.export.torchscript`: writing each format;
* :mod:`~facemark.export.readback`: an exported file's metadata, and running it;
* :mod:`~facemark.export.parity`: the comparison with torch and the timing;
* :mod:`~facemark.export.result`, :mod:`~facemark.export.exporter`: :func:`export_model`
  and what it returns;
* :mod:`~facemark.export.int8`: :func:`export_int8`;
* :mod:`~facemark.export.report`: the tables and notes the CLI prints.

The exporters are imported when something is exported, so the CLI reads the constants
without loading them (nor torch).
"""

from __future__ import annotations

from facemark.export.options import (
    DEFAULT_OPSET,
    DETECTOR_CHECK_HW,
    FORMATS,
    INPUT_NAME,
    INSTALL_HINT,
    INT8,
    LANDMARK_TIMING_BATCHES,
    METADATA_FILE,
    SUFFIXES,
    TOLERANCE,
)
from facemark.lazy import attach

#: The exporters, imported when something is exported (see facemark.lazy).
_LAZY: dict[str, str] = {
    "export_model": "facemark.export.exporter",
    "Int8Result": "facemark.export.int8",
    "export_int8": "facemark.export.int8",
    "split_crops": "facemark.export.int8",
    "Network": "facemark.export.network",
    "load_network": "facemark.export.network",
    "resolve": "facemark.export.network",
    "check_parity": "facemark.export.parity",
    "read_metadata": "facemark.export.readback",
    "runner": "facemark.export.readback",
    "int8_notes": "facemark.export.report",
    "int8_table": "facemark.export.report",
    "result_notes": "facemark.export.report",
    "results_table": "facemark.export.report",
    "ExportResult": "facemark.export.result",
    "Timing": "facemark.export.result",
}

__all__ = [
    "DEFAULT_OPSET",
    "DETECTOR_CHECK_HW",
    "FORMATS",
    "INPUT_NAME",
    "INSTALL_HINT",
    "INT8",
    "LANDMARK_TIMING_BATCHES",
    "METADATA_FILE",
    "SUFFIXES",
    "TOLERANCE",
    *_LAZY,
]

__getattr__, __dir__ = attach(globals(), _LAZY)
