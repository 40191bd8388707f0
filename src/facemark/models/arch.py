"""The landmark architectures by name, and the one parser of ``--arch`` strings.

Torch-free on purpose: choosing an arch, reading its training defaults and parsing
``"heatmap:stride=16,neck=96"`` are plain data, so the CLI and the config layer can do them
without importing torch or the networks.  Each entry names its network class by module and
class; the module (and torch) is imported only when a network is built.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from facemark.config import DEFAULTS
from facemark.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from torch import nn


@dataclass(frozen=True)
class ArchSpec:
    """A registered architecture: how to build it and the training defaults that suit it."""

    name: str
    #: The network class as ``"module:Class"``, the module being one of ``facemark.models``.
    network: str
    summary: str
    img_size: int = 128
    defaults: dict[str, Any] = field(default_factory=dict)  # e.g. lr, batch_size

    @property
    def build(self) -> Callable[..., nn.Module]:
        """The network class (its module, and torch, are imported on first use)."""
        module, _, name = self.network.partition(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), name)


ARCHS: dict[str, ArchSpec] = {
    spec.name: spec
    for spec in (
        ArchSpec(
            "heatmap",
            "heatmap:HeatmapNet",
            "stride-8 cell scores + sub-cell offset votes (PIPNet-style)",
        ),
        ArchSpec("integral", "integral:IntegralNet", "stride-4 heatmaps decoded by soft-argmax"),
        ArchSpec(
            "regression", "regression:RegressionNet", "direct coordinate regression, Wing loss"
        ),
        ArchSpec(
            "udacity",
            "udacity:UdacityNet",
            "Udacity P1 baseline: 224 px gray, 4 conv + 3 dense, MSE",
            img_size=224,
            defaults={"lr": 1e-3},
        ),
    )
}

DEFAULT_ARCH = DEFAULTS["landmarks"].arch


def arch_spec(arch: str) -> ArchSpec:
    """The registry entry for ``arch``; a UsageError naming the known ones otherwise."""
    try:
        return ARCHS[arch]
    except KeyError:
        raise UsageError(f"unknown arch {arch!r}; choose one of: {', '.join(ARCHS)}") from None


def parse_arch(spec: str) -> tuple[str, dict[str, Any]]:
    """``"heatmap"`` or ``"heatmap:stride=16,neck=96,widths=32x64x128x192x256"`` ->
    ``(name, overrides)``: architecture variants for experiments without code changes.

    Values are numbers, ``true``/``false``, or ``x``-separated integer tuples.
    """
    name, _, rest = spec.partition(":")
    arch_spec(name)
    kwargs: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, eq, raw = item.partition("=")
        if not eq or not key.isidentifier():
            raise UsageError(f"bad arch option {item!r} in {spec!r}; expected key=value")
        kwargs[key] = _parse_value(raw, spec)
    return name, kwargs


def _parse_value(raw: str, spec: str) -> Any:
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    try:
        if "x" in raw:
            return tuple(int(v) for v in raw.split("x"))
        return int(raw) if raw.lstrip("-").isdigit() else float(raw)
    except ValueError:
        raise UsageError(f"bad value {raw!r} in arch {spec!r}") from None


def build_landmark_model(arch: str, **arch_kwargs: Any) -> nn.Module:
    """A fresh (randomly initialised) network of ``arch`` built with ``arch_kwargs``."""
    network = arch_spec(arch).build
    try:
        return network(**arch_kwargs)
    except TypeError as exc:  # a checkpoint or caller passing arguments this version lacks
        raise UsageError(f"arch {arch!r} does not accept these arguments: {exc}") from None
    except (ValueError, RuntimeError) as exc:  # e.g. widths of the wrong length
        raise UsageError(f"arch {arch!r} cannot be built with {arch_kwargs}: {exc}") from None
