"""ONNX export: the network through torch's exporter, every output dimension that is not
dynamic given its fixed size, the metadata as ``metadata_props``, checked by ``onnx.checker``.

ONNX goes through torch's TorchScript-based exporter (``torch.onnx.export(dynamo=False)``,
opset 17): it needs nothing beyond the ``onnx`` package, takes about a second and handles
every architecture here.  ``dynamo=True`` uses the newer ``torch.export``-based exporter,
which also needs ``onnxscript`` and is several times slower; it gives the same results.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

from facemark.errors import quiet_warnings
from facemark.export.network import Network, _example
from facemark.export.options import INPUT_NAME
from facemark.files import atomic_write


def _newest_opset() -> int:
    """The highest ONNX opset the installed torch exports (a private constant: fall back to
    a conservative one if it moves)."""
    try:
        from torch.onnx import _constants

        return int(_constants.ONNX_MAX_OPSET)
    except (ImportError, AttributeError, ValueError):
        return 20


def _static_output_dims(proto: Any, net: Network, example: Any) -> None:
    """Give every output dimension that is not declared dynamic its fixed size: the exporter
    names some of them after the op that made them (``Subkeypoints_dim_1`` for the 68)."""
    outputs = net.module(example)
    outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    for value, tensor in zip(proto.graph.output, outputs, strict=False):
        dynamic = net.output_axes.get(value.name, {})
        for k, dim in enumerate(value.type.tensor_type.shape.dim):
            if k not in dynamic and k < tensor.ndim:
                dim.Clear()
                dim.dim_value = int(tensor.shape[k])


def _write_onnx(net: Network, out: Path, opset: int, dynamo: bool) -> None:
    import onnx
    import torch

    example = _example(net)
    axes = {0: "batch", 2: "height", 3: "width"} if net.dynamic_hw else {0: "batch"}
    with quiet_warnings(), torch.no_grad():
        if dynamo:
            proto = _dynamo_proto(net, example, opset)
        else:
            buf = io.BytesIO()
            torch.onnx.export(
                net.module,
                (example,),
                buf,
                input_names=[INPUT_NAME],
                output_names=list(net.output_names),
                dynamic_axes={INPUT_NAME: axes, **net.output_axes},
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
            proto = onnx.load_from_string(buf.getvalue())
        _static_output_dims(proto, net, example)
    used = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    meta = dict(net.metadata, format="onnx", opset=str(used[0] if used else opset))
    onnx.helper.set_model_props(proto, meta)
    proto.doc_string = (
        f"facemark {net.task} model ({net.arch}); input {INPUT_NAME}: {meta['input_format']}"
    )
    onnx.checker.check_model(proto)
    with atomic_write(out, "wb") as fh:
        fh.write(proto.SerializeToString())


def _dynamo_proto(net: Network, example: Any, opset: int) -> Any:
    import torch

    batch = torch.export.Dim("batch", min=1, max=4096)
    dims: dict[int, Any] = {0: batch}
    if net.dynamic_hw:
        dims[2] = 32 * torch.export.Dim("height_32", min=1, max=256)
        dims[3] = 32 * torch.export.Dim("width_32", min=1, max=256)
    with contextlib.redirect_stdout(io.StringIO()):  # it reports its progress on stdout
        program = torch.onnx.export(
            net.module,
            (example,),
            None,
            input_names=[INPUT_NAME],
            output_names=list(net.output_names),
            dynamic_shapes=(dims,),
            opset_version=max(opset, 18),  # the lowest opset it implements
            dynamo=True,
            verbose=False,
        )
    return program.model_proto
