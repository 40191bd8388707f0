"""Reference outputs of the authors' YuNet ONNX exports, for facemark's parity test.

Runs in a separate environment with onnxruntime (facemark itself never needs it)::

    python3 -m venv /work/ort-venv && /work/ort-venv/bin/pip install onnxruntime numpy pillow
    /work/ort-venv/bin/python tools/yunet_reference.py \\
        --models ../shared/models/yunet --photos ../shared/photos \\
        --out tests/fixtures/yunet_parity.npz

The inputs are made here, by :func:`synthetic_image` (bit-exact numpy: only ``Generator.
random`` and correctly rounded arithmetic, so every machine makes the same pixels) and
:func:`photo_input` (a crop of a real photo, subsampled with an integer stride).  The fixture
holds only the ONNX outputs and the recipe (seeds, sizes, the photo's name, crop and stride,
and sha256 hashes of the input arrays): never the photo's pixels, nor anything derived from
them but the network outputs.  ``tests/test_yunet.py`` imports this file for the two recipe
functions; it does not import onnxruntime.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

VARIANTS = ("n", "s")
OUTPUT_NAMES = tuple(f"{kind}_{s}" for kind in ("cls", "obj", "bbox", "kps") for s in (8, 16, 32))
#: ``(name, seed, height, width)`` of the synthetic inputs.
SYNTHETIC = (("synthetic_0", 0, 160, 160), ("synthetic_1", 1, 128, 224))
#: The real photo: six faces (the insightface package's t1.jpg), cropped to rows, columns and
#: subsampled by an integer stride: a 160 x 256 input whose faces are about 20 px wide.
PHOTO = {
    "name": "photo",
    "file": "insightface_t1.jpg",
    "rows": (0, 800),
    "cols": (0, 1280),
    "stride": 5,
}


def synthetic_image(seed: int, height: int, width: int) -> np.ndarray:
    """A reproducible RGB uint8 test image: gradients, discs, boxes, two face-like blobs, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = xx / max(width - 1, 1), yy / max(height - 1, 1)
    coef = rng.random((4, 3))
    img = coef[0] + (coef[1] - 0.5) * u[..., None] + (coef[2] - 0.5) * v[..., None]
    img = img + (coef[3] - 0.5) * (u * v)[..., None]
    for _ in range(5):  # discs and boxes of random colour
        cx, cy, r = rng.random() * width, rng.random() * height, 4 + rng.random() * width / 5
        colour = rng.random(3)
        if rng.random() < 0.5:
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        else:
            mask = (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= 0.7 * r)
        img[mask] = colour
    for _ in range(2):  # a skin-toned ellipse with dark eyes and mouth
        cx, cy = (0.2 + 0.6 * rng.random()) * width, (0.2 + 0.6 * rng.random()) * height
        a = 10 + rng.random() * min(width, height) / 5
        b = 1.3 * a
        face = ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1.0
        img[face] = (0.85, 0.65, 0.5)
        dark = np.zeros_like(face)
        for ex in (-0.4, 0.4):
            dark |= (xx - (cx + ex * a)) ** 2 + (yy - (cy - 0.25 * b)) ** 2 <= (0.15 * a) ** 2
        dark |= (np.abs(xx - cx) <= 0.4 * a) & (np.abs(yy - (cy + 0.45 * b)) <= 0.06 * b)
        img[dark] = (0.15, 0.1, 0.1)
    img = img + (rng.random((height, width, 3)) - 0.5) * 0.12
    return np.floor(np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def photo_input(path: str | Path) -> np.ndarray:
    """The fixture's real-photo input: Pillow-decoded RGB, cropped, subsampled (numpy only)."""
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    (r0, r1), (c0, c1), s = PHOTO["rows"], PHOTO["cols"], PHOTO["stride"]
    return np.ascontiguousarray(arr[r0:r1:s, c0:c1:s])


def sha256_array(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def onnx_input(rgb: np.ndarray) -> np.ndarray:
    """What the ONNX export takes: ``(1, 3, H, W)`` float32 BGR 0-255."""
    return np.ascontiguousarray(rgb[..., ::-1].transpose(2, 0, 1)[None]).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    import onnxruntime as ort
    from PIL import __version__ as pil_version

    here = Path(__file__).resolve().parents[1]
    shared = here.parent / "shared"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=shared / "models" / "yunet")
    parser.add_argument("--photos", type=Path, default=shared / "photos")
    parser.add_argument(
        "--out", type=Path, default=here / "tests" / "fixtures" / "yunet_parity.npz"
    )
    args = parser.parse_args(argv)

    inputs = {}
    recipe: dict = {"inputs": [], "onnxruntime": ort.__version__, "pillow": pil_version}
    for name, seed, h, w in SYNTHETIC:
        inputs[name] = synthetic_image(seed, h, w)
        recipe["inputs"].append(
            {
                "name": name,
                "kind": "synthetic",
                "seed": seed,
                "height": h,
                "width": w,
                "sha256": sha256_array(inputs[name]),
            }
        )
    photo = photo_input(args.photos / PHOTO["file"])
    inputs[PHOTO["name"]] = photo
    recipe["inputs"].append(
        {
            **PHOTO,
            "kind": "photo",
            "height": photo.shape[0],
            "width": photo.shape[1],
            "sha256": sha256_array(photo),
        }
    )

    arrays: dict[str, np.ndarray] = {}
    for variant in VARIANTS:
        model = args.models / f"yunet_{variant}_dynamic.onnx"
        recipe[f"model_{variant}"] = {
            "file": model.name,
            "sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        }
        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        assert tuple(names) == OUTPUT_NAMES, names
        for name, rgb in inputs.items():
            for out_name, out in zip(
                names, session.run(None, {"input": onnx_input(rgb)}), strict=True
            ):
                arrays[f"{variant}__{name}__{out_name}"] = out.astype(np.float32)
    arrays["recipe_json"] = np.array(json.dumps(recipe, sort_keys=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"{args.out}: {args.out.stat().st_size:,} bytes, {len(arrays) - 1} arrays")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
