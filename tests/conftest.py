"""Shared fixtures: every test runs with FACEMARK_HOME in a fresh temporary folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

SHARED_ZIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "P1_Facial_Keypoints-master.zip"


@pytest.fixture(autouse=True)
def facemark_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point all user folders at a temporary FACEMARK_HOME so tests never touch the real ones."""
    home = tmp_path_factory.mktemp("facemark-home")
    monkeypatch.setenv("FACEMARK_HOME", str(home))
    return home


@pytest.fixture
def shared_zip() -> Path:
    """The real dataset archive beside the checkout; skips when it is not there."""
    if not SHARED_ZIP.is_file():
        pytest.skip(f"real dataset archive not found at {SHARED_ZIP}")
    return SHARED_ZIP
