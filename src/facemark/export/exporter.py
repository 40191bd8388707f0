"""``facemark export --format onnx|torchscript``: from a model spec to a written, checked file
(options checked, network loaded, file written, metadata read back, parity with torch)."""

from __future__ import annotations

import os
import time
from typing import Any

from facemark.errors import UsageError
from facemark.export.network import load_network
from facemark.export.onnx import _newest_opset, _write_onnx
from facemark.export.options import DEFAULT_OPSET, _check_out, _check_requirements
from facemark.export.parity import check_parity
from facemark.export.readback import read_metadata
from facemark.export.result import ExportResult
from facemark.export.torchscript import _write_torchscript


def export_model(
    spec: Any,
    fmt: str,
    out: str | os.PathLike,
    *,
    task: str | None = None,
    raw: bool = False,
    opset: int = DEFAULT_OPSET,
    dynamo: bool = False,
    check: bool = True,
    timing: bool = True,
    force: bool = False,
) -> ExportResult:
    """Export the model ``spec`` names (``default``, a bundled detector, a run, a checkpoint,
    a URL) as ``fmt`` (``onnx`` or ``torchscript``) to ``out``, written atomically.

    ``check`` loads the file back and compares it with torch on random inputs (and
    ``timing`` times both); see :class:`ExportResult`.  Bad options, a missing output folder
    or a file that is no facemark checkpoint are one-line :class:`FacemarkError`\\ s.
    """
    start = time.perf_counter()
    fmt = str(fmt).lower()
    _check_requirements(fmt, check, dynamo)
    newest = _newest_opset()
    if not DEFAULT_OPSET <= opset <= newest:
        raise UsageError(
            f"--opset must be between {DEFAULT_OPSET} and {newest}, the newest this torch "
            f"exports (got {opset})"
        )
    path = _check_out(out, fmt, force)
    net = load_network(spec, task, raw)
    if fmt == "onnx":
        _write_onnx(net, path, opset, dynamo)
    else:
        _write_torchscript(net, path)
    result = ExportResult(
        path=path,
        format=fmt,
        task=net.task,
        arch=net.arch,
        size=path.stat().st_size,
        metadata=read_metadata(path),
        output_names=net.output_names,
        source=net.source,
        source_size=net.source.stat().st_size if net.source else 0,
        unit=net.unit,
    )
    if check:
        check_parity(net, result, timing)
    result.seconds = time.perf_counter() - start
    return result
