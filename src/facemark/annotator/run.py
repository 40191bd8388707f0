"""The run itself: collect the inputs, decode, find faces, hand results to the writer and
the caller; photos in batches, videos through :mod:`facemark.video`."""

from __future__ import annotations

import contextlib
import functools
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facemark.annotator.config import AnnotateConfig, load_marker
from facemark.annotator.decoding import _decoded
from facemark.annotator.inputs import (
    InputImage,
    _in_memory,
    _is_single,
    collect_inputs,
    has_image_suffix,
    parse_shard,
    select_shard,
)
from facemark.annotator.outputs import (
    Layout,
    _own_output,
    _Writer,
    check_output,
    mark_output,
    merge_records,
    recorded_images,
    write_csv,
)
from facemark.annotator.report import Summary, progress_bar
from facemark.errors import DataError, UsageError
from facemark.files import read_jsonl
from facemark.images import Photo, read_failure
from facemark.results import ImageResult
from facemark.video import has_video_suffix

if TYPE_CHECKING:  # the pipeline imports torch: loaded when a run starts, not with the CLI
    from facemark.pipeline import FaceMarker


class AnnotateWarning(UserWarning):
    """An input that was skipped (unreadable, truncated, missing); the run went on."""


def run(
    inputs: Any,
    out: str | os.PathLike | None = None,
    config: AnnotateConfig | None = None,
    *,
    on_record: Callable[[ImageResult], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    progress: Any = None,
    strict: bool = True,
) -> Summary:
    """Annotate ``inputs``; the engine behind :func:`annotate` and ``facemark annotate``.

    ``inputs``: a file, folder or glob pattern, or a list mixing those with images in memory
    (see :func:`annotate`).  Results stream to ``on_record`` (and to ``out``), so a run over
    a million photos needs no more memory than a few batches; an input that cannot be read
    is an :class:`ImageResult` with ``error`` set (never written to the JSONL).
    ``progress`` is a rich ``Progress`` (or None).  Raises :class:`UsageError` for bad
    options; with ``strict`` also when there is nothing to annotate, and
    :class:`DataError` when not one image could be read.
    """
    start = time.perf_counter()
    config = config or AnnotateConfig()
    inputs = [inputs] if _is_single(inputs) else list(inputs)
    config.check()
    shard_spec = parse_shard(config.shard)
    warn = _Deferred(
        on_warning or (lambda message: warnings.warn(message, AnnotateWarning, stacklevel=4))
    )

    def recorded(record: ImageResult) -> None:
        warn.release()  # an image went through: the held-back warnings are news now
        if on_record is not None:
            on_record(record)

    def failed(image: str | None, reason: str, message: str) -> None:
        warn(message)
        summary.failures.append((str(image), reason))
        if on_record is not None:
            on_record(ImageResult(image, error=reason))

    out_dir = Path(out).expanduser() if out is not None else None
    if out_dir is None and (
        config.csv or config.coco or config.parquet or config.pts or config.skip_existing
    ):
        raise UsageError(
            "csv, coco, parquet, pts and skip_existing need an output folder (out=...)"
        )
    if config.parquet:
        from facemark.results import require_pyarrow

        require_pyarrow()

    copies: list[Path] = []
    paths = [raw for raw in inputs if isinstance(raw, (str, os.PathLike))]
    items, problems = collect_inputs(
        paths, config.recursive, exclude=_own_output(out_dir), outputs=copies
    )
    items += _in_memory([raw for raw in inputs if not isinstance(raw, (str, os.PathLike))])
    summary = Summary(out=out_dir, shard=shard_spec, found=len(items), outputs_skipped=len(copies))
    if not items and strict:
        reasons = "; ".join(f"{given}: {reason}" for given, reason in problems[:3])
        raise UsageError(f"no images to annotate ({reasons or 'no inputs given'})")
    for given, reason in problems:
        if reason == "no such file or folder":
            failed(given, reason, f"{given}: {reason}")
        else:
            warn(f"{given}: {reason}")
    if out_dir is not None:
        check_output(out_dir, [i for i in items if i.data is None], paths, config.draw)
    todo = select_shard(items, shard_spec)
    layout = (
        Layout(out_dir, f".shard-{shard_spec[0]}-of-{shard_spec[1]}" if shard_spec else "")
        if out_dir
        else None
    )
    # records of an earlier run that this one may annotate again (with --skip-existing it
    # annotates only images they lack): merged once this run is done
    earlier = (
        layout is not None
        and not config.skip_existing
        and layout.jsonl.is_file()
        and layout.jsonl.stat().st_size > 0
    )
    if config.skip_existing and layout is not None and out_dir.is_dir():
        done = recorded_images(out_dir)
        kept = [item for item in todo if item.image not in done and item.real not in done]
        summary.skipped = len(todo) - len(kept)
        todo = kept
    videos = [item for item in todo if _is_video(item)]
    if videos:
        from facemark import video

        video.require_av()  # without PyAV: one line naming the install, before any work
        ignored = [
            flag
            for flag, on in (
                ("--pts", config.pts),
                ("--coco", config.coco),
                ("--parquet", config.parquet),
            )
            if on
        ]
        if ignored:
            warn(
                f"{', '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} for photos; "
                "each video gets its own "
                "<video>.jsonl (and <video>.csv with --csv)"
            )
        todo = [item for item in todo if item not in videos]
        if config.skip_existing and out_dir is not None:
            kept = [v for v in videos if not video.output_paths(out_dir, v.rel)[0].is_file()]
            summary.skipped += len(videos) - len(kept)
            videos = kept

    if todo or videos:
        loading = time.perf_counter()
        marker = load_marker(config)
        summary.load_seconds = time.perf_counter() - loading
        summary.detector = marker.detector.describe() if marker.detector else None
        open_writer = functools.partial(_Writer, layout, config) if layout else None
        with progress if progress is not None else contextlib.nullcontext():
            if todo:
                _process(
                    todo,
                    marker,
                    config,
                    open_writer,
                    summary,
                    lambda item, why: failed(item.image, why, f"skipped {item.image}: {why}"),
                    recorded,
                    progress,
                )
            if videos:
                _process_videos(
                    videos, marker, config, out_dir, summary, warn, failed, recorded, progress
                )
    if earlier:
        kept, summary.replaced = merge_records(layout.jsonl)
        summary.earlier_kept = max(kept - summary.images, 0)
    if config.csv and layout is not None and layout.jsonl.is_file():
        write_csv(layout.jsonl, layout.csv)
    if config.coco and layout is not None and layout.jsonl.is_file():
        from facemark.coco import write_coco

        write_coco(layout.jsonl, layout.coco)
    if config.parquet and layout is not None and layout.jsonl.is_file():
        from facemark.results import write_parquet

        write_parquet(read_jsonl(layout.jsonl), layout.parquet)
    summary.seconds = time.perf_counter() - start
    nothing = summary.images == 0 and summary.videos == 0 and not summary.skipped
    if strict and nothing and summary.failures:
        first, reason = summary.failures[0]
        more = f"{len(summary.failures)} failed; first: " if len(summary.failures) > 1 else ""
        raise DataError(f"no image could be read ({more}{first}: {reason})")
    warn.release()
    return summary


class _Deferred:
    """Warnings held back until the first image is annotated: when none can be read, the
    run's one error line says it all instead of following a warning that said the same."""

    def __init__(self, warn: Callable[[str], None]) -> None:
        self.warn, self.held, self.open = warn, [], False

    def __call__(self, message: str) -> None:
        if self.open:
            self.warn(message)
        else:
            self.held.append(message)

    def release(self) -> None:
        self.open = True
        held, self.held = self.held, []
        for message in held:
            self.warn(message)


def _process(
    todo: Sequence[InputImage],
    marker: FaceMarker,
    config: AnnotateConfig,
    open_writer: Callable[[], _Writer] | None,
    summary: Summary,
    failed: Callable[[InputImage, str], None],
    on_record: Callable[[ImageResult], None] | None,
    progress: Any,
) -> None:
    """The loop over batches: decode, find faces, hand records to the writer and caller.

    The output file is opened at the first readable batch, so a run over unreadable files
    fails fast and leaves an earlier annotations.jsonl alone.
    """
    writer: _Writer | None = None
    task = progress.add_task("Annotating", total=len(todo)) if progress is not None else None
    size = config.batch_size
    try:
        decoded = _decoded(todo, size, config.threads)
        for batch in _batches(decoded, size):
            good = [(item, photo) for item, photo in batch if isinstance(photo, Photo)]
            if good and writer is None and open_writer is not None:
                writer = open_writer()
            photos, names = [photo for _, photo in good], [item.image for item, _ in good]
            found, rejected, dropped = (
                marker.mark(photos, names, config.min_confidence) if good else ([], [], [])
            )
            summary.rejected += sum(rejected)
            summary.below_min_confidence += sum(dropped)
            faces_of = iter(found)
            for item, photo in batch:  # results in the order of the inputs, failures too
                if not isinstance(photo, Photo):
                    failed(item, photo)
                    continue
                faces = next(faces_of)
                result = ImageResult(
                    item.image, photo.width, photo.height, tuple(faces), summary.detector
                )
                summary.images += 1
                summary.faces += len(faces)
                if writer is not None:
                    writer.submit(item, photo, result.to_dict(), max_pending=size)
                if on_record is not None:
                    on_record(result)
            if progress is not None:
                progress.advance(task, len(batch))
    finally:
        if writer is not None:
            writer.close()


def _is_video(item: InputImage) -> bool:
    """A video by suffix; a file without an image suffix is probed (see facemark.video)."""
    if item.data is not None:  # videos are read from files
        return False
    if has_video_suffix(item.path.name):
        return True
    if has_image_suffix(item.path.name):
        return False
    from facemark.video import is_video

    return is_video(item.path)


def _process_videos(
    videos: Sequence[InputImage],
    marker: FaceMarker,
    config: AnnotateConfig,
    out: Path | None,
    summary: Summary,
    warn: Callable[[str], None],
    failed: Callable[[str | None, str, str], None],
    on_record: Callable[[ImageResult], None] | None,
    progress: Any = None,
) -> None:
    """Each video through :func:`facemark.video.annotate_video`: a JSONL (and a CSV) per
    video; an unreadable video is a warning and a failure, a cut one keeps its frames."""
    from facemark import video

    timing = video.Timing()
    for item in videos:
        callback = on_record
        if progress is not None:
            total = video.frames_to_read(item.path, config.video)
            task = progress.add_task(f"Video {item.path.name}", total=total, unit="frames")

            def callback(record: ImageResult, task: Any = task) -> None:
                progress.advance(task)
                if on_record is not None:
                    on_record(record)

        jsonl = csv_path = overlay = None
        if out is not None:
            jsonl, csv_path = video.output_paths(out, item.rel)
            overlay = video.overlay_path(out, item.rel, item.stem) if config.draw else None
        try:
            result = video.annotate_video(
                item.path,
                item.image,
                marker,
                config.video,
                jsonl=jsonl,
                csv_path=csv_path if config.csv else None,
                overlay=overlay,
                boxes=config.boxes,
                on_record=callback,
                min_confidence=config.min_confidence,
            )
        except DataError as exc:
            reason = read_failure(exc).removeprefix(f"cannot read {item.path}: ")
            failed(item.image, reason, f"skipped {item.image}: {reason}")
            continue
        if result.cut:
            warn(f"{item.image}: {result.cut}; the {result.frames} frames before were kept")
        if out is not None:
            mark_output(out)
        summary.videos += 1
        summary.frames += result.frames
        summary.faces += result.faces
        summary.below_min_confidence += result.dropped
        timing.add(result.timing)
    if timing.frames:
        summary.video_timing = timing.to_dict()


def _batches(
    decoded: Iterator[tuple[InputImage, Photo | str]], size: int
) -> Iterator[list[tuple[InputImage, Photo | str]]]:
    """Batches of ``size`` readable images, in order, each with the unreadable ones (why they
    failed) that came between them."""
    batch: list[tuple[InputImage, Photo | str]] = []
    readable = 0
    for item, photo in decoded:
        batch.append((item, photo))
        readable += isinstance(photo, Photo)
        if readable == size:
            yield batch
            batch, readable = [], 0
    if batch:
        yield batch


def annotate(
    inputs: Any,
    out: str | os.PathLike | None = None,
    config: AnnotateConfig | None = None,
    *,
    progress: bool = False,
    **options: Any,
) -> list[ImageResult]:
    """Find every face in ``inputs`` and place its 68 keypoints: one result per image.

    ``inputs``: a file, folder or glob pattern, the bytes of an image file, a binary file
    object, a Pillow image, an RGB/gray uint8 array, or a list mixing them (files found in
    folders and patterns first, in order, then the images given in memory, in order).
    Every form decodes the same pixels alike, so it finds the same faces.  ``out``: a folder
    for ``annotations.jsonl`` and (``draw``) annotated copies, ``csv``, ``coco``,
    ``parquet`` and ``pts`` files; None writes nothing.  Options: an
    :class:`AnnotateConfig`, and/or its fields (and those of
    :class:`~facemark.detectors.DetectorConfig`) as keywords, e.g.
    ``annotate("photos/", threshold=0.6, detector="yunet_s")``.

    Nothing a single input can be wrong with raises: an unreadable file, a missing path or
    a non-image gets a result with ``error`` set (and an :class:`AnnotateWarning`).  With
    ``skip_existing`` the images an earlier run did are not returned again.  ``progress``
    shows a bar on stderr.  ``[r.to_dict() for r in results]`` are annotations.jsonl lines.
    """
    results: list[ImageResult] = []
    run(
        inputs,
        out,
        AnnotateConfig.from_options(config, **options),
        on_record=results.append,
        progress=progress_bar() if progress else None,
        strict=False,
    )
    return results
