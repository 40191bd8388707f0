"""Head pose (facemark.pose): known poses recovered, mirror and in-plane rotation symmetry,
the sign conventions, degenerate input, the 3D model's facts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from facemark import pose
from facemark.errors import UsageError
from facemark.face3d import FACE3D
from facemark.pose import Pose, euler_to_rotation, head_pose, head_pose_batch, project
from facemark.transforms import FLIP_PERM

SIZE = (640, 480)
POSES = [
    (0, 0, 0),
    (15, 0, 0),
    (-30, 5, 0),
    (45, -10, 8),
    (-45, 20, -12),
    (60, 0, 0),
    (-60, 10, 5),
    (60, -15, -20),
    (10, 25, 40),
    (-20, -25, 170),
]


def synth(yaw: float, pitch: float, roll: float, t=(15.0, -10.0, 650.0), size=SIZE) -> np.ndarray:
    rvec = pose.rotation_to_rvec(euler_to_rotation(yaw, pitch, roll))
    return project(rvec, np.array(t), size)


def mirror(kps: np.ndarray, width: int) -> np.ndarray:
    out = kps.copy()
    out[:, 0] = width - 1 - out[:, 0]
    return out[FLIP_PERM]


def rotate(kps: np.ndarray, deg: float, size) -> np.ndarray:
    """Points turned ``deg`` counter-clockwise on screen about the image centre."""
    c = (np.array(size, float) - 1) / 2
    a = math.radians(deg)
    R = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])  # y grows down
    return (kps - c) @ R.T + c


@pytest.mark.parametrize("ypr", POSES)
def test_known_poses_are_recovered(ypr) -> None:
    p = head_pose(synth(*ypr), SIZE)
    assert isinstance(p, Pose) and p.valid
    got = np.array([p.yaw, p.pitch, p.roll])
    diff = (got - np.array(ypr) + 180) % 360 - 180
    assert np.abs(diff).max() < 0.5, (ypr, got)
    np.testing.assert_allclose(p.tvec, (15.0, -10.0, 650.0), atol=0.5)
    assert p.error < 1e-3


def test_recovery_with_noise_and_a_given_focal() -> None:
    rng = np.random.default_rng(0)
    kps = synth(25, -10, 5) + rng.normal(0, 0.3, (68, 2))
    p = head_pose(kps, SIZE)
    assert abs(p.yaw - 25) < 2 and abs(p.pitch + 10) < 2 and abs(p.roll - 5) < 1
    rvec = pose.rotation_to_rvec(euler_to_rotation(25, -10, 5))
    wide = project(rvec, np.array([0, 0, 400.0]), SIZE, focal=300)
    p = head_pose(wide, SIZE, focal=300)
    assert abs(p.yaw - 25) < 0.5 and abs(p.tvec[2] - 400) < 1


def test_sign_conventions() -> None:
    """yaw > 0: nose toward image right; pitch > 0: nose up; roll > 0: counter-clockwise."""
    frontal = synth(0, 0, 0)
    eyes = lambda k: (k[36] + k[45]) / 2  # noqa: E731
    right = synth(30, 0, 0)
    assert right[30, 0] - eyes(right)[0] > frontal[30, 0] - eyes(frontal)[0] + 5
    up = synth(0, 30, 0)
    assert up[30, 1] - eyes(up)[1] < frontal[30, 1] - eyes(frontal)[1] - 5
    ccw = synth(0, 0, 20)
    assert ccw[45, 1] < ccw[36, 1] - 5  # the image-right eye corner rises on screen
    assert head_pose(rotate(frontal, 20, SIZE), SIZE).roll == pytest.approx(20, abs=0.01)


@pytest.mark.parametrize("ypr", POSES)
def test_mirror_negates_yaw_and_roll(ypr) -> None:
    kps = synth(*ypr)
    a, b = head_pose(kps, SIZE), head_pose(mirror(kps, SIZE[0]), SIZE)
    assert abs(a.yaw + b.yaw) < 2 and abs(a.pitch - b.pitch) < 2
    assert abs(((a.roll + b.roll) + 180) % 360 - 180) < 2


@pytest.mark.parametrize("ypr", [(0, 0, 0), (30, 10, 5), (-45, -10, -8)])
@pytest.mark.parametrize("deg", [-30, 10, 20])
def test_in_plane_rotation_adds_to_roll(ypr, deg) -> None:
    kps = synth(*ypr)
    a, b = head_pose(kps, SIZE), head_pose(rotate(kps, deg, SIZE), SIZE)
    assert abs(b.roll - a.roll - deg) < 2
    assert abs(b.yaw - a.yaw) < 2 and abs(b.pitch - a.pitch) < 2


def test_degenerate_input_gives_a_nan_pose_or_a_usage_error() -> None:
    for bad in (np.full((68, 2), 100.0), np.full((68, 2), np.nan), synth(0, 0, 0) * np.inf):
        p = head_pose(bad, SIZE)
        assert not p.valid and math.isnan(p.yaw) and math.isnan(p.tvec[2])
        record = p.to_dict()
        assert record["yaw"] is None and record["rvec"] == [None] * 3
        json.dumps(record, allow_nan=False)
    one_nan = synth(0, 0, 0)
    one_nan[5] = np.nan
    assert not head_pose(one_nan, SIZE).valid
    with pytest.raises(UsageError, match="68, 2"):
        head_pose(np.zeros((5, 2)), SIZE)
    with pytest.raises(UsageError, match="image_size"):
        head_pose(synth(0, 0, 0), (0, 480))
    with pytest.raises(UsageError, match="image_size"):
        head_pose(synth(0, 0, 0), 640)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="focal"):
        head_pose(synth(0, 0, 0), SIZE, focal=-1)
    with pytest.raises(UsageError, match="F, 68, 2"):
        head_pose_batch(np.zeros((68, 2)), SIZE)


def test_collinear_points_do_not_raise() -> None:
    line = np.stack([np.linspace(100, 300, 68), np.full(68, 200.0)], axis=1)
    p = head_pose(line, SIZE)  # no 3D pose fits a line well; it must not raise
    assert isinstance(p, Pose)


def test_to_dict_rounding_and_openface_columns() -> None:
    p = head_pose(synth(12.3456, -7.891, 3.21), SIZE)
    d = p.to_dict()
    assert list(d) == ["yaw", "pitch", "roll", "rvec", "tvec"]
    assert d["yaw"] == round(p.yaw, 2) and d["rvec"] == [round(v, 4) for v in p.rvec]
    assert d["tvec"] == [round(v, 1) for v in p.tvec]
    json.dumps(d, allow_nan=False)
    of = p.openface()
    assert list(of) == ["pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz"]
    # OpenFace's angles are right-handed, R = Rx Ry Rz (exactly), about minus ours in radians
    a, b, c = of["pose_Rx"], of["pose_Ry"], of["pose_Rz"]
    Rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    Ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    Rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    np.testing.assert_allclose(Rx @ Ry @ Rz, p.rotation, atol=1e-9)
    small = head_pose(synth(4, -3, 2), SIZE).openface()
    assert small["pose_Ry"] == pytest.approx(-math.radians(4), abs=0.005)
    assert small["pose_Rx"] == pytest.approx(math.radians(3), abs=0.005)
    assert small["pose_Rz"] == pytest.approx(-math.radians(2), abs=0.005)
    assert all(math.isnan(v) for v in pose.NAN_POSE.openface().values())


def test_batch_matches_single() -> None:
    rng = np.random.default_rng(2)
    kps = np.stack([synth(*ypr) + rng.normal(0, 1.0, (68, 2)) for ypr in POSES])
    kps[3] = np.nan  # degenerate faces in a batch stay NaN and spoil nothing else
    kps[5] = 100.0
    batch = head_pose_batch(kps, SIZE)
    assert len(batch) == len(POSES) and not batch[3].valid and not batch[5].valid
    for b, k in zip(batch, kps, strict=True):
        one = head_pose(k, SIZE)
        assert b.valid == one.valid
        if one.valid:
            np.testing.assert_allclose(
                [b.yaw, b.pitch, b.roll, *b.tvec],
                [one.yaw, one.pitch, one.roll, *one.tvec],
                atol=1e-4,
            )
    assert head_pose_batch(np.zeros((0, 68, 2)), SIZE) == []


def test_rotation_helpers_round_trip() -> None:
    rng = np.random.default_rng(1)
    for rvec in [*rng.normal(0, 1, (20, 3)), np.zeros(3), np.array([math.pi - 1e-6, 0, 0])]:
        R = pose.rodrigues(rvec)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-9)
        np.testing.assert_allclose(pose.rodrigues(pose.rotation_to_rvec(R)), R, atol=1e-6)
    for ypr in POSES:
        R = euler_to_rotation(*ypr)
        np.testing.assert_allclose(euler_to_rotation(*pose.euler_angles(R)), R, atol=1e-9)


def test_face3d_is_symmetric_and_in_mm() -> None:
    assert FACE3D.shape == (68, 3) and not FACE3D.flags.writeable
    mirrored = FACE3D[FLIP_PERM] * (-1, 1, 1)
    np.testing.assert_allclose(mirrored, FACE3D, atol=0.02)
    assert np.linalg.norm(FACE3D[36] - FACE3D[45]) == pytest.approx(90, abs=0.05)
    assert FACE3D[30, 2] == FACE3D[:, 2].min()  # the nose tip is nearest the camera
    assert FACE3D[8, 1] > FACE3D[30, 1] > FACE3D[27, 1]  # y down: chin below nose below bridge


def test_speed_is_well_under_a_millisecond_budget() -> None:
    import time

    kps = synth(20, 5, 3)
    head_pose(kps, SIZE)
    t0 = time.perf_counter()
    for _ in range(50):
        head_pose(kps, SIZE)
    assert (time.perf_counter() - t0) / 50 < 0.02  # generous: a busy 2-core machine
