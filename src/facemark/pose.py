"""Head pose from the 68 keypoints: yaw, pitch and roll of each face (pure numpy).

``head_pose(keypoints, (width, height))`` fits facemark's 3D mean face
(:data:`facemark.face3d.FACE3D`, 68 points in mm, derived from the training frames by
``tools/build_face3d.py``) to the 2D points through a pinhole camera whose focal length is
guessed from the image size (``focal = max(width, height)`` px unless given) with the
principal point at the image centre ``((width - 1) / 2, (height - 1) / 2)`` (pixel-centre
convention, so mirroring an image mirrors the pose exactly).  The solve (PnP) starts from a
weak-perspective alignment (least squares + SVD) and refines rotation (axis-angle) and
translation by Levenberg-Marquardt on the reprojection error: about 0.5 ms per face,
0.15 ms per face in :func:`head_pose_batch`.

**Frames.** Camera frame as in OpenCV and OpenFace: x to image right, y to image down, z
away from the camera into the scene.  The model's frame: x to image right of a frontal face
(the subject's left), y down (chin below the eyes), z from the face towards the back of the
head (the nose tip has the smallest z).  A camera point is ``R @ model_point + tvec`` with
``R = rodrigues(rvec)``; pose zero is the training frames' mean face looking straight into
the camera.

**Angles** (degrees), from ``R = Rz(-roll) @ Ry(-yaw) @ Rx(-pitch)`` with ``Rx``, ``Ry``,
``Rz`` the right-handed rotations about the camera axes:

* ``yaw > 0``: the subject turns to their own left, i.e. the face (nose) turns toward
  image right;
* ``pitch > 0``: the subject looks up (the nose moves toward the top of the image);
* ``roll > 0``: the face is rotated counter-clockwise in the image as seen on screen (the
  subject tilts the head toward their left shoulder, which is on image right).

Roll is the last rotation applied, about the optical axis, so rotating an image in plane
about its centre by ``a`` degrees counter-clockwise adds exactly ``a`` to roll; mirroring
the image negates yaw and roll and keeps pitch.

**OpenFace.** OpenFace's CSV ``pose_Rx, pose_Ry, pose_Rz`` (radians) are Euler angles of
the same kind of camera-frame rotation but in the other order, ``R = Rx @ Ry @ Rz``, and
with the right-handed sign: :meth:`Pose.openface` gives them from this pose's ``rvec``
(so ``pose_Rx ~ -radians(pitch)``, ``pose_Ry ~ -radians(yaw)``, ``pose_Rz ~ -radians(roll)``
for small angles; they differ in second order because of the order), plus ``pose_Tx,
pose_Ty, pose_Tz`` (mm).  The 3D models differ, so their zero poses agree only roughly.

Degenerate input (non-finite points, all points (nearly) equal) gives a pose of NaNs,
:meth:`Pose.valid` ``False`` (``to_dict`` writes ``null`` then); a wrong array shape or
image size is a :class:`~facemark.errors.UsageError`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from facemark.errors import UsageError
from facemark.face3d import FACE3D

_NAN3 = (math.nan, math.nan, math.nan)


@dataclass(frozen=True)
class Pose:
    """A head pose: Euler angles in degrees (conventions in the module docstring), the
    rotation as a Rodrigues vector (radians) and the translation (mm, camera frame)."""

    yaw: float
    pitch: float
    roll: float
    rvec: tuple[float, float, float]
    tvec: tuple[float, float, float]
    error: float = math.nan  #: RMS reprojection error in px (how well the rigid model fits)

    @property
    def valid(self) -> bool:
        return math.isfinite(self.yaw)

    @property
    def rotation(self) -> np.ndarray:
        """The 3x3 rotation matrix (model -> camera)."""
        return rodrigues(np.asarray(self.rvec, np.float64))

    def to_dict(self) -> dict[str, Any]:
        """``{"yaw", "pitch", "roll", "rvec", "tvec"}`` rounded (2 decimals for degrees, 4
        for ``rvec``, 1 for ``tvec``); NaNs become ``None`` (JSON ``null``)."""

        def r(v: float, nd: int) -> float | None:
            return round(float(v), nd) if math.isfinite(v) else None

        return {
            "yaw": r(self.yaw, 2),
            "pitch": r(self.pitch, 2),
            "roll": r(self.roll, 2),
            "rvec": [r(v, 4) for v in self.rvec],
            "tvec": [r(v, 1) for v in self.tvec],
        }

    def openface(self) -> dict[str, float]:
        """OpenFace's CSV pose columns: ``pose_Tx, pose_Ty, pose_Tz`` (mm) and ``pose_Rx,
        pose_Ry, pose_Rz`` (radians, ``R = Rx @ Ry @ Rz``)."""
        if not self.valid:
            return {f"pose_{k}": math.nan for k in ("Tx", "Ty", "Tz", "Rx", "Ry", "Rz")}
        R = self.rotation
        ry = math.asin(max(-1.0, min(1.0, R[0, 2])))
        rx = math.atan2(-R[1, 2], R[2, 2])
        rz = math.atan2(-R[0, 1], R[0, 0])
        tx, ty, tz = self.tvec
        return {
            "pose_Tx": tx,
            "pose_Ty": ty,
            "pose_Tz": tz,
            "pose_Rx": rx,
            "pose_Ry": ry,
            "pose_Rz": rz,
        }


NAN_POSE = Pose(math.nan, math.nan, math.nan, _NAN3, _NAN3)


# --------------------------------------------------------------------------- rotations


def _skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def rodrigues(rvec: np.ndarray) -> np.ndarray:
    """Rotation matrix of an axis-angle vector (radians)."""
    rvec = np.asarray(rvec, np.float64)
    theta = float(np.linalg.norm(rvec))
    if theta < 1e-12:
        return np.eye(3) + _skew(rvec)
    k = _skew(rvec / theta)
    return np.eye(3) + math.sin(theta) * k + (1.0 - math.cos(theta)) * (k @ k)


def rotation_to_rvec(R: np.ndarray) -> np.ndarray:
    """Axis-angle vector (radians) of a rotation matrix."""
    cos = max(-1.0, min(1.0, (np.trace(R) - 1.0) / 2.0))
    theta = math.acos(cos)
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    if theta < 1e-8:
        return w / 2.0
    if math.pi - theta < 1e-4:  # near 180 degrees: the axis from R + I
        M = (R + np.eye(3)) / 2.0
        axis = M[int(np.argmax(np.diag(M)))]
        axis = axis / np.linalg.norm(axis)
        if w @ axis < 0:
            axis = -axis
        return axis * theta
    return w * (theta / (2.0 * math.sin(theta)))


def euler_angles(R: np.ndarray) -> tuple[float, float, float]:
    """``(yaw, pitch, roll)`` in degrees of ``R = Rz(-roll) @ Ry(-yaw) @ Rx(-pitch)``."""
    b = math.asin(max(-1.0, min(1.0, -R[2, 0])))  # Ry angle
    a = math.atan2(R[2, 1], R[2, 2])  # Rx angle
    c = math.atan2(R[1, 0], R[0, 0])  # Rz angle
    return -math.degrees(b), -math.degrees(a), -math.degrees(c)


def euler_to_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The rotation of ``(yaw, pitch, roll)`` degrees (inverse of :func:`euler_angles`)."""
    a, b, c = (-math.radians(v) for v in (pitch, yaw, roll))
    ca, sa = math.cos(a), math.sin(a)
    cb, sb = math.cos(b), math.sin(b)
    cc, sc = math.cos(c), math.sin(c)
    Rx = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
    Ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
    Rz = np.array([[cc, -sc, 0], [sc, cc, 0], [0, 0, 1]])
    return Rz @ Ry @ Rx


# --------------------------------------------------------------------------- camera


def camera(image_size: Sequence[float], focal: float | None = None) -> tuple[float, float, float]:
    """``(focal, cx, cy)`` in px: the guessed pinhole camera of an image ``(width, height)``."""
    try:
        w, h = (float(v) for v in image_size)
    except (TypeError, ValueError):
        raise UsageError(f"image_size must be (width, height), got {image_size!r}") from None
    if not (w > 0 and h > 0 and math.isfinite(w) and math.isfinite(h)):
        raise UsageError(f"image_size must be two positive numbers, got {image_size!r}")
    f = max(w, h) if focal is None else float(focal)
    if not (f > 0 and math.isfinite(f)):
        raise UsageError(f"focal must be a positive number of pixels, got {focal!r}")
    return f, (w - 1.0) / 2.0, (h - 1.0) / 2.0


def project(
    rvec: np.ndarray,
    tvec: np.ndarray,
    image_size: Sequence[float],
    focal: float | None = None,
    model: np.ndarray | None = None,
) -> np.ndarray:
    """The (68, 2) image points of the 3D model (default :data:`FACE3D`) at this pose."""
    f, cx, cy = camera(image_size, focal)
    X = (FACE3D if model is None else np.asarray(model, np.float64)) @ rodrigues(rvec).T
    X = X + np.asarray(tvec, np.float64)
    return np.stack([f * X[:, 0] / X[:, 2] + cx, f * X[:, 1] / X[:, 2] + cy], axis=1)


# --------------------------------------------------------------------------- solver


def _initial(uv: np.ndarray, model: np.ndarray, f: float) -> tuple[np.ndarray, np.ndarray]:
    """Weak-perspective start: ``uv - mean ~ s * R[:2] @ (X - mean)``, rows made orthonormal."""
    Xc = model - model.mean(axis=0)
    xc = uv - uv.mean(axis=0)
    A, *_ = np.linalg.lstsq(Xc, xc, rcond=None)  # (3, 2): xc ~ Xc @ A
    M = A.T  # (2, 3)
    U, S, Vt = np.linalg.svd(M, full_matrices=False)
    r12 = U @ Vt  # nearest matrix with orthonormal rows
    scale = float(S.mean())
    R = np.vstack([r12, np.cross(r12[0], r12[1])])
    if np.linalg.det(R) < 0:  # cannot happen with a cross product, kept for safety
        R[2] = -R[2]
    tz = f / scale
    centre = uv.mean(axis=0)
    t = np.array([centre[0] * tz / f, centre[1] * tz / f, tz]) - R @ model.mean(axis=0)
    return R, t


def _solve(
    uv: np.ndarray, model: np.ndarray, f: float, iterations: int = 30
) -> tuple[np.ndarray, np.ndarray, float]:
    """Levenberg-Marquardt on the reprojection error; ``uv`` relative to the principal point.

    Returns ``(R, t, rms px)``."""
    R, t = _initial(uv, model, f)
    target = uv.reshape(-1)

    def residual(R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        P = model @ R.T + t
        z = P[:, 2]
        if np.any(z <= 1e-6):
            return P, np.full_like(target, np.inf)
        proj = np.stack([f * P[:, 0] / z, f * P[:, 1] / z], axis=1)
        return P, proj.reshape(-1) - target

    P, r = residual(R, t)
    cost = float(r @ r)
    lam = 1e-3
    n = len(model)
    for _ in range(iterations):
        x, y, z = P[:, 0], P[:, 1], P[:, 2]
        # d proj / d P  (n, 2, 3)
        dP = np.zeros((n, 2, 3))
        dP[:, 0, 0] = f / z
        dP[:, 0, 2] = -f * x / z**2
        dP[:, 1, 1] = f / z
        dP[:, 1, 2] = -f * y / z**2
        # d P / d omega for R <- exp(omega) R: -[RX]x ; RX = P - t
        Q = P - t
        dW = np.zeros((n, 3, 3))
        dW[:, 0, 1], dW[:, 0, 2] = Q[:, 2], -Q[:, 1]
        dW[:, 1, 0], dW[:, 1, 2] = -Q[:, 2], Q[:, 0]
        dW[:, 2, 0], dW[:, 2, 1] = Q[:, 1], -Q[:, 0]
        J = np.concatenate([dP @ dW, dP], axis=2).reshape(-1, 6)
        g = J.T @ r
        H = J.T @ J
        improved = False
        for _ in range(8):
            try:
                step = np.linalg.solve(H + lam * np.diag(np.diag(H) + 1e-9), -g)
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            R_new = rodrigues(step[:3]) @ R
            t_new = t + step[3:]
            P_new, r_new = residual(R_new, t_new)
            c_new = float(r_new @ r_new)
            if c_new < cost:
                R, t, P, r = R_new, t_new, P_new, r_new
                improved = cost - c_new > 1e-10 * max(cost, 1e-12)
                cost = c_new
                lam = max(lam / 10.0, 1e-9)
                break
            lam *= 10.0
        if not improved:
            break
    return R, t, math.sqrt(cost / n)


def head_pose(
    keypoints: np.ndarray,
    image_size: Sequence[float],
    focal: float | None = None,
) -> Pose:
    """The head pose of one face: ``keypoints`` (68, 2) in image px (0-based pixel centres)
    of an image ``(width, height)``; ``focal`` in px (default ``max(width, height)``).

    Non-finite or collapsed keypoints give :data:`NAN_POSE`."""
    f, cx, cy = camera(image_size, focal)
    kps = np.asarray(keypoints, dtype=np.float64)
    if kps.shape != FACE3D.shape[:1] + (2,):
        raise UsageError(f"keypoints must be a (68, 2) array, got shape {kps.shape}")
    if not np.all(np.isfinite(kps)):
        return NAN_POSE
    uv = kps - (cx, cy)
    if float(np.sqrt(((uv - uv.mean(axis=0)) ** 2).sum(axis=1).mean())) < MIN_SPREAD:
        return NAN_POSE  # all points (nearly) on one spot: no shape to fit
    with np.errstate(all="ignore"):
        return _make_pose(*_solve(uv, FACE3D, f))


#: RMS distance of the points from their centroid (px) below which there is no shape to fit.
MIN_SPREAD = 1e-3


def _make_pose(R: np.ndarray, t: np.ndarray, err: float) -> Pose:
    if not (np.all(np.isfinite(R)) and np.all(np.isfinite(t)) and math.isfinite(err)):
        return NAN_POSE
    yaw, pitch, roll = euler_angles(R)
    rvec = rotation_to_rvec(R)
    return Pose(
        yaw,
        pitch,
        roll,
        tuple(float(v) for v in rvec),  # type: ignore[arg-type]
        tuple(float(v) for v in t),  # type: ignore[arg-type]
        float(err),
    )


def head_pose_batch(
    keypoints: np.ndarray, image_size: Sequence[float], focal: float | None = None
) -> list[Pose]:
    """:func:`head_pose` of each face of ``keypoints`` (F, 68, 2), all in one image size
    (the frames of a video): the same poses, solved together (about 150 us per face)."""
    f, cx, cy = camera(image_size, focal)
    kps = np.asarray(keypoints, dtype=np.float64)
    if kps.ndim != 3 or kps.shape[1:] != (68, 2):
        raise UsageError(f"keypoints must be an (F, 68, 2) array, got shape {kps.shape}")
    out = [NAN_POSE] * len(kps)
    uv = kps - (cx, cy)
    with np.errstate(invalid="ignore"):
        spread = np.sqrt(((uv - uv.mean(axis=1, keepdims=True)) ** 2).sum(axis=2).mean(axis=1))
    ok = np.flatnonzero(np.isfinite(uv).all(axis=(1, 2)) & (spread >= MIN_SPREAD))
    if len(ok):
        try:
            with np.errstate(all="ignore"):
                R, t, err = _solve_batch(uv[ok], FACE3D, f)
        except np.linalg.LinAlgError:  # one face's normal equations singular: one at a time
            for k in ok:
                out[k] = head_pose(kps[k], image_size, focal)
            return out
        for i, k in enumerate(ok):
            out[k] = _make_pose(R[i], t[i], err[i])
    return out


def _rodrigues_batch(w: np.ndarray) -> np.ndarray:
    """Rotation matrices (F, 3, 3) of axis-angle vectors (F, 3)."""
    theta = np.linalg.norm(w, axis=1)
    safe = np.where(theta < 1e-12, 1.0, theta)
    k = w / safe[:, None]
    K = np.zeros((len(w), 3, 3))
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    K[:, 1, 0], K[:, 2, 0], K[:, 2, 1] = k[:, 2], -k[:, 1], k[:, 0]
    s, c = np.sin(theta)[:, None, None], (1.0 - np.cos(theta))[:, None, None]
    return np.eye(3) + s * K + c * (K @ K)


def _solve_batch(
    uv: np.ndarray, model: np.ndarray, f: float, iterations: int = 50
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_solve` for (F, 68, 2) faces at once (one numpy pass per iteration for all):
    ``(R (F, 3, 3), t (F, 3), rms px (F,))``."""
    F, n = len(uv), len(model)
    Xc = model - model.mean(axis=0)
    xc = uv - uv.mean(axis=1, keepdims=True)
    M = np.einsum("kn,fnj->fjk", np.linalg.pinv(Xc), xc)  # (F, 2, 3): xc ~ Xc @ M^T
    U, S, Vt = np.linalg.svd(M, full_matrices=False)
    r12 = U @ Vt
    R = np.concatenate([r12, np.cross(r12[:, 0], r12[:, 1])[:, None]], axis=1)
    tz = f / S.mean(axis=1)
    centre = uv.mean(axis=1)
    t = np.stack([centre[:, 0] * tz / f, centre[:, 1] * tz / f, tz], axis=1)
    t = t - R @ model.mean(axis=0)
    target = uv.reshape(F, -1)

    def residual(R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        P = np.einsum("fjk,nk->fnj", R, model) + t[:, None]
        z = P[..., 2]
        bad = np.any(z <= 1e-6, axis=1)
        z = np.where(z <= 1e-6, 1e-6, z)
        proj = f * P[..., :2] / z[..., None]
        r = proj.reshape(F, -1) - target
        cost = np.where(bad, np.inf, (r * r).sum(axis=1))
        return P, r, cost

    P, r, cost = residual(R, t)
    lam = np.full(F, 1e-3)
    active = np.isfinite(cost)
    eye6 = np.eye(6)
    for _ in range(iterations):
        if not active.any():
            break
        x, y, z = P[..., 0], P[..., 1], P[..., 2]
        dP = np.zeros((F, n, 2, 3))
        dP[..., 0, 0] = f / z
        dP[..., 0, 2] = -f * x / z**2
        dP[..., 1, 1] = f / z
        dP[..., 1, 2] = -f * y / z**2
        Q = P - t[:, None]
        dW = np.zeros((F, n, 3, 3))
        dW[..., 0, 1], dW[..., 0, 2] = Q[..., 2], -Q[..., 1]
        dW[..., 1, 0], dW[..., 1, 2] = -Q[..., 2], Q[..., 0]
        dW[..., 2, 0], dW[..., 2, 1] = Q[..., 1], -Q[..., 0]
        J = np.concatenate([dP @ dW, dP], axis=3).reshape(F, -1, 6)
        Jt = J.transpose(0, 2, 1)
        g = (Jt @ r[..., None])[..., 0]
        H = Jt @ J
        H[~active], g[~active] = eye6, 0.0  # finished faces: a zero step
        damp = lam[:, None, None] * (H * eye6 + 1e-9 * eye6)
        step = -np.linalg.solve(H + damp, g[..., None])[..., 0]
        R_new = _rodrigues_batch(step[:, :3]) @ R
        t_new = t + step[:, 3:]
        P_new, r_new, c_new = residual(R_new, t_new)
        better = active & (c_new < cost)
        gain = np.where(better, cost - c_new, 0.0)
        R[better], t[better], P[better], r[better] = (
            R_new[better],
            t_new[better],
            P_new[better],
            r_new[better],
        )
        converged = better & (gain <= 1e-10 * np.maximum(c_new, 1e-12))
        cost = np.where(better, c_new, cost)
        lam = np.where(better, np.maximum(lam / 10.0, 1e-9), lam * 10.0)
        active &= ~converged & (lam < 1e6)
    return R, t, np.sqrt(cost / n)
