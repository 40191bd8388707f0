"""What a face's landmark confidence says, decided in one place.

The landmark model gives each of the 68 points a confidence in [0, 1]; a face's figure is
the mean over its points.  Three decisions read it, all through :func:`confident`:

* ``confirm`` (:class:`~facemark.detectors.DetectorConfig`): a detection is a face at all
  (applied by :class:`~facemark.pipeline.FaceMarker` and the video tracker);
* ``min_confidence`` (annotate's ``--min-confidence``, off by default): a face's points are
  good enough to keep;
* :data:`LOW_CONFIDENCE`: every face record's ``low_confidence`` flag.

Numpy only: the CLI and the video module import it without torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from facemark.errors import UsageError, option

#: A face whose mean confidence is below this is flagged ``low_confidence``: the 2nd
#: percentile of the bundled model's mean confidence on its validation faces (gt boxes),
#: rounded; ``benchmarks/bench_wild.py`` computes it for every model it scores.  For the
#: 160 px model trained on video frames and real photos: 0.852 over the 360 Udacity val
#: frames and 116 wild68 val faces; the 10 faces below it have a mean NME_io of 5.39 % against
#: 3.95 % for the rest (docs/wild-benchmark.md).  Another model's confidences may sit elsewhere.
LOW_CONFIDENCE = 0.85


def mean_confidence(confidence: Any) -> float:
    """A face's mean per-point confidence (``confidence``: its 68 values)."""
    return float(np.asarray(confidence).mean())


def confident(confidence: Any, minimum: float | None) -> bool:
    """Whether a face's mean confidence reaches ``minimum`` (None: there is no minimum)."""
    return minimum is None or mean_confidence(confidence) >= minimum


def low_confidence(confidence: Any) -> bool:
    """A face's ``low_confidence`` flag: its mean confidence is below :data:`LOW_CONFIDENCE`."""
    return not confident(confidence, LOW_CONFIDENCE)


def check_minimum(value: float | None, field: str = "min_confidence") -> None:
    """A confidence threshold must be None or within [0, 1]: one clear line otherwise."""
    if value is not None and not 0.0 <= value <= 1.0:
        raise UsageError(f"{option(field)} must be between 0 and 1 (got {value})")
