"""Convert the authors' YuNet checkpoints (mmdet format) into facemark detector checkpoints.

    python tools/convert_yunet.py --src ../shared/models/yunet --out src/facemark/weights

reads ``yunet_n.pth`` and ``yunet_s.pth`` from ``--src`` and writes ``yunet_n.pt`` and
``yunet_s.pt`` into ``--out``: the parameters renamed to :class:`facemark.detectors.yunet.
YuNetNet`'s names and stored as float16, with where they come from, their licence, what was
changed, the published WIDER FACE figures and the calibrated raw score threshold.  Tests call
:func:`convert` directly (at float32) to check the port against the authors' ONNX outputs.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import torch

from facemark.checkpoint import save_checkpoint
from facemark.detectors.yunet import ARCH, DEFAULT_SCORE_THRESHOLD, TASK, VARIANTS, YuNetNet
from facemark.files import sha256_file

SOURCE_REPO = "https://github.com/ShiqiYu/libfacedetection.train"
SOURCE_COMMIT = "0047ac24afb1a50a0c6105001c89d1b5b805dbf1"
#: Published WIDER FACE val AP (easy / medium / hard) from the repository's README.
WIDERFACE_VAL_AP = {
    "n": {"easy": 0.892, "medium": 0.883, "hard": 0.811},
    "s": {"easy": 0.887, "medium": 0.871, "hard": 0.768},
}
#: The raw ``sqrt(cls * obj)`` that facemark's ``threshold=0.5`` stands for, per variant
#: (measured on real photos; see the module docstring of facemark.detectors.yunet).
SCORE_THRESHOLD = {"n": DEFAULT_SCORE_THRESHOLD, "s": DEFAULT_SCORE_THRESHOLD}

#: mmdet module path -> YuNetNet module path (applied in order, first match wins).
_MODULE_MAP = (
    (r"^backbone\.model0\.conv1\.", "stem.conv."),
    (r"^backbone\.model0\.bn1\.", "stem.bn."),
    (r"^backbone\.model0\.conv2\.", "stem.dp."),
    (r"^backbone\.model([1-5])\.conv([12])\.", None),  # stages, see _rename
    (r"^neck\.lateral_convs\.([0-2])\.", "fpn.{0}."),
    (r"^bbox_head\.multi_level_share_convs\.([0-2])\.0\.", "heads.{0}.shared.0."),
    (r"^bbox_head\.multi_level_cls\.([0-2])\.", "heads.{0}.cls."),
    (r"^bbox_head\.multi_level_obj\.([0-2])\.", "heads.{0}.obj."),
    (r"^bbox_head\.multi_level_bbox\.([0-2])\.", "heads.{0}.box."),
    (r"^bbox_head\.multi_level_kps\.([0-2])\.", "heads.{0}.kps."),
)
#: Inside YuNet's ConvDPUnit: the 1x1 conv, the depthwise conv, the BatchNorm.
_UNIT_MAP = {"conv1.": "pw.", "conv2.": "dw.", "bn.": "bn."}


def _rename(key: str) -> str:
    for pattern, target in _MODULE_MAP:
        m = re.match(pattern, key)
        if not m:
            continue
        if target is None:  # backbone.model{i}.conv{j}. -> stages.{i-1}.{j-1}.
            target = f"stages.{int(m.group(1)) - 1}.{int(m.group(2)) - 1}."
        else:
            target = target.format(*m.groups())
        rest = key[m.end() :]
        if not target.startswith(("stem.conv.", "stem.bn.")):
            for old, new in _UNIT_MAP.items():
                if rest.startswith(old):
                    rest = new + rest[len(old) :]
                    break
            else:
                raise KeyError(f"unexpected YuNet parameter {key!r}")
        return target + rest
    raise KeyError(f"unexpected YuNet parameter {key!r}")


def rename_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The authors' parameter names -> facemark's (``KeyError`` on anything unexpected)."""
    return {_rename(k): v for k, v in state_dict.items()}


def convert(
    pth_path: str | Path, variant: str, dtype: torch.dtype = torch.float16
) -> dict[str, Any]:
    """The facemark checkpoint payload (for ``save_checkpoint``) of one authors' ``.pth``."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    pth_path = Path(pth_path)
    # the authors' file is a full mmdet checkpoint (meta, optimizer): weights_only=False is
    # needed, and acceptable for this one known file, whose sha256 is recorded below
    raw = torch.load(pth_path, map_location="cpu", weights_only=False)
    state = rename_state_dict(raw["state_dict"])
    net = YuNetNet(variant)
    net.load_state_dict(state, strict=True)  # every name and shape must fit
    state = {
        k: (v.to(dtype) if torch.is_floating_point(v) else v).contiguous().clone()
        for k, v in net.state_dict().items()
    }
    return {
        "task": TASK,
        "arch": ARCH,
        "arch_kwargs": {"variant": variant},
        "state_dict": state,
        "score_threshold": float(SCORE_THRESHOLD[variant]),
        "metadata": {
            "name": f"yunet_{variant}",
            "source_repo": SOURCE_REPO,
            "source_commit": SOURCE_COMMIT,
            "source_file": pth_path.name,
            "source_sha256": sha256_file(pth_path),
            "licence": "Apache-2.0",
            "changes": f"converted to {str(dtype).removeprefix('torch.')}, keys renamed",
            "trained_on": "WIDER FACE (research dataset)",
            "widerface_val_ap": dict(WIDERFACE_VAL_AP[variant]),
            "score_rule": "sqrt(sigmoid(cls) * sigmoid(obj))",
            "input": "BGR 0-255 inside YuNetNet.forward (facemark passes RGB in [0, 1])",
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = Path(__file__).resolve().parents[1]
    parser.add_argument(
        "--src",
        type=Path,
        default=here.parent / "shared" / "models" / "yunet",
        help="folder holding yunet_n.pth and yunet_s.pth",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=here / "src" / "facemark" / "weights",
        help="folder to write yunet_n.pt and yunet_s.pt into",
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = parser.parse_args(argv)
    for variant in args.variants:
        src = args.src / f"yunet_{variant}.pth"
        if not src.is_file():
            print(f"not found: {src}", file=sys.stderr)
            return 1
        dst = save_checkpoint(args.out / f"yunet_{variant}.pt", convert(src, variant))
        print(f"{src} -> {dst} ({dst.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
