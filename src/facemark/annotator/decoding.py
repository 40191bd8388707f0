"""Decoding photos in background threads, a few batches ahead of the models."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from facemark.annotator.inputs import InputImage
from facemark.errors import DataError, UsageError
from facemark.images import Photo, read_failure


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity: a worker given one CPU share of a big
    machine sees 1, where ``os.cpu_count()`` says the machine's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def _decoded(
    items: Iterable[InputImage], lookahead: int, threads: int | None = None
) -> Iterator[tuple[InputImage, Photo | str]]:
    """Photos decoded in background threads, yielded in order: the photo or why it failed."""
    from facemark.pipeline import as_photo

    def read(item: InputImage) -> Photo | str:
        try:
            return Photo.open(item.path) if item.data is None else as_photo(item.data)
        except (DataError, UsageError) as exc:
            return read_failure(exc)

    pool = ThreadPoolExecutor(
        max_workers=min(4, threads or available_cpus()), thread_name_prefix="facemark-read"
    )
    pending: deque[tuple[InputImage, Future]] = deque()
    source = iter(items)
    try:
        for item in source:
            pending.append((item, pool.submit(read, item)))
            if len(pending) >= lookahead:
                done_item, future = pending.popleft()
                yield done_item, future.result()
        while pending:
            done_item, future = pending.popleft()
            yield done_item, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
