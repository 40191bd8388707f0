"""What ``facemark evaluate`` asks for, as one library call: the frames to score come from
``--split``, ``--images``/``--labels`` or ``--data`` (one source, or a table per source),
and which combinations make sense is decided here, once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from facemark.evaluate.frames import check_inputs
from facemark.evaluate.orchestrate import evaluate_models, evaluate_sources


def evaluate(
    models: Sequence[Any] = ("default",),
    *,
    split: str | None = None,
    images: Any = None,
    labels: Any = None,
    data: Sequence[Any] = (),
    **options: Any,
) -> dict[str, Any]:
    """Score ``models`` on what the options name: the installed ``split`` (default test),
    ``images`` + ``labels``, or ``data`` — several sources, or a label set with ``split``,
    give ``{"sources": {name: result}}`` (each as :func:`evaluate_models` returns).
    ``options`` are those of :func:`evaluate_models`."""
    from facemark.data import is_udacity

    data = list(data)
    check_inputs(split, images, labels, data)
    per_source = len(data) > 1 or bool(data and split and not is_udacity(data[0]))
    if per_source:
        return evaluate_sources(models, data, split=split, **options)
    return evaluate_models(
        models,
        split=split or "test",
        images=images,
        labels=labels,
        root=data[0] if data else None,
        **options,
    )
