"""facemark's side of the benchmark: accuracy through ``facemark.evaluate``, speed through the
public API (``Landmarker.predict``, ``Detector.detect``, ``facemark.annotate``).

Speed is measured as one full pass over the images per call (``timings(..., repeats=1)``) so
the caller can interleave facemark's passes with dlib's: on a shared machine the load drifts,
and alternating the contenders exposes both to the same drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchmarks import scoring
from benchmarks.bench_timing import median_pass, per_second

from facemark import evaluate, transforms


def accuracy(
    models: dict[str, Any], faces: Any, boxes: str, detector: Any | None = None
) -> dict[str, dict[str, Any]]:
    """``{name: summary}`` for loaded landmark models on one FaceSet, via ``evaluate``.

    With ``boxes="detect"`` the detector runs with each model (its checks decide the faces).
    """
    if boxes == "detect" and detector is None:
        return {}
    result = evaluate.evaluate_models(
        list(models.values()),
        faces=faces,
        boxes=boxes,
        detector=detector,
        timing=False,
        per_image=True,
    )
    return {
        name: scoring.from_evaluation(s) for name, s in zip(models, result["models"], strict=True)
    }


def timings(
    landmarker: Any,
    detector: Any | None,
    images: Sequence[np.ndarray],
    gt: np.ndarray | None,
    paths: Sequence[str | Path],
    threads: int,
    repeats: int = 1,
) -> dict[str, Any]:
    """Landmarks ms/face (one face per call, ground-truth boxes), detection ms/image, and
    end-to-end ms/image through ``facemark.annotate`` (decode, detect, landmarks; no output).

    The passes mirror ``dlib_baseline.timings`` one for one, so the ratios compare like with
    like, except that ``annotate`` batches and decodes ahead as it does for users.  Without
    ``gt`` (unlabelled photos) the landmark pass is left out; without a detector, the others.
    """
    from facemark import annotator

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        result: dict[str, Any] = {"threads": threads, "images": len(images)}
        if gt is not None:
            boxes = transforms.face_box_from_keypoints(np.asarray(gt))

            def landmark_pass() -> None:
                for image, box in zip(images, boxes, strict=True):
                    landmarker.predict(image, box[None])

            with torch.inference_mode():
                landmark_pass()  # warm-up: first calls allocate memory and pick kernels
                lm = median_pass(landmark_pass, repeats, len(images))
            result.update(landmarks_ms_per_face=lm["median"], landmarks_ms_per_face_runs=lm["runs"])
        if detector is None:
            return result

        def detect_pass() -> None:
            for image in images:
                detector.detect(image)

        def pipeline_pass() -> None:
            annotator.annotate([str(p) for p in paths], None, model=landmarker, detector=detector)

        with torch.inference_mode():
            detect_pass()
            det = median_pass(detect_pass, repeats, len(images))
        pipe = median_pass(pipeline_pass, repeats, len(paths))
        result.update(
            detect_ms_per_image=det["median"],
            detect_ms_per_image_runs=det["runs"],
            pipeline_ms_per_image=pipe["median"],
            pipeline_ms_per_image_runs=pipe["runs"],
            pipeline_images_per_s=per_second(pipe["median"]),
        )
        return result
    finally:
        torch.set_num_threads(previous)
