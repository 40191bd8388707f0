"""facemark on a Ray cluster: ``annotate`` as a Ray Data pipeline (``pip install 'facemark[ray]'``).

::

    import facemark.ray

    ds = facemark.ray.annotate("s3://bucket/photos/")        # a lazy ray.data.Dataset
    ds.write_parquet("s3://bucket/marks/")                   # or write_json, to_pandas, ...

Files are read by Ray's own readers (local folders, globs, lists of paths, object storage),
each batch is marked by :class:`FaceMarkerPredictor` actors that load the models once, and
every row is an annotations.jsonl record in :func:`facemark.results.arrow_schema` (a file that
cannot be read is a row with ``error`` set; it never fails the block).  The inference is the
same :meth:`facemark.FaceMarker.annotate` the CLI runs, so the points equal
``facemark annotate``'s.

Resources: each actor asks for ``threads`` CPUs and runs torch on that many threads; by
default the actors leave one CPU of the cluster to Ray's read tasks, which otherwise starve
behind actors that took every CPU (ray-project/ray#44687: on 2 CPUs the pipeline hangs).
With ``gpu=True`` each actor takes one GPU and the actors number the GPUs.
"""

from __future__ import annotations

import glob
import io
import os
from typing import Any

try:
    import ray
    import ray.data
except ImportError:  # one line, naming the extra that brings Ray
    raise ImportError("facemark.ray needs Ray Data: pip install 'facemark[ray]'") from None

from facemark.annotator import IMAGE_SUFFIXES, AnnotateConfig, load_marker, run
from facemark.errors import UsageError
from facemark.results import to_arrow

__all__ = ["FaceMarkerPredictor", "annotate", "read_images"]

#: Images per batch handed to one actor call.
BATCH_SIZE = 16


class FaceMarkerPredictor:
    """A callable class for ``Dataset.map_batches``: loads the models once per actor and
    turns a batch with ``bytes`` and ``path`` columns into annotation records.

    ``options`` are those of :func:`facemark.annotate` (``model``, ``detector``, ``device``,
    ``threads``, ``threshold``, ``min_confidence``, ...).
    """

    def __init__(self, **options: Any) -> None:
        self.config = AnnotateConfig.from_options(**options)
        self.config.check()
        load_marker(self.config)  # now, once per actor; run() finds it loaded

    def __call__(self, batch: dict[str, Any]) -> Any:
        # The engine facemark annotate runs: decoding in a thread ahead of the models, so an
        # actor overlaps the two as the CLI does; each image named by its path.
        files = []
        for data, path in zip(batch["bytes"], batch["path"], strict=True):
            file = io.BytesIO(bytes(data))
            file.name = str(path)
            files.append(file)
        results: list[Any] = []
        run(files, None, self.config, on_record=results.append, on_warning=_quiet, strict=False)
        return to_arrow(results)


def _quiet(message: str) -> None:
    """Failed images are rows with ``error`` set; a warning per image would only be noise."""


def read_images(source: Any) -> ray.data.Dataset:
    """A Dataset of ``bytes`` and ``path`` from a folder (read with its subfolders), a file, a
    glob pattern, a list of those, or any URI Ray reads (``s3://``, ``gs://``, ...); a
    Dataset passes through."""
    if isinstance(source, ray.data.Dataset):
        missing = {"bytes", "path"} - set(source.schema().names)
        if missing:
            raise UsageError(f"the Dataset needs 'bytes' and 'path' columns (missing: {missing})")
        return source
    given = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    paths: list[str] = []
    for item in map(os.fspath, given):
        local_pattern = "://" not in item and glob.has_magic(item)
        paths += sorted(glob.glob(item, recursive=True)) if local_pattern else [item]
    if not paths:
        raise UsageError(f"no images to annotate ({', '.join(map(str, given)) or 'no inputs'})")
    return ray.data.read_binary_files(
        paths,
        include_paths=True,
        file_extensions=[s.lstrip(".") for s in IMAGE_SUFFIXES]
        + [s.lstrip(".").upper() for s in IMAGE_SUFFIXES],
        ignore_missing_paths=False,
    )


def annotate(
    source: Any,
    *,
    gpu: bool = False,
    threads: int = 1,
    concurrency: int | None = None,
    batch_size: int = BATCH_SIZE,
    predictor: type[FaceMarkerPredictor] = FaceMarkerPredictor,
    **options: Any,
) -> ray.data.Dataset:
    """The faces of every image in ``source`` as a lazy Dataset, one row per image.

    ``source``: see :func:`read_images`.  ``threads``: torch threads (and CPUs reserved) per
    actor.  ``concurrency``: the number of actors (default: the cluster's CPUs divided by
    ``threads``, less one CPU for reading; with ``gpu``, the cluster's GPUs).
    ``predictor``: a subclass of :class:`FaceMarkerPredictor` (to add columns, say).  Other
    ``options`` as :func:`facemark.annotate` takes them.  Starts a local Ray when none runs.
    """
    if threads < 1:
        raise UsageError(f"threads must be >= 1 (got {threads})")
    if not ray.is_initialized():
        ray.init()
    resources = ray.cluster_resources()
    if gpu:
        gpus = int(resources.get("GPU", 0))
        if gpus < 1:
            raise UsageError("gpu=True but the Ray cluster has no GPU")
        actors = concurrency or gpus
        remote = {"num_gpus": 1, "num_cpus": 1}
        options["device"] = "cuda"
    else:
        cpus = resources.get("CPU", 1.0)
        actors = concurrency or max(1, int((cpus - 1) // threads))
        remote = {"num_cpus": min(threads, max(cpus - 1, 0.5))}
    images = read_images(source)
    return images.map_batches(
        predictor,
        fn_constructor_kwargs={"threads": threads, **options},
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=actors),
        **remote,
    )
