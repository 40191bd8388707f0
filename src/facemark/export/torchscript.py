"""TorchScript export: the network traced by ``torch.jit.trace`` and saved with its metadata
as the extra file :data:`~facemark.export.options.METADATA_FILE`."""

from __future__ import annotations

import json
from pathlib import Path

from facemark.errors import quiet_warnings
from facemark.export.network import Network, _example
from facemark.export.options import METADATA_FILE
from facemark.files import atomic_write


def _write_torchscript(net: Network, out: Path) -> None:
    import torch

    with quiet_warnings(), torch.no_grad():
        traced = torch.jit.trace(net.module, (_example(net),), check_trace=False)
    meta = dict(net.metadata, format="torchscript")
    with atomic_write(out, "wb") as fh, quiet_warnings():
        torch.jit.save(traced, fh, _extra_files={METADATA_FILE: json.dumps(meta, indent=1)})
