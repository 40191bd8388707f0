"""Names a package offers whose modules are imported on first use (PEP 562).

``import facemark``, ``facemark --help`` and the torch-free parts of a package stay quick when
the names that need torch (or a heavy submodule) are listed here instead of imported at the
top.  One mechanism for every package that does this, and one way of naming an object by its
module: ``"package.module:attribute"`` (the part after ``:`` omitted: the attribute has the
public name's name).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def resolve(ref: str, default_attr: str = "") -> Any:
    """The object ``"package.module:attribute"`` names, importing the module now."""
    module, _, attr = ref.partition(":")
    attr = attr or default_attr
    loaded = importlib.import_module(module)
    return getattr(loaded, attr) if attr else loaded


def attach(
    namespace: dict[str, Any], names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package: each of ``names`` maps a public name to
    ``"module"`` or ``"module:attribute"``; the value is cached in ``namespace`` once loaded.

    Use as ``__getattr__, __dir__ = attach(globals(), {...})``."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        try:
            ref = names[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = resolve(ref, name)
        namespace[name] = value  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
