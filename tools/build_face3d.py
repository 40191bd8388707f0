"""Build facemark's 3D mean face from the training frames' 2D keypoints; write face3d.py.

Rigid structure from motion (Tomasi-Kanade): every training frame is a view of roughly the
same face from a different pose (YouTube Faces videos), under nearly affine projection (the
faces are small and far from the camera).  The centred, scale-normalised 2D shapes of the
frames and of their mirror images (x -> -x renumbered with ``FLIP_PERM``, so the result is
left-right symmetric) are stacked into a ``2F x 68`` matrix; its best rank-3 factorisation
``motion @ shape`` is unique up to an invertible 3x3 ``Q``, found from the metric constraints
(each frame's two motion rows orthogonal and of equal length: linear least squares in
``L = Q Q^T``).  The shape is then

* turned so its mirror plane is ``x = 0`` and made exactly symmetric (mean with its mirror),
* oriented so that its frontal projection best matches ``shape.MEAN_SHAPE`` (the training
  frames' mean face defines pose zero; the depth sign makes the nose tip point at the camera),
* centred on the mean of its points and scaled to millimetres with the outer eye corners
  (36, 45) 90 mm apart (a typical adult biocular width), x right, y down, z away from the
  camera.

Only facemark's own training split (never val or test) is used, so the model owes nothing to
any third-party face model.  ``python tools/build_face3d.py [--limit N]`` rewrites
``src/facemark/face3d.py``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from facemark.data import load_split
from facemark.shape import MEAN_SHAPE
from facemark.transforms import FLIP_PERM

OUT = Path(__file__).resolve().parents[1] / "src" / "facemark" / "face3d.py"
EYE_MM = 90.0
MIRROR = np.diag([-1.0, 1.0, 1.0])


def normalise(kps: np.ndarray) -> np.ndarray:
    """Centre each shape and scale it to unit RMS radius: (F, 68, 2)."""
    c = kps - kps.mean(axis=1, keepdims=True)
    rms = np.sqrt((c**2).sum(axis=2).mean(axis=1))
    return c / rms[:, None, None]


def factorise(shapes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Affine factorisation of (F, 68, 2) centred shapes: ``(motion (F,2,3), shape (3,68),
    singular values)`` before the metric upgrade."""
    F = len(shapes)
    W = shapes.transpose(0, 2, 1).reshape(2 * F, -1)  # rows: x of frame 0, y of frame 0, ...
    U, S, Vt = np.linalg.svd(W, full_matrices=False)
    motion = U[:, :3] * np.sqrt(S[:3])
    shape = np.sqrt(S[:3])[:, None] * Vt[:3]
    return motion.reshape(F, 2, 3), shape, S


def _sym_row(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Coefficients of ``a^T L b`` in the 6 unknowns of symmetric L."""
    return np.array(
        [
            a[0] * b[0],
            a[0] * b[1] + a[1] * b[0],
            a[0] * b[2] + a[2] * b[0],
            a[1] * b[1],
            a[1] * b[2] + a[2] * b[1],
            a[2] * b[2],
        ]
    )


def metric_upgrade(motion: np.ndarray) -> np.ndarray:
    """``Q`` with each frame's rows of ``motion @ Q`` orthogonal and of equal length."""
    rows = []
    for m in motion:
        rows.append(_sym_row(m[0], m[0]) - _sym_row(m[1], m[1]))
        rows.append(_sym_row(m[0], m[1]))
    A = np.array(rows)
    # scale: the mean squared row length is 1
    norm = np.mean([_sym_row(m[0], m[0]) + _sym_row(m[1], m[1]) for m in motion], axis=0) / 2
    A = np.vstack([A, norm * math.sqrt(len(A))])
    b = np.zeros(len(A))
    b[-1] = math.sqrt(len(A) - 1)
    x, *_ = np.linalg.lstsq(A, b, rcond=None)
    L = np.array([[x[0], x[1], x[2]], [x[1], x[3], x[4]], [x[2], x[4], x[5]]])
    w, V = np.linalg.eigh(L)
    if w.min() <= 0:
        print(f"warning: L not positive definite (eigenvalues {w}); clipped", file=sys.stderr)
        w = np.maximum(w, 1e-6 * w.max())
    return V * np.sqrt(w)


def kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotation ``R`` (det +1) minimising ``|R @ src - dst|`` for (3, n) point sets."""
    U, _, Vt = np.linalg.svd(dst @ src.T)
    d = np.sign(np.linalg.det(U @ Vt))
    return U @ np.diag([1.0, 1.0, d]) @ Vt


def rot_power(R: np.ndarray, p: float) -> np.ndarray:
    """``R ** p`` through its axis-angle form."""
    theta = math.acos(max(-1.0, min(1.0, (np.trace(R) - 1) / 2)))
    if theta < 1e-12:
        return np.eye(3)
    axis = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    axis /= np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = p * theta
    return np.eye(3) + math.sin(a) * K + (1 - math.cos(a)) * K @ K


def mirrored(S: np.ndarray) -> np.ndarray:
    return MIRROR @ S[:, FLIP_PERM]


def fit_2d(S: np.ndarray, target: np.ndarray) -> float:
    """RMS residual of the best similarity fit of S's (x, y) to target (68, 2)."""
    a = S[:2].T - S[:2].T.mean(axis=0)
    b = target - target.mean(axis=0)
    s = (a * b).sum() / (a * a).sum()
    return float(np.sqrt(((s * a - b) ** 2).sum(axis=1).mean()))


def orient(S: np.ndarray) -> np.ndarray:
    """Rotate (3, 68) ``S`` into the canonical frame (see the module docstring)."""
    target = np.asarray(MEAN_SHAPE, np.float64)
    # 1. orthographic Procrustes of the (x, y) rows onto MEAN_SHAPE
    a = S - S.mean(axis=1, keepdims=True)
    b = (target - target.mean(axis=0)).T  # (2, 68)
    U, _, Vt = np.linalg.svd(b @ a.T)  # (2, 3)
    r12 = U @ np.eye(2, 3) @ Vt
    R = np.vstack([r12, np.cross(r12[0], r12[1])])
    S = R @ a
    if S[2, 30] > S[2, [36, 45]].mean():  # the nose tip must be nearer the camera than the eyes
        S = np.diag([1.0, 1.0, -1.0]) @ S  # the depth reflection affine SfM cannot tell
    # 2. mirror plane to x = 0: half the rotation that maps S onto its mirror image
    for _ in range(5):
        S = rot_power(kabsch(S, mirrored(S)), 0.5) @ S
    S = (S + mirrored(S)) / 2.0
    # 3. the rotation about x (pitch) that best matches the mean face, by a fine search
    best = min(
        np.linspace(-30, 30, 601),
        key=lambda deg: fit_2d(_rx(deg) @ S, target),
    )
    S = _rx(best) @ S
    # 4. in-plane angle (roll) is fixed by symmetry; yaw is zero by symmetry
    return S - S.mean(axis=1, keepdims=True)


def _rx(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])


def build(kps: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """(68, 3) model in mm from training keypoints (F, 68, 2); plus fit statistics."""
    kps = np.asarray(kps, np.float64)
    flipped = kps.copy()
    flipped[..., 0] = -flipped[..., 0]
    flipped = flipped[:, FLIP_PERM]
    shapes = normalise(np.concatenate([kps, flipped]))
    motion, shape, S = factorise(shapes)
    Q = metric_upgrade(motion)
    model = orient(np.linalg.inv(Q) @ shape)
    model *= EYE_MM / np.linalg.norm(model[:, 36] - model[:, 45])
    energy = S**2
    stats = {
        "frames": len(kps),
        "rank3_energy": float(energy[:3].sum() / energy.sum()),
        "fourth_singular_ratio": float(S[3] / S[2]),
        "mean_face_fit": float(
            fit_2d(model, np.asarray(MEAN_SHAPE, np.float64))
            / (EYE_MM / np.linalg.norm(MEAN_SHAPE[36] - MEAN_SHAPE[45]))
        ),
    }
    return model.T, stats


def write(model: np.ndarray, stats: dict[str, float], path: Path) -> None:
    rows = "\n".join(f"        ({x:.2f}, {y:.2f}, {z:.2f})," for x, y, z in model)
    path.write_text(
        f'''"""facemark's 3D mean face: 68 points in mm (generated by tools/build_face3d.py).

Derived from facemark's own training frames only, by rigid structure from motion
(Tomasi-Kanade rank-3 factorisation of the centred 2D shapes of {stats["frames"]} training
frames and their mirror images, metric upgrade, made symmetric with ``FLIP_PERM``); no
third-party face model was used.  Rank-3 share of the shapes' energy:
{stats["rank3_energy"]:.4f}.  Frame: x to image right of a frontal face (the subject's
left), y down, z away from the camera (the nose tip has the smallest z); origin at the
points' mean; outer eye corners (36, 45) {EYE_MM:.0f} mm apart.
Do not edit by hand: rerun the tool.
"""

from __future__ import annotations

import numpy as np

FACE3D = np.array(
    [
{rows}
    ],
    dtype=np.float64,
)
FACE3D.setflags(write=False)
'''
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="use N training frames")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    faces = load_split("train", limit=args.limit)
    model, stats = build(faces.keypoints)
    write(model, stats, args.out)
    print({k: round(v, 4) for k, v in stats.items()})
    depth = model[:, 2]
    print(f"depth range {depth.min():.1f}..{depth.max():.1f} mm; nose tip z {depth[30]:.1f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
