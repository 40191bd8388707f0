"""``fetch-data``: download, verify and install the Udacity P1 facial keypoints dataset.

Three concerns, each usable on its own, each in its own module:

* :func:`download_file` (``downloader.py``) — the one streaming downloader of the project
  (datasets here, model checkpoints in ``hub.py``): http(s) and ``file://``, progress,
  timeouts, retries with backoff, resuming a ``.part`` file, an atomic rename at the end and
  an optional sha256 check.
* :func:`install_dataset` (``install.py``) — checks an archive completely (``archive.py``)
  *before* anything appears under :func:`facemark.paths.dataset_dir`, extracts it into a
  temporary folder and renames it into place, so an error or Ctrl-C never leaves a
  half-installed dataset.
* :func:`fetch_dataset` (``fetch.py``) — what the command does: skip when a verified install
  exists, else get the archive (``--zip``, ``file://`` or a download into the cache) and
  install it.

``layout.py`` holds the installed layout and the intact-or-damaged check
(:func:`dataset_status`); ``disk.py`` the free-space checks and disk-error messages;
``progress.py`` the progress bars.

This package only re-exports the public names.  The tunables (timeouts, retries, backoff,
chunk size, space margin, the default URL, ...) are read from the module that uses them:
to change one, set it there (``facemark.download.downloader.DEFAULT_RETRIES``), not on this
package.
"""

from __future__ import annotations

from facemark.download.archive import DECODE_THREADS
from facemark.download.disk import SPACE_MARGIN_BYTES
from facemark.download.downloader import (
    CHUNK_BYTES,
    CONNECT_TIMEOUT,
    DEFAULT_BACKOFF,
    DEFAULT_RETRIES,
    MAX_BACKOFF,
    READ_TIMEOUT,
    download_file,
    file_url_path,
)
from facemark.download.fetch import (
    DEFAULT_ARCHIVE_BYTES,
    DEFAULT_URL,
    INSTALL_SPACE_RATIO,
    OFFLINE_HINT,
    FetchResult,
    cached_archive_path,
    fetch_dataset,
)
from facemark.download.install import install_dataset
from facemark.download.layout import (
    CSV_COLUMNS,
    IMAGE_SUFFIXES,
    INSTALLED_FILES,
    LICENSE,
    MANIFEST,
    SPLITS,
    TEST_CSV,
    TRAIN_CSV,
    compute_fingerprint,
    dataset_status,
)

__all__ = [
    "CHUNK_BYTES",
    "CONNECT_TIMEOUT",
    "CSV_COLUMNS",
    "DECODE_THREADS",
    "DEFAULT_ARCHIVE_BYTES",
    "DEFAULT_BACKOFF",
    "DEFAULT_RETRIES",
    "DEFAULT_URL",
    "IMAGE_SUFFIXES",
    "INSTALLED_FILES",
    "INSTALL_SPACE_RATIO",
    "LICENSE",
    "MANIFEST",
    "MAX_BACKOFF",
    "OFFLINE_HINT",
    "READ_TIMEOUT",
    "SPACE_MARGIN_BYTES",
    "SPLITS",
    "TEST_CSV",
    "TRAIN_CSV",
    "FetchResult",
    "cached_archive_path",
    "compute_fingerprint",
    "dataset_status",
    "download_file",
    "fetch_dataset",
    "file_url_path",
    "install_dataset",
]
