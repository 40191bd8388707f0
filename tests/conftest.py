"""Shared fixtures: every test runs with FACEMARK_HOME in a fresh temporary folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

SHARED_ZIP = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "P1_Facial_Keypoints-master.zip"
)


@pytest.fixture(autouse=True)
def facemark_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
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


# --- local HTTP server (issue 2; reusable by any download test) ---


class LocalHTTPServer:
    """A stdlib HTTP server on 127.0.0.1 that can misbehave on purpose.

    ``files`` maps URL paths to bytes.  Knobs: ``send_length`` (omit Content-Length, as GitHub
    archives often do), ``ranges`` (honour ``Range: bytes=N-`` with 206), ``cut_next`` (that many
    next responses stop half-way and drop the connection), ``fail_next`` (that many next
    requests get HTTP 500).  ``requests`` records each request's path and Range header.
    """

    def __init__(self) -> None:
        import http.server
        import threading

        self.files: dict[str, bytes] = {}
        self.send_length = True
        self.ranges = True
        self.cut_next = 0
        self.fail_next = 0
        self.requests: list[dict[str, str | None]] = []
        state = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                state._answer(self)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, h) -> None:
        import re

        rng = h.headers.get("Range")
        self.requests.append({"path": h.path, "range": rng})
        if self.fail_next > 0:
            self.fail_next -= 1
            h.send_error(500, "synthetic failure")
            return
        body = self.files.get(h.path)
        if body is None:
            h.send_error(404, "Not Found")
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if match and self.ranges:
            start = int(match.group(1))
            if start >= len(body):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(body)}")
                h.end_headers()
                return
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            h.send_response(200)
        payload = body[start:]
        h.send_header("Content-Type", "application/zip")
        h.send_header("ETag", '"v1"')
        if self.send_length or self.cut_next > 0:
            h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        if self.cut_next > 0:
            self.cut_next -= 1
            payload = payload[: len(payload) // 2]
        h.wfile.write(payload)
        h.wfile.flush()
        h.close_connection = True


@pytest.fixture
def http_server():
    """A :class:`LocalHTTPServer`, shut down after the test."""
    server = LocalHTTPServer()
    yield server
    server.close()


@pytest.fixture
def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connection refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/archive.zip"


# --- tiny trained landmark checkpoint (issue 5; reusable by any test) ---


@pytest.fixture(scope="session")
def tiny_landmark_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``best.pt`` of a real 1-epoch ``facemark.train`` run on a synthetic dataset (CPU, ~10 s).

    Trained once per session in its own FACEMARK_HOME; the run folder beside it holds
    ``config.json`` and the other run records.  The model is barely trained: use it for
    plumbing (loading, shapes, files, CLI), not for accuracy.  Copy the run folder into a
    test's own ``paths.runs_dir()`` to use it by run name.
    """
    import io

    from rich.console import Console

    from facemark import train
    from synthetic import install_synthetic_dataset, tiny_train_config

    home = tmp_path_factory.mktemp("tiny-landmark-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACEMARK_HOME", str(home))
        root = install_synthetic_dataset(home / "dataset", n_train=24, n_test=6, size=96)
        cfg = tiny_train_config(root, "tiny")
        result = train.train(cfg, console=Console(file=io.StringIO()))
    return result.best_checkpoint


# --- tiny trained detector checkpoint (issue 6; reusable by any test) ---


@pytest.fixture(scope="session")
def tiny_detector_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``best.pt`` of a real 1-epoch ``facemark train --task detector`` run (CPU, ~12 s).

    Like :func:`tiny_landmark_checkpoint`: a real file of the real format, barely trained
    (it may find no face at the default threshold), for plumbing tests only.
    """
    import io

    from rich.console import Console

    from facemark import train
    from synthetic import install_synthetic_dataset, tiny_train_config

    home = tmp_path_factory.mktemp("tiny-detector-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACEMARK_HOME", str(home))
        root = install_synthetic_dataset(home / "dataset", n_train=24, n_test=6, size=96)
        cfg = tiny_train_config(root, "tiny-detector", task="detector", weight_decay=1e-4)
        result = train.train(cfg, console=Console(file=io.StringIO()))
    return result.best_checkpoint
