"""The one registry of models and detectors (facemark.registry), and the torch-free arch
parser (facemark.models.arch)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from facemark import registry
from facemark.detectors import Detections, Detector, DetectorConfig
from facemark.errors import UsageError
from facemark.hub import load_detector


class FakeDetector(Detector):
    """A backend that needs no weights and finds no face."""

    name = "fake"

    def detect_batch(self, images, names=None, sizes=None) -> list[Detections]:
        return [Detections.empty() for _ in images]


def test_a_detector_registered_with_one_line_is_found_by_name() -> None:
    entry = registry.register(registry.Entry("fake", registry.Backend("detector", FakeDetector)))
    try:
        detector = load_detector("fake", config=DetectorConfig(threshold=0.3))
        assert isinstance(detector, FakeDetector) and detector.config.threshold == 0.3
        assert len(detector.detect(np.zeros((8, 8, 3), np.uint8))) == 0
        with pytest.raises(ValueError, match="already registered: fake"):
            registry.register(entry)
    finally:
        registry.unregister(entry)
    with pytest.raises(UsageError, match="unknown detector model 'fake'"):
        load_detector("fake")


def test_the_bundled_names_are_derived_from_the_registry() -> None:
    assert {task: registry.bundled(task) for task in ("landmarks", "detector")} == {
        "landmarks": {"default": "landmarks.pt", "default-int8": "landmarks-int8.pt"},
        "detector": {
            "default": "yunet_n.pt",
            "yunet": "yunet_n.pt",
            "yunet_n": "yunet_n.pt",
            "yunet_s": "yunet_s.pt",
            "facemark": "detector.pt",
        },
    }
    assert list(registry.bundled("detector")) == [
        "default",
        "yunet",
        "yunet_n",
        "yunet_s",
        "facemark",
    ]


def test_checkpoints_go_to_the_backend_of_their_arch() -> None:
    from facemark.detectors import yunet
    from facemark.detectors.facemark import FacemarkDetector
    from facemark.landmarker import Landmarker

    def runner(task: str, arch: str) -> object:
        return registry.load(registry.backend_for(task, arch).runner)

    assert runner("detector", yunet.ARCH) is yunet.YuNetDetector
    assert runner("detector", "facedet") is FacemarkDetector
    assert runner("detector", "anything-else") is FacemarkDetector
    assert runner("landmarks", "heatmap") is Landmarker


def test_the_registry_and_the_arch_parser_import_no_torch() -> None:
    code = (
        "import sys\n"
        "from facemark import hub, registry\n"
        "from facemark.models.arch import parse_arch\n"
        "from facemark import models\n"
        "assert models.parse_arch('heatmap:stride=16')[1] == {'stride': 16}\n"
        "assert hub.resolve_model and registry.find('yunet', 'detector')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
