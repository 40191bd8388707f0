"""The face crop and the keypoint-exact augmentations.

One definition of "the face box" and "the crop made from a box" serves training (box from the
ground-truth keypoints, randomly jittered) and inference (box from the face detector), so the
network always sees faces framed the same way.

Coordinates follow the pixel-index convention everywhere: the integer coordinate ``i`` is the
centre of pixel ``i``, so pixel ``i`` covers ``[i - 0.5, i + 0.5)``.  Pillow's own transforms use
the edge convention (pixel ``i`` covers ``[i, i + 1)``); :func:`warp_image` is the only place
that converts between the two.

Every geometric augmentation (box jitter, rotation, scale, translation, mirror) is a 2x3 affine
matrix; they are composed with the crop matrix into one matrix, the image is resampled once and
the keypoints are moved with exactly the same matrix.  Photometric augmentations then act on
the small crop only, which keeps them cheap.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter

from facemark.errors import UsageError
from facemark.shape import NUM_POINTS

#: The face box reaches this fraction of the keypoints' height above the highest keypoint
#: (usually an eyebrow), so it covers the forehead the way a face detector's box does.
FOREHEAD = 0.25

#: The crop is a square around the box centre whose side is the box's longer side times this.
#: With ``FOREHEAD`` it leaves a margin of about 10% of the face on each side of the jaw, which
#: keeps all 68 points inside the crop under the default jitter (see docs/data-pipeline.md).
CROP_SCALE = 1.25


def _mirror_permutation() -> np.ndarray:
    """Index ``i`` of a mirrored face holds the point that was ``FLIP_PERM[i]`` before."""
    pairs = [(i, 16 - i) for i in range(8)]  # jaw 0..16 around the chin (8)
    pairs += [(17 + i, 26 - i) for i in range(5)]  # eyebrows
    pairs += [(31, 35), (32, 34)]  # nostrils; the bridge 27-30 and the tip 33 stay
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips; 51, 57 stay
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lips; 62, 66 stay
    perm = np.arange(NUM_POINTS)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    perm.setflags(write=False)
    return perm


#: The 68-point mirror permutation: ``mirrored_kps = flip_x(kps)[FLIP_PERM]``.
FLIP_PERM: np.ndarray = _mirror_permutation()


# --------------------------------------------------------------------------- affine algebra


def to_3x3(M: np.ndarray) -> np.ndarray:
    """The homogeneous 3x3 form of a 2x3 affine matrix."""
    out = np.eye(3)
    out[:2] = M
    return out


def compose(*matrices: np.ndarray) -> np.ndarray:
    """``compose(A, B, C)`` applies ``C`` first, then ``B``, then ``A`` (like ``A @ B @ C``)."""
    out = np.eye(3)
    for M in matrices:
        out = out @ to_3x3(np.asarray(M, dtype=np.float64))
    return out[:2]


def apply_affine(points: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Map ``(K, 2)`` points (or ``(..., 2)``) through a 2x3 matrix."""
    points = np.asarray(points)
    M = np.asarray(M, dtype=np.float64)
    out = points @ M[:, :2].T + M[:, 2]
    return out.astype(points.dtype if points.dtype.kind == "f" else np.float64)


def invert_affine(M: np.ndarray) -> np.ndarray:
    """The 2x3 matrix that undoes ``M`` (crop pixels back to image pixels, for instance)."""
    return np.linalg.inv(to_3x3(np.asarray(M, dtype=np.float64)))[:2]


def similarity(
    angle_deg: float = 0.0, scale: float = 1.0, centre=(0.0, 0.0), shift=(0.0, 0.0)
) -> np.ndarray:
    """Rotate by ``angle_deg`` (counter-clockwise as seen on screen) and scale about ``centre``,
    then translate by ``shift``."""
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a) * scale, np.sin(a) * scale
    # y grows downward, so a visually counter-clockwise turn has this sign pattern.
    A = np.array([[c, s], [-s, c]])
    cx, cy = centre
    t = np.array([cx, cy]) - A @ np.array([cx, cy]) + np.asarray(shift, dtype=np.float64)
    return np.hstack([A, t[:, None]])


def hflip_matrix(width: int) -> np.ndarray:
    """Mirror left-right inside an image ``width`` pixels wide (pixel-index convention)."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0]])


# --------------------------------------------------------------------------- face box and crop


def face_box_from_keypoints(kps: np.ndarray) -> np.ndarray:
    """THE face box: the keypoints' bounding box, extended upward by ``FOREHEAD`` of its height.

    Works on ``(68, 2)`` or a batch ``(N, 68, 2)``; returns ``(4,)`` / ``(N, 4)`` as
    ``x0, y0, x1, y1`` in the keypoints' pixel coordinates.
    """
    kps = np.asarray(kps, dtype=np.float64)
    lo, hi = kps.min(axis=-2), kps.max(axis=-2)
    y0 = lo[..., 1] - FOREHEAD * (hi[..., 1] - lo[..., 1])
    return np.stack([lo[..., 0], y0, hi[..., 0], hi[..., 1]], axis=-1).astype(np.float32)


def crop_matrix(box: np.ndarray, out_size: int) -> np.ndarray:
    """Image pixels -> crop pixels for the square crop of ``box``.

    The crop is centred on the box centre, with side ``max(w, h) * CROP_SCALE``; the box centre
    lands on the crop's centre ``(out_size - 1) / 2``.
    """
    x0, y0, x1, y1 = (float(v) for v in np.asarray(box).reshape(4))
    side = max(x1 - x0, y1 - y0, 1.0) * CROP_SCALE
    k = out_size / side
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = (out_size - 1) / 2
    return np.array([[k, 0.0, half - k * cx], [0.0, k, half - k * cy]])


def _as_pil(image: np.ndarray | Image.Image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise UsageError(f"expected an (H, W, 3) uint8 RGB image, got {arr.dtype} {arr.shape}")
    return Image.fromarray(arr, "RGB")


def _prereduce(img: Image.Image, M: np.ndarray, out_size: int) -> tuple[Image.Image, np.ndarray]:
    """Box-filter the source first when the warp shrinks it more than 2x.

    Bilinear resampling only looks at 4 source pixels, so a strong reduction (a big face in a
    photo taken down to 128 px) would alias.  Averaging f x f blocks of just the needed region
    brings the remaining reduction under 2x; the returned matrix maps the reduced image.
    """
    scale = float(np.sqrt(abs(np.linalg.det(M[:, :2]))))
    if scale >= 0.5:
        return img, M
    f = int(np.floor(1.0 / scale))
    corners = np.array(
        [[-0.5, -0.5], [out_size - 0.5, -0.5], [-0.5, out_size - 0.5], [out_size - 0.5] * 2]
    )
    src = apply_affine(corners, invert_affine(M))
    x0, y0 = np.floor(src.min(0)).astype(int) - 2 * f
    x1, y1 = np.ceil(src.max(0)).astype(int) + 2 * f
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, img.width), min(y1, img.height)
    if x1 - x0 < f or y1 - y0 < f:  # the crop lies outside the image: nothing to average
        return img, M
    reduced = img.crop((x0, y0, x1, y1)).reduce(f)
    # reduced pixel j averages source pixels x0 + j*f .. x0 + j*f + f - 1, centred here:
    back = np.array([[f, 0.0, x0 + (f - 1) / 2], [0.0, f, y0 + (f - 1) / 2]])
    return reduced, compose(M, back)


def warp_image(image: np.ndarray | Image.Image, M: np.ndarray, out_size: int) -> np.ndarray:
    """Resample ``image`` into an ``out_size`` square so that image point ``p`` lands on ``M p``.

    Bilinear, black outside the image, with a box pre-filter for strong reductions.
    """
    img = _as_pil(image)
    img, M = _prereduce(img, np.asarray(M, dtype=np.float64), out_size)
    inv = invert_affine(M)
    # Pillow maps output edge coordinates X to input edge coordinates; edge = index + 0.5.
    A, t = inv[:, :2], inv[:, 2]
    t_edge = t + 0.5 - A @ np.array([0.5, 0.5])
    data = (A[0, 0], A[0, 1], t_edge[0], A[1, 0], A[1, 1], t_edge[1])
    out = img.transform(
        (out_size, out_size), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR
    )
    return np.asarray(out)


def crop_face(
    image: np.ndarray | Image.Image, box: np.ndarray, out_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The inference-time crop: ``(crop uint8 (S, S, 3), M image->crop)``.

    Map predictions back with ``apply_affine(kps_crop, invert_affine(M))``.
    """
    M = crop_matrix(box, out_size)
    return warp_image(image, M, out_size), M


def to_tensor(
    crops: np.ndarray, memory_format: torch.memory_format = torch.contiguous_format
) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` or ``(B, H, W, 3)`` -> float32 channels-first, values in [0, 1].

    ``memory_format=torch.channels_last`` (a batch) keeps the crops' own pixel order in
    memory: no transposing copy here and none again before a channels-last network.
    """
    arr = np.ascontiguousarray(crops)
    if arr.dtype != np.uint8 or arr.ndim not in (3, 4) or arr.shape[-1] != 3:
        raise UsageError(
            f"expected uint8 (H, W, 3) or (B, H, W, 3) crops, got {arr.dtype} {arr.shape}"
        )
    if not arr.flags.writeable:  # torch warns about read-only buffers (e.g. from PIL)
        arr = arr.copy()
    t = torch.from_numpy(arr)
    t = t.permute(2, 0, 1) if arr.ndim == 3 else t.permute(0, 3, 1, 2)
    layout = memory_format if arr.ndim == 4 else torch.contiguous_format  # one crop: no batch
    return t.contiguous(memory_format=layout).float().div_(255.0)


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """The inverse of :func:`to_tensor` (for drawing what the network sees)."""
    t = tensor.detach().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)
    t = t.permute(1, 2, 0) if t.ndim == 3 else t.permute(0, 2, 3, 1)
    return t.contiguous().numpy()


# --------------------------------------------------------------------------- augmentation


@dataclass
class AugmentConfig:
    """What training randomises.  Ranges are symmetric ``±value`` unless a pair is given.

    Geometric defaults are chosen so that all 68 points stay inside the crop in practice
    (docs/data-pipeline.md has the measurement); probabilities ``p_*`` gate each
    photometric operation independently.
    """

    # geometry (all composed into one affine warp)
    box_shift: float = 0.05  #: box centre moves by up to this fraction of the box w / h
    box_scale: float = 0.08  #: box w and h change independently by up to this fraction
    rotation: float = 30.0  #: degrees, uniform in ±rotation
    scale: tuple[float, float] = (0.9, 1.1)  #: zoom, log-uniform
    translate: float = 0.04  #: fraction of the crop size
    p_flip: float = 0.5  #: horizontal mirror with FLIP_PERM
    #: Narrow the face horizontally (in the face's own frame, before rotation) by a factor
    #: drawn from ``squeeze``: a cheap stand-in for the foreshortening of a turned head.
    p_squeeze: float = 0.0
    squeeze: tuple[float, float] = (0.7, 1.0)
    # photometric (on the crop)
    p_color: float = 0.8
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    channel_gain: float = 0.08  #: per-channel gain, a cheap white-balance / hue shift
    p_gray: float = 0.1
    p_blur: float = 0.15
    blur_sigma: tuple[float, float] = (0.3, 1.5)  #: in crop pixels
    p_lowres: float = 0.1
    lowres_factor: tuple[float, float] = (0.3, 0.7)  #: down- then up-sample: small faces
    p_noise: float = 0.2
    noise_sigma: tuple[float, float] = (2.0, 10.0)  #: Gaussian noise, 0-255 units
    p_jpeg: float = 0.2
    jpeg_quality: tuple[int, int] = (25, 90)
    p_occlude: float = 0.25
    occlude_size: tuple[float, float] = (0.1, 0.4)  #: rectangle sides as fractions of the crop
    max_occluders: int = 2
    #: After the random warp, zoom out about the crop centre just enough to keep every point
    #: this many pixels inside the crop (a few % of samples need it); negative disables.
    fit_margin: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def with_overrides(cls, spec: str | None) -> AugmentConfig:
        """The defaults changed by ``"key=value,..."`` (``--augment``); a pair is ``lo:hi``."""
        if not spec:
            return cls()
        base = asdict(cls())
        for item in spec.split(","):
            key, sep, text = (part.strip() for part in item.partition("="))
            if not sep or key not in base:
                known = ", ".join(base)
                raise UsageError(f"--augment takes key=value,... with keys {known}; got {item!r}")
            try:
                kind = type(base[key])
                if isinstance(base[key], tuple):
                    lo, hi = text.split(":")
                    elem = type(base[key][0])
                    base[key] = (elem(lo), elem(hi))
                else:
                    base[key] = kind(float(text)) if kind is int else kind(text)
            except ValueError:
                raise UsageError(f"--augment {key}: cannot read {text!r}") from None
            if key.startswith("p_") and not 0 <= base[key] <= 1:
                raise UsageError(f"--augment {key} is a probability in [0, 1], got {text}")
        return cls.from_dict(base)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AugmentConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for k, v in known.items():
            if isinstance(v, list):
                known[k] = tuple(v)
        return cls(**known)


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for one sample: reproducible, resumable and distinct across workers."""
    return np.random.default_rng([int(seed), int(epoch), int(index), 0xFACE])


def jitter_box(box: np.ndarray, rng: np.random.Generator, shift: float, scale: float) -> np.ndarray:
    """Move and resize a box the way an imperfect detector would."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2 + rng.uniform(-shift, shift) * w
    cy = (y0 + y1) / 2 + rng.uniform(-shift, shift) * h
    w *= 1 + rng.uniform(-scale, scale)
    h *= 1 + rng.uniform(-scale, scale)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dtype=np.float32)


def random_geometry(
    box: np.ndarray, out_size: int, cfg: AugmentConfig, rng: np.random.Generator
) -> tuple[np.ndarray, bool]:
    """One random image -> crop matrix (jittered crop, then rotation/scale/shift/mirror)."""
    jittered = jitter_box(box, rng, cfg.box_shift, cfg.box_scale)
    M = crop_matrix(jittered, out_size)
    centre = ((out_size - 1) / 2, (out_size - 1) / 2)
    angle = rng.uniform(-cfg.rotation, cfg.rotation)
    lo, hi = np.log(cfg.scale[0]), np.log(cfg.scale[1])
    zoom = float(np.exp(rng.uniform(lo, hi)))
    shift = rng.uniform(-cfg.translate, cfg.translate, size=2) * out_size
    flip = bool(rng.random() < cfg.p_flip)
    # Drawn after the older draws, so p_squeeze=0 leaves every other sample as it was.
    if cfg.p_squeeze > 0 and rng.random() < cfg.p_squeeze:
        M = compose(squeeze_matrix(rng.uniform(*cfg.squeeze), centre), M)
    M = compose(similarity(angle, zoom, centre, shift), M)
    if flip:
        M = compose(hflip_matrix(out_size), M)
    return M, flip


def squeeze_matrix(factor: float, centre: tuple[float, float]) -> np.ndarray:
    """Scale x by ``factor`` about ``centre``, y unchanged (2x3)."""
    cx = centre[0]
    return np.array([[factor, 0.0, cx * (1 - factor)], [0.0, 1.0, 0.0]], dtype=np.float64)


def fit_inside(points: np.ndarray, M: np.ndarray, out_size: int, margin: float) -> np.ndarray:
    """``M`` followed by the smallest zoom-out about the crop centre that brings ``points``
    (already mapped by ``M``) at least ``margin`` px inside the crop; ``M`` itself if they are."""
    half = (out_size - 1) / 2
    reach = float(np.abs(np.asarray(points) - half).max())
    room = half - margin
    if reach <= room or room <= 0:
        return M
    return compose(similarity(0.0, room / reach, (half, half)), M)


def transform_keypoints(kps: np.ndarray, M: np.ndarray, flipped: bool) -> np.ndarray:
    """Move keypoints with the warp; a mirrored face also renumbers its points."""
    out = apply_affine(np.asarray(kps, dtype=np.float64), M)
    return out[FLIP_PERM] if flipped else out


_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _color(x: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast, saturation and channel gains on a float (H, W, 3) image."""
    x = x * (1 + rng.uniform(-cfg.brightness, cfg.brightness))
    mean = float((x @ _LUMA).mean())
    x = (x - mean) * (1 + rng.uniform(-cfg.contrast, cfg.contrast)) + mean
    gray = x @ _LUMA
    s = 1 + rng.uniform(-cfg.saturation, cfg.saturation)
    x = gray[..., None] + (x - gray[..., None]) * s
    gains = 1 + rng.uniform(-cfg.channel_gain, cfg.channel_gain, size=3)
    return x * gains.astype(np.float32)


def _occlude(x: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> None:
    """Paint 1..max_occluders rectangles of flat colour or noise, in place."""
    height, width = x.shape[:2]
    for _ in range(int(rng.integers(1, cfg.max_occluders + 1))):
        fw, fh = rng.uniform(*cfg.occlude_size, size=2)
        w, h = min(int(fw * width) + 1, width), min(int(fh * height) + 1, height)
        x0, y0 = rng.integers(0, width - w + 1), rng.integers(0, height - h + 1)
        if rng.random() < 0.5:
            x[y0 : y0 + h, x0 : x0 + w] = rng.uniform(0, 255, size=3)
        else:
            x[y0 : y0 + h, x0 : x0 + w] = rng.uniform(0, 255, size=(h, w, 3))


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """A fixed field of unit Gaussian noise; samples take random windows of it.

    Drawing fresh normals for every pixel costs more than the rest of the photometric chain;
    a random window (with random mirroring) of a 4x larger field is just as good for training.
    """
    bank = np.random.default_rng(0x5EED).standard_normal((512, 512, 3), dtype=np.float32)
    bank.setflags(write=False)
    return bank


def _noise_patch(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    bank = _noise_bank()
    h, w = shape[0], shape[1]
    if h > bank.shape[0] or w > bank.shape[1]:  # larger than the bank: draw it directly
        return rng.standard_normal(shape, dtype=np.float32)
    y, x = rng.integers(0, bank.shape[0] - h + 1), rng.integers(0, bank.shape[1] - w + 1)
    patch = bank[y : y + h, x : x + w]
    return patch[:, ::-1] if rng.random() < 0.5 else patch


def photometric(crop: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Appearance changes that never move a keypoint; uint8 (H, W, 3) in and out.

    All on/off decisions are drawn up front, so changing one probability does not change
    which other operations fire for a given sample.
    """
    u = rng.random(8)
    img = Image.fromarray(crop)
    if u[0] < cfg.p_lowres:
        f = rng.uniform(*cfg.lowres_factor)
        small = (max(8, round(img.width * f)), max(8, round(img.height * f)))
        full = img.size
        img = img.resize(small, Image.Resampling.BILINEAR, reducing_gap=None)
        img = img.resize(full, Image.Resampling.BILINEAR)
    if u[1] < cfg.p_blur:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(*cfg.blur_sigma)))
    x = np.asarray(img, dtype=np.float32)
    if u[2] < cfg.p_color:
        x = _color(x, cfg, rng)
    if u[3] < cfg.p_gray:
        x = np.repeat(x @ _LUMA, 3).reshape(x.shape)
    if u[4] < cfg.p_occlude:
        x = np.array(x, copy=True)
        _occlude(x, cfg, rng)
    if u[5] < cfg.p_noise:
        x = x + _noise_patch(x.shape, rng) * np.float32(rng.uniform(*cfg.noise_sigma))
    out = np.clip(x + 0.5, 0, 255).astype(np.uint8)
    if u[6] < cfg.p_jpeg:
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=int(rng.integers(*cfg.jpeg_quality)))
        buf.seek(0)
        with Image.open(buf) as decoded:
            decoded.load()
            out = np.asarray(decoded)
    return out


def augment(
    image: np.ndarray | Image.Image,
    kps: np.ndarray,
    out_size: int,
    cfg: AugmentConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training sample: ``(crop uint8 (S, S, 3), keypoints (68, 2) crop px, M)``.

    ``M`` is the full image -> crop matrix (before any mirroring is undone): it is what a
    caller needs to map a prediction back onto the source image.
    """
    M, flipped = random_geometry(face_box_from_keypoints(kps), out_size, cfg, rng)
    if cfg.fit_margin >= 0:
        M = fit_inside(
            apply_affine(np.asarray(kps, dtype=np.float64), M), M, out_size, cfg.fit_margin
        )
    crop = warp_image(image, M, out_size)
    return photometric(crop, cfg, rng), transform_keypoints(kps, M, flipped), M
