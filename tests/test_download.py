"""fetch-data: the downloader, archive verification and the safe install.

Archives are tiny synthetic copies of the GitHub archive (tests/synthetic.py), served by the
local HTTP server from conftest.py; retries never sleep (DEFAULT_BACKOFF is set to 0).
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import stat
import struct
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from facemark import download, paths
from facemark.cli import app
from facemark.download import archive as download_archive
from facemark.download import disk, downloader
from facemark.errors import DataError, FacemarkError, NetworkError, UsageError
from synthetic import ARCHIVE_TOP, jpeg_bytes, make_dataset_zip, paint_face, random_keypoints

TOP = ARCHIVE_TOP + "/"
DATA = TOP + "data/"
N_TRAIN, N_TEST = 10, 4
EXTRA_TEST = "Zoe_Unlabeled_00.jpg"  # an image in data/test/ that no CSV row names


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(downloader, "DEFAULT_BACKOFF", 0.0)


@pytest.fixture(scope="module")
def good_zip_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A valid archive with 10 training, 4 labeled and 1 unlabeled test frames."""
    import numpy as np

    path = make_dataset_zip(
        tmp_path_factory.mktemp("zips") / "base.zip", n_train=N_TRAIN, n_test=N_TEST, size=64
    )
    rng = np.random.default_rng(1)
    extra = jpeg_bytes(paint_face(random_keypoints(rng, 64), 64, rng))
    return rezip(path.read_bytes(), add={DATA + "test/" + EXTRA_TEST: extra})


def rezip(
    src: bytes, *, drop: tuple[str, ...] = (), replace: dict | None = None, add: dict | None = None
) -> bytes:
    """A copy of archive ``src`` without ``drop``, with members replaced or added."""
    replace, add = replace or {}, add or {}
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(src)) as zin,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout,
    ):
        for info in zin.infolist():
            if info.filename in drop:
                continue
            zout.writestr(info, replace.get(info.filename, zin.read(info)))
        for name, data in add.items():  # name: str or a ZipInfo (to set link bits)
            zout.writestr(name, data)
    return out.getvalue()


def first_train_image(src: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(src)) as zf:
        names = [n for n in zf.namelist() if n.startswith(DATA + "training/")]
        return sorted(n for n in names if n.endswith(".jpg"))[0]


def csv_text(src: bytes, split: str = "training") -> str:
    with zipfile.ZipFile(io.BytesIO(src)) as zf:
        return zf.read(f"{DATA}{split}_frames_keypoints.csv").decode()


def with_csv_row(src: bytes, row_index: int, edit) -> bytes:
    """``src`` with training CSV row ``row_index`` (1 = first data row) rewritten by ``edit``."""
    lines = csv_text(src).splitlines()
    lines[row_index] = edit(lines[row_index])
    return rezip(src, replace={DATA + "training_frames_keypoints.csv": "\n".join(lines) + "\n"})


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def assert_one_line_error(result, *fragments: str) -> str:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    # retry notices are progress, on stderr like the bars; the error is one line after them
    lines = [line for line in result.stderr.strip().splitlines() if "; retrying in " not in line]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), lines[0]
    return lines[0]


def serve(server, data: bytes, path: str = "/master.zip") -> str:
    server.files[path] = data
    return server.url(path)


def assert_nothing_installed() -> None:
    data_dir = paths.data_dir()
    assert not paths.dataset_dir().exists()
    if data_dir.exists():
        assert [
            p.name for p in data_dir.iterdir() if p.name.startswith(".dataset.") and p.is_dir()
        ] == []


def installed_names(root: Path) -> set[str]:
    return {p.name for p in root.iterdir()}


# ----------------------------------------------------------------------------------------
# download_file
# ----------------------------------------------------------------------------------------

BLOB = bytes(range(256)) * 4000  # ~1 MB, several chunks


def test_download_verifies_sha256_and_leaves_no_part(http_server, tmp_path) -> None:
    url = serve(http_server, BLOB, "/blob.bin")
    dest = download.download_file(
        url, tmp_path / "x" / "blob.bin", expected_sha256=hashlib.sha256(BLOB).hexdigest()
    )
    assert dest.read_bytes() == BLOB
    assert sorted(p.name for p in dest.parent.iterdir()) == ["blob.bin"]


def test_download_without_content_length(http_server, tmp_path) -> None:
    http_server.send_length = False
    url = serve(http_server, BLOB, "/blob.bin")
    assert download.download_file(url, tmp_path / "blob.bin").read_bytes() == BLOB


def test_cut_connection_is_resumed_with_range(http_server, tmp_path) -> None:
    http_server.cut_next = 1
    url = serve(http_server, BLOB, "/blob.bin")
    sleeps: list[float] = []
    dest = download.download_file(url, tmp_path / "blob.bin", sleep=sleeps.append, backoff=0.5)
    assert dest.read_bytes() == BLOB
    first, second = (r["range"] for r in http_server.requests)
    assert first is None
    resumed_at = int(second.removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= len(BLOB) // 2  # continues from what had arrived, not from 0
    assert sleeps == [0.5]


def test_partial_file_from_an_earlier_run_is_resumed(http_server, tmp_path) -> None:
    url = serve(http_server, BLOB, "/blob.bin")
    dest = tmp_path / "blob.bin"
    part, meta = downloader._part_paths(dest)
    part.write_bytes(BLOB[:1000])
    meta.write_text(json.dumps({"url": url, "validator": '"v1"'}))
    assert download.download_file(url, dest).read_bytes() == BLOB
    assert http_server.requests[0]["range"] == "bytes=1000-"
    assert not part.exists() and not meta.exists()


def test_partial_file_is_discarded_when_server_ignores_range(http_server, tmp_path) -> None:
    http_server.ranges = False
    url = serve(http_server, BLOB, "/blob.bin")
    dest = tmp_path / "blob.bin"
    part, meta = downloader._part_paths(dest)
    part.write_bytes(b"stale bytes that must not end up in the file")
    meta.write_text(json.dumps({"url": url, "validator": None}))
    assert download.download_file(url, dest).read_bytes() == BLOB


def test_partial_file_of_another_url_is_not_spliced(http_server, tmp_path) -> None:
    url = serve(http_server, BLOB, "/blob.bin")
    dest = tmp_path / "blob.bin"
    part, meta = downloader._part_paths(dest)
    part.write_bytes(b"x" * 100)
    meta.write_text(json.dumps({"url": "http://elsewhere/blob.bin"}))
    assert download.download_file(url, dest).read_bytes() == BLOB
    assert http_server.requests[0]["range"] is None


def test_404_fails_at_once(http_server, tmp_path) -> None:
    with pytest.raises(NetworkError, match="HTTP 404"):
        download.download_file(http_server.url("/missing.zip"), tmp_path / "m.zip")
    assert len(http_server.requests) == 1
    assert list(tmp_path.iterdir()) == []


def test_server_errors_are_retried_with_exponential_backoff(http_server, tmp_path) -> None:
    http_server.fail_next = 2
    url = serve(http_server, BLOB, "/blob.bin")
    sleeps: list[float] = []
    dest = download.download_file(url, tmp_path / "b.bin", sleep=sleeps.append, backoff=1.0)
    assert dest.read_bytes() == BLOB
    assert sleeps == [1.0, 2.0]


def test_persistent_server_errors_give_up(http_server, tmp_path) -> None:
    http_server.fail_next = 100
    url = serve(http_server, BLOB, "/blob.bin")
    with pytest.raises(NetworkError, match=r"HTTP 500.*3 attempts"):
        download.download_file(url, tmp_path / "b.bin", retries=2)
    assert len(http_server.requests) == 3


def test_sha256_mismatch_deletes_the_partial_file(http_server, tmp_path) -> None:
    url = serve(http_server, BLOB, "/blob.bin")
    with pytest.raises(DataError, match="sha256"):
        download.download_file(url, tmp_path / "b.bin", expected_sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_file_url_is_copied(tmp_path) -> None:
    src = tmp_path / "src dir" / "blob.bin"
    src.parent.mkdir()
    src.write_bytes(BLOB)
    dest = download.download_file(src.as_uri(), tmp_path / "out" / "blob.bin")
    assert dest.read_bytes() == BLOB
    with pytest.raises(UsageError, match="no such file"):
        download.download_file((tmp_path / "nope.bin").as_uri(), tmp_path / "out" / "n.bin")


def test_unsupported_scheme(tmp_path) -> None:
    with pytest.raises(UsageError, match="unsupported URL"):
        download.download_file("ftp://example.org/x.zip", tmp_path / "x.zip")


def test_connection_refused_is_a_network_error(closed_port_url, tmp_path) -> None:
    with pytest.raises(NetworkError, match="connection refused"):
        download.download_file(closed_port_url, tmp_path / "x.zip", retries=1)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.ENOSPC, "disk full"),
        (errno.EACCES, "cannot write to"),
        (errno.EROFS, "cannot write to"),
    ],
)
def test_disk_errors_become_one_clear_message(tmp_path, code: int, expected: str) -> None:
    with pytest.raises(FacemarkError, match=expected) as info:
        with disk._disk_errors(tmp_path):
            raise OSError(code, os.strerror(code))
    assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)


# ----------------------------------------------------------------------------------------
# fetch-data: success paths
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("send_length", [True, False], ids=["content-length", "no-content-length"])
def test_fetch_over_http_installs_the_layout(
    http_server, good_zip_bytes, send_length: bool
) -> None:
    http_server.send_length = send_length
    result = run("fetch-data", "--url", serve(http_server, good_zip_bytes))
    assert result.exit_code == 0, result.output
    root = paths.dataset_dir()
    assert installed_names(root) == set(download.INSTALLED_FILES)
    assert len(list((root / "training").iterdir())) == N_TRAIN
    assert len(list((root / "test").iterdir())) == N_TEST + 1
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["counts"] == {"train": N_TRAIN, "test_labeled": N_TEST, "test_unlabeled": 1}
    assert manifest["sha256"] == hashlib.sha256(good_zip_bytes).hexdigest()
    assert manifest["archive_bytes"] == len(good_zip_bytes)
    assert manifest["source"].endswith("/master.zip")
    assert manifest["fingerprint"] == download.compute_fingerprint(root)
    assert {"installed_at", "facemark_version"} <= manifest.keys()
    assert "Dataset installed" in result.stdout and "Verifying images" not in result.stdout
    # the downloaded archive is not kept, and no partial file is left behind
    downloads = paths.cache_dir() / "downloads"
    assert not downloads.exists() or list(downloads.iterdir()) == []


def test_cut_connection_during_fetch_is_resumed(monkeypatch, http_server, good_zip_bytes) -> None:
    monkeypatch.setattr(downloader, "CHUNK_BYTES", 1024)  # so half an archive is a few chunks
    http_server.cut_next = 1
    result = run("fetch-data", "--url", serve(http_server, good_zip_bytes))
    assert result.exit_code == 0, result.output
    assert http_server.requests[1]["range"] not in (None, "bytes=0-")
    assert download.dataset_status()["intact"]


def test_zip_option_and_file_url(tmp_path, good_zip_bytes) -> None:
    archive = tmp_path / "my archive.zip"
    archive.write_bytes(good_zip_bytes)
    assert run("fetch-data", "--zip", str(archive)).exit_code == 0
    first = json.loads((paths.dataset_dir() / "manifest.json").read_text())
    assert first["source"] == archive.resolve().as_uri()
    result = run("fetch-data", "--force", "--url", archive.as_uri())
    assert result.exit_code == 0, result.output
    second = json.loads((paths.dataset_dir() / "manifest.json").read_text())
    assert second["source"] == archive.as_uri()
    assert second["fingerprint"] == first["fingerprint"]
    assert archive.read_bytes() == good_zip_bytes  # the input is never modified


def test_second_run_is_idempotent_and_quick(http_server, good_zip_bytes) -> None:
    url = serve(http_server, good_zip_bytes)
    assert run("fetch-data", "--url", url).exit_code == 0
    start = time.monotonic()
    result = run("fetch-data", "--url", url)
    assert result.exit_code == 0
    assert time.monotonic() - start < 5.0
    assert "already installed" in result.stdout
    assert len(http_server.requests) == 1  # nothing downloaded the second time
    # a mistyped --zip is an error even though nothing needs installing
    missing = run("fetch-data", "--zip", "nosuch.zip")
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    folder = run("fetch-data", "--zip", str(paths.dataset_dir()))
    assert folder.exit_code == 2 and "is a folder" in folder.stderr


def test_force_reinstalls(http_server, good_zip_bytes) -> None:
    url = serve(http_server, good_zip_bytes)
    assert run("fetch-data", "--url", url).exit_code == 0
    stray = paths.dataset_dir() / "stray.txt"
    stray.write_text("not part of the dataset")
    result = run("fetch-data", "--url", url, "--force")
    assert result.exit_code == 0, result.output
    assert len(http_server.requests) == 2 and not stray.exists()
    assert download.dataset_status()["intact"]


def test_damaged_install_is_reinstalled(http_server, good_zip_bytes) -> None:
    url = serve(http_server, good_zip_bytes)
    assert run("fetch-data", "--url", url).exit_code == 0
    next((paths.dataset_dir() / "training").iterdir()).unlink()
    status = download.dataset_status()
    assert not status["intact"] and "changed" in status["problem"]
    result = run("fetch-data", "--url", url)
    assert result.exit_code == 0 and "damaged" in result.stdout
    assert download.dataset_status()["intact"]


def test_keep_zip_keeps_the_archive_and_reuses_it(http_server, good_zip_bytes) -> None:
    url = serve(http_server, good_zip_bytes)
    result = run("fetch-data", "--url", url, "--keep-zip")
    assert result.exit_code == 0, result.output
    kept = download.cached_archive_path(url)
    assert kept.read_bytes() == good_zip_bytes
    del http_server.files["/master.zip"]  # a reinstall now works offline, from the cache
    result = run("fetch-data", "--url", url, "--force", "--keep-zip")
    assert result.exit_code == 0, result.output
    assert len(http_server.requests) == 1 and kept.is_file()
    # without --keep-zip the kept archive is used once more and then removed
    assert run("fetch-data", "--url", url, "--force").exit_code == 0
    assert not kept.exists()


def test_damaged_kept_archive_is_downloaded_again(http_server, good_zip_bytes) -> None:
    url = serve(http_server, good_zip_bytes)
    kept = download.cached_archive_path(url)
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip: no dataset inside
    result = run("fetch-data", "--url", url)
    assert result.exit_code == 0, result.output
    assert len(http_server.requests) == 1 and not kept.exists()


def test_leftovers_of_a_killed_install_are_removed(tmp_path, good_zip_bytes) -> None:
    leftover = paths.data_dir() / ".dataset.tmp-abc123"
    (leftover / "training").mkdir(parents=True)
    archive = tmp_path / "a.zip"
    archive.write_bytes(good_zip_bytes)
    assert run("fetch-data", "--zip", str(archive)).exit_code == 0
    assert not leftover.exists()


def test_library_api_returns_manifest_and_status(tmp_path, good_zip_bytes) -> None:
    assert download.dataset_status() is None
    archive = tmp_path / "a.zip"
    archive.write_bytes(good_zip_bytes)
    manifest = download.install_dataset(archive, source="test")
    status = download.dataset_status()
    assert status["intact"] and status["counts"] == manifest["counts"]
    again = download.fetch_dataset(zip_path=archive)
    assert again.already_installed and again.manifest["fingerprint"] == manifest["fingerprint"]


# ----------------------------------------------------------------------------------------
# fetch-data: every bad input is one line, a non-zero exit and nothing half-installed
# ----------------------------------------------------------------------------------------


def test_404_is_one_line_and_fast(http_server) -> None:
    start = time.monotonic()
    result = run("fetch-data", "--url", http_server.url("/nothing.zip"))
    assert_one_line_error(result, "HTTP 404", "--zip")
    assert time.monotonic() - start < 5
    assert_nothing_installed()


def test_server_error_after_retries(http_server, good_zip_bytes) -> None:
    http_server.fail_next = 1000
    result = run("fetch-data", "--url", serve(http_server, good_zip_bytes))
    assert_one_line_error(result, "HTTP 500", f"{download.DEFAULT_RETRIES + 1} attempts")
    assert_nothing_installed()


def test_connection_refused_suggests_offline_install(closed_port_url) -> None:
    result = run("fetch-data", "--url", closed_port_url)
    assert_one_line_error(result, "connection refused", "--zip", "file://")
    assert_nothing_installed()


def bad_archive(kind: str, good: bytes) -> bytes:
    """Broken variants of a good archive, one per failure the installer must catch."""
    image = first_train_image(good)
    if kind == "not-a-zip":
        return b"<html><body>Rate limit exceeded</body></html>"
    if kind == "truncated":
        return good[: len(good) // 2]
    if kind == "corrupt":
        with zipfile.ZipFile(io.BytesIO(good)) as zf:
            info = zf.getinfo(image)
        name_len, extra_len = struct.unpack(
            "<HH", good[info.header_offset + 26 : info.header_offset + 30]
        )
        start = info.header_offset + 30 + name_len + extra_len
        middle = start + info.compress_size // 2
        flipped = bytes(b ^ 0xFF for b in good[middle : middle + 16])
        return good[:middle] + flipped + good[middle + 16 :]
    if kind == "no-dataset":
        return rezip(
            good,
            drop=tuple(n for n in zipfile.ZipFile(io.BytesIO(good)).namelist() if "/data/" in n),
        )
    if kind == "missing-csv":
        return rezip(good, drop=(DATA + "test_frames_keypoints.csv",))
    if kind == "missing-folder":
        names = zipfile.ZipFile(io.BytesIO(good)).namelist()
        return rezip(good, drop=tuple(n for n in names if n.startswith(DATA + "test/")))
    if kind == "column-count":
        return with_csv_row(good, 3, lambda line: line.rsplit(",", 1)[0])
    if kind == "header-column-count":
        return with_csv_row(good, 0, lambda line: line + ",136")
    if kind == "not-finite":
        return with_csv_row(
            good, 2, lambda line: line.split(",", 1)[0] + ",nan," + line.split(",", 2)[2]
        )
    if kind == "not-a-number":
        return with_csv_row(
            good, 2, lambda line: line.split(",", 1)[0] + ",abc," + line.split(",", 2)[2]
        )
    if kind == "duplicate-row":
        return with_csv_row(good, 2, lambda line: csv_text(good).splitlines()[1])
    if kind == "missing-image":
        return rezip(good, drop=(image,))
    if kind == "undecodable-image":
        return rezip(good, replace={image: b"\xff\xd8\xff\xe0 this is not really a jpeg"})
    if kind == "truncated-image":
        data = zipfile.ZipFile(io.BytesIO(good)).read(image)
        return rezip(good, replace={image: data[: len(data) // 2]})
    if kind == "encrypted":
        return _flag_central_entry(good, image)
    raise AssertionError(kind)


def _flag_central_entry(data: bytes, name: str) -> bytes:
    """Mark member ``name`` as encrypted in the central directory (what zipfile reads)."""
    raw = bytearray(data)
    pos = raw.find(b"PK\x01\x02")
    while pos >= 0:
        name_len = struct.unpack("<H", raw[pos + 28 : pos + 30])[0]
        if raw[pos + 46 : pos + 46 + name_len].decode() == name:
            raw[pos + 8] |= 0x01
            return bytes(raw)
        pos = raw.find(b"PK\x01\x02", pos + 4)
    raise AssertionError(name)


BAD_ARCHIVES = {
    "not-a-zip": "not a zip",
    "truncated": "truncated",
    "corrupt": "corrupt",
    "no-dataset": "does not contain the dataset",
    "missing-csv": "missing data/test_frames_keypoints.csv",
    "missing-folder": "no images in data/test/",
    "column-count": "136 columns, expected 137",
    "header-column-count": "row 1: 138 columns",
    "not-finite": "not finite",
    "not-a-number": "not a number",
    "duplicate-row": "listed twice",
    "missing-image": "not found in data/training/",
    "undecodable-image": "cannot be decoded",
    "truncated-image": "cannot be decoded",
    "encrypted": "encrypted",
}


@pytest.mark.parametrize("kind", list(BAD_ARCHIVES))
def test_bad_archive_is_rejected_before_installing(http_server, good_zip_bytes, kind: str) -> None:
    result = run("fetch-data", "--url", serve(http_server, bad_archive(kind, good_zip_bytes)))
    assert_one_line_error(result, BAD_ARCHIVES[kind])
    assert_nothing_installed()
    downloads = paths.cache_dir() / "downloads"
    assert not downloads.exists() or list(downloads.iterdir()) == []  # a bad download is not kept


def _entry(name: str, symlink: bool = False) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    if symlink:
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (_entry(TOP + "data/training/../../../../evil.txt"), "'..'"),
        (_entry("/tmp/facemark-evil.txt"), "absolute path"),
        (_entry(TOP + "data/training/link.jpg", symlink=True), "symbolic link"),
        (_entry(TOP + "..\\evil.txt"), "'..'"),
    ],
    ids=["dotdot", "absolute", "symlink", "backslash"],
)
def test_zip_slip_entries_are_refused(tmp_path, good_zip_bytes, entry, reason: str) -> None:
    archive = tmp_path / "evil.zip"
    archive.write_bytes(rezip(good_zip_bytes, add={entry: b"/etc/passwd"}))
    result = run("fetch-data", "--zip", str(archive))
    assert_one_line_error(result, "unsafe", reason)
    assert_nothing_installed()
    assert not Path("/tmp/facemark-evil.txt").exists()
    assert not list(paths.data_dir().parent.rglob("evil.txt"))


def test_failed_force_keeps_the_previous_install(http_server, good_zip_bytes) -> None:
    url = serve(http_server, good_zip_bytes)
    assert run("fetch-data", "--url", url).exit_code == 0
    before = download.dataset_status()
    http_server.files["/master.zip"] = bad_archive("missing-image", good_zip_bytes)
    assert_one_line_error(run("fetch-data", "--url", url, "--force"), "not found")
    after = download.dataset_status()
    assert after["intact"] and after["fingerprint"] == before["fingerprint"]
    assert [p.name for p in paths.data_dir().iterdir() if p.is_dir()] == ["dataset"]


def test_ctrl_c_during_verification_leaves_nothing(monkeypatch, tmp_path, good_zip_bytes) -> None:
    archive = tmp_path / "a.zip"
    archive.write_bytes(good_zip_bytes)
    calls = []
    real = download_archive._check_image

    def interrupted(data: bytes, where: str) -> None:
        calls.append(where)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real(data, where)

    monkeypatch.setattr(download_archive, "_check_image", interrupted)
    result = run("fetch-data", "--zip", str(archive))
    assert result.exit_code == 130
    assert_one_line_error(result, "interrupted")
    assert_nothing_installed()


def test_missing_zip_and_conflicting_options(tmp_path) -> None:
    assert_one_line_error(run("fetch-data", "--zip", str(tmp_path / "nope.zip")), "no such file")
    assert_one_line_error(run("fetch-data", "--url", "ftp://example.org/x.zip"), "unsupported URL")
    result = run("fetch-data", "--url", "/data/a.zip")
    assert_one_line_error(result, "not a URL", "--zip /data/a.zip")
    result = run("fetch-data", "--zip", "a.zip", "--url", "file:///a.zip")
    assert_one_line_error(result, "either --url or --zip")
    assert result.exit_code == 2


def test_destination_under_a_file_is_not_writable(monkeypatch, tmp_path, good_zip_bytes) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("FACEMARK_HOME", str(blocker / "home"))
    archive = tmp_path / "a.zip"
    archive.write_bytes(good_zip_bytes)
    assert_one_line_error(
        run("fetch-data", "--zip", str(archive)), "cannot write to", "FACEMARK_HOME"
    )


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_destination(monkeypatch, tmp_path, good_zip_bytes) -> None:
    home = tmp_path / "ro"
    home.mkdir(mode=0o500)
    monkeypatch.setenv("FACEMARK_HOME", str(home))
    archive = tmp_path / "a.zip"
    archive.write_bytes(good_zip_bytes)
    assert_one_line_error(
        run("fetch-data", "--zip", str(archive)), "cannot write to", "permission denied"
    )


def test_not_enough_space_is_caught_before_writing(monkeypatch, tmp_path, good_zip_bytes) -> None:
    archive = tmp_path / "a.zip"
    archive.write_bytes(good_zip_bytes)
    almost_full = SimpleNamespace(total=10**9, used=10**9 - 1000, free=1000)
    monkeypatch.setattr(disk.shutil, "disk_usage", lambda path: almost_full)
    assert_one_line_error(run("fetch-data", "--zip", str(archive)), "not enough disk space")
    assert_nothing_installed()


def test_disk_full_while_extracting(monkeypatch, tmp_path, good_zip_bytes) -> None:
    archive = tmp_path / "a.zip"
    archive.write_bytes(good_zip_bytes)

    def disk_full(data: bytes, where: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(download_archive, "_check_image", disk_full)
    assert_one_line_error(run("fetch-data", "--zip", str(archive)), "disk full")
    assert_nothing_installed()


@pytest.mark.skipif(os.name != "posix", reason="advisory locks are POSIX-only")
def test_concurrent_installs_wait_for_each_other(tmp_path, good_zip_bytes) -> None:
    import fcntl
    import threading

    archive = tmp_path / "a.zip"
    archive.write_bytes(good_zip_bytes)
    lock = paths.data_dir() / ".dataset.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another installer is running
        worker = threading.Thread(target=download.fetch_dataset, kwargs={"zip_path": archive})
        worker.start()
        worker.join(0.5)
        assert worker.is_alive() and not paths.dataset_dir().exists()
    worker.join(30)
    assert not worker.is_alive() and download.dataset_status()["intact"]


# ----------------------------------------------------------------------------------------
# The real archive
# ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_archive_installs_from_file_url(shared_zip: Path) -> None:
    result = run("fetch-data", "--url", shared_zip.as_uri())
    assert result.exit_code == 0, result.output
    root = paths.dataset_dir()
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 3462, "test_labeled": 160, "test_unlabeled": 0}
    for csv_name, rows in (
        ("training_frames_keypoints.csv", 3462),
        ("test_frames_keypoints.csv", 160),
    ):
        lines = (root / csv_name).read_text().strip().splitlines()
        assert len(lines) == rows + 1 and all(line.count(",") == 136 for line in lines)
    assert len(list((root / "training").iterdir())) == 3462
    assert len(list((root / "test").iterdir())) == 160
    assert "MIT" in (root / "LICENSE").read_text()
    assert "3,462" in result.stdout
