"""int8 landmark models for the CPU: FX graph-mode post-training static quantisation.

What is quantised: the normalisation, backbone and neck of the networks built on facemark's
backbone (``heatmap`` and ``integral``; ``regression``, which has no neck, its normalisation
and backbone).  The last 1x1 head conv and the decoding stay float32 (quantising the head
costs accuracy for no speed).  ``torch.ao.quantization``'s FX API does it: ``prepare_fx`` with
the ``x86`` qconfig mapping (fbgemm / oneDNN kernels; per-channel int8 weights, uint8
activations with histogram observers), calibration on face crops of the training split
without augmentation, ``convert_fx``.  FX fuses conv + BatchNorm + ReLU itself, so it starts
from the network as trained (BatchNorm not folded).  On the bundled model this keeps val
NME_io within 0.05 points and runs about twice (batch 1) to four times (batch 32) as fast on
two CPU threads (docs/model.md).

An int8 checkpoint is an ordinary facemark landmark checkpoint (:mod:`facemark.checkpoint`)
whose ``state_dict`` is the quantised network's and which says so: ``"quantized":``
:data:`SCHEME` and ``"quantized_parts"`` (the submodules replaced by the int8 graph).
:func:`rebuild_int8` turns it back into the module without any calibration data: the float
network of the checkpoint's arch, ``prepare_fx`` with an example input, ``convert_fx`` (its
placeholder scales come from observers that saw nothing), then ``load_state_dict`` of the
saved converted state, which sets every scale, zero point and packed weight; the result is
bit-identical to the calibrated module it was saved from.  :meth:`facemark.Landmarker.
from_checkpoint` does this whenever a checkpoint says ``quantized``, so every command that
takes a landmark model takes an int8 one; quantised kernels run on the CPU only.

:func:`facemark.export.export_int8` (``facemark export MODEL --format int8``) makes such a
checkpoint and scores it against the float model on the model's own ``val`` split.

This module imports torch only when it quantises, so the CLI can read its constants cheaply.
The deprecated ``torch.ao.quantization`` API warns at every step; those warnings are
silenced here, users never see them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from facemark.config import EXPORT
from facemark.errors import CheckpointError, FacemarkError, UsageError, quiet_warnings

if TYPE_CHECKING:
    import torch
    from torch import nn

#: What an int8 checkpoint's ``quantized`` field says: the only scheme this facemark makes.
SCHEME = "int8-fx-x86"
#: The torch quantisation backend the qconfig targets and the kernels run on.
ENGINE = "x86"
#: Training-split crops the observers see, their random pick and the calibration batch size.
CALIB_CROPS = EXPORT.calib
CALIB_SEED = EXPORT.calib_seed
CALIB_BATCH = 32
#: NME (percentage points) an int8 model may lose against its float model and be "within".
NME_TOLERANCE = 0.05


def unavailable() -> str | None:
    """Why this torch cannot run int8 models (None when it can)."""
    import torch

    try:
        with quiet_warnings():
            from torch.ao.quantization import get_default_qconfig_mapping  # noqa: F401
            from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx  # noqa: F401
    except ImportError:
        return f"torch {torch.__version__} has no FX quantisation (torch.ao.quantization)"
    engines = torch.backends.quantized.supported_engines
    if ENGINE not in engines and "fbgemm" not in engines:
        return (
            f"torch {torch.__version__} has no x86 quantised engine (it has: "
            f"{', '.join(e for e in engines if e != 'none') or 'none'})"
        )
    return None


def _use_x86_engine() -> None:
    """Quantised kernels of the engine the qconfig targets (x86, else fbgemm): a torch
    default on x86 builds, set here where something else was chosen."""
    import torch

    why = unavailable()
    if why:
        raise FacemarkError(f"int8 models need torch's x86 FX quantisation: {why}")
    if torch.backends.quantized.engine not in (ENGINE, "fbgemm"):
        supported = torch.backends.quantized.supported_engines
        torch.backends.quantized.engine = ENGINE if ENGINE in supported else "fbgemm"


def quantized_parts(model: nn.Module, head: bool = False) -> list[str]:
    """The submodules the int8 graph covers, in forward order: ``norm``, ``backbone`` and,
    where the network has one, ``neck`` (with ``head`` also the 1x1 head conv after it).

    A network without facemark's backbone (``udacity``) is a one-line :class:`UsageError`.
    """
    from torch import nn

    arch = getattr(model, "arch", type(model).__name__)
    if not hasattr(model, "backbone") or not hasattr(model, "norm"):
        raise UsageError(
            f"arch {arch!r} cannot be quantised to int8: only the networks on facemark's "
            "backbone can (heatmap, integral, regression)"
        )
    parts = ["norm", "backbone"] + (["neck"] if hasattr(model, "neck") else [])
    if head:
        if "neck" not in parts or not isinstance(getattr(model, "head", None), nn.Conv2d):
            raise UsageError(f"arch {arch!r} has no conv head after a neck to quantise")
        parts.append("head")
    return parts


def _fx_modules() -> tuple[Any, Any, Any]:
    _use_x86_engine()
    with quiet_warnings():
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

        mapping = get_default_qconfig_mapping(ENGINE)
    return prepare_fx, convert_fx, mapping


def _convert(model: nn.Module, parts: list[str], example: torch.Tensor, calib: Any) -> nn.Module:
    """``model`` (a copy, eval mode) with ``parts`` replaced by one int8 graph: the last part
    becomes the graph, the ones before it identities, so the model's own ``forward`` (and
    its float head, ``view`` and ``decode``) still run.  ``calib``: crops to observe, or None
    (placeholder scales, for :func:`rebuild_int8`)."""
    import torch
    from torch import nn

    prepare_fx, convert_fx, mapping = _fx_modules()
    model = copy.deepcopy(model).eval()
    body = nn.Sequential(*(getattr(model, p) for p in parts))
    with quiet_warnings():
        prepared = prepare_fx(body, mapping, (example,))
        if calib is not None:
            with torch.no_grad():
                for start in range(0, len(calib), CALIB_BATCH):
                    prepared(calib[start : start + CALIB_BATCH])
        quantised = convert_fx(prepared)
    for p in parts[:-1]:
        setattr(model, p, nn.Identity())
    setattr(model, parts[-1], quantised)
    model.int8_parts = tuple(parts)
    return model


def quantize_int8(model: nn.Module, crops: torch.Tensor, head: bool = False) -> nn.Module:
    """An int8 copy of a float landmark network, calibrated on ``crops``.

    ``model``: the network as trained (eval mode, BatchNorm not folded: FX fuses it);
    ``crops``: float ``(N, 3, S, S)`` in [0, 1], face crops without augmentation (the
    training split's: :func:`facemark.export.split_crops`), observed :data:`CALIB_BATCH` at
    a time.  The copy's ``int8_parts`` names the submodules the int8 graph replaced;
    ``model`` is left as it is.
    """
    if len(crops) == 0:
        raise UsageError("int8 calibration needs at least one crop")
    parts = quantized_parts(model, head)
    return _convert(model, parts, crops[:2], crops)


def rebuild_int8(
    model: nn.Module, state_dict: Mapping[str, Any], parts: list[str] | tuple[str, ...]
) -> nn.Module:
    """The int8 module a saved ``state_dict`` (of :func:`quantize_int8`'s module) came from,
    without calibration data: ``model`` is a float skeleton of the same arch and arguments
    (its weights do not matter), ``parts`` the saved ``int8_parts``.  Mismatching keys or
    shapes raise torch's RuntimeError."""
    import torch

    parts = list(parts)
    allowed = quantized_parts(model, head="head" in parts)
    if parts != allowed:
        raise RuntimeError(f"int8 parts {parts} do not fit this arch (it has {allowed})")
    size = int(getattr(model, "img_size", 0) or 128)
    example = torch.zeros(2, 3, size, size)
    rebuilt = _convert(model, parts, example, None)
    with quiet_warnings():
        rebuilt.load_state_dict(state_dict)
    return rebuilt.eval()


def from_checkpoint(model: nn.Module, data: Mapping[str, Any], where: str, device: str) -> Any:
    """The int8 network of a checkpoint that says ``quantized`` (:class:`facemark.Landmarker.
    from_checkpoint`'s path for int8), on the CPU; every way it cannot be is one line."""
    import torch

    scheme = data.get("quantized")
    if scheme != SCHEME:
        raise CheckpointError(
            f"{where} is quantised as {scheme!r}, which this facemark does not run "
            f"(it runs {SCHEME!r}); upgrade facemark or use the float model"
        )
    if torch.device(device).type != "cpu":
        raise UsageError(
            f"{where} is an int8 model, which runs on the CPU only: use --device cpu, or the "
            f"float model on {device}"
        )
    why = unavailable()
    if why:
        raise CheckpointError(f"{where} is an int8 model, which needs FX quantisation: {why}")
    try:
        return rebuild_int8(model, data["state_dict"], data.get("quantized_parts") or ())
    except (RuntimeError, TypeError, KeyError, UsageError) as exc:
        what = " ".join(str(exc).split())[:240] or type(exc).__name__  # torch's, in one line
        made = data.get("torch_version")
        hint = f" (made with torch {made}, this is torch {torch.__version__})" if made else ""
        raise CheckpointError(f"{where}: its int8 weights do not load{hint}: {what}") from None
