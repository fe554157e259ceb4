"""Absolute head-pose signs of the mediapipe backend on labelled real frames.

The convention is the official 3DMM one (``hellomeme_core.face.head_pose``, from the official
``hello_3dmm.compute_rotation_matrix``): R = Rz(roll) Ry(yaw) Rx(pitch) on column vectors, camera x to
the image right, y up, z toward the viewer. So a face's forward axis (0, 0, 1) turned by +yaw points
to +x: **+yaw = face turned toward the image right**; turned by +pitch it points to -y: **+pitch = face
tipped down (chin down)**. The flip test in ``test_mediapipe_motion`` only proves yaw up to a global
sign; these frames pin the sign itself. What each frame shows was checked by looking at it.
"""
from __future__ import annotations

import numpy as np
import pytest

from hellomeme_core.face.analyzer import extract_face_motion
from hellomeme_core.face.head_pose import euler_to_matrix
from hellomeme_core.face.landmark_pose import RIGID, pose_from_landmarks, to_camera_axes
from tests.face.media_cache import analyzer, clip, motion


def _yaw_pitch(relative: str, frame: int = 0, mirrored: bool = False) -> tuple[float, float]:
    image = clip(relative).frames[frame]
    if mirrored:
        image = np.ascontiguousarray(image[:, ::-1])
    yaw, pitch, _ = extract_face_motion(analyzer(), image[None]).yaw_pitch_roll_degrees[0]
    return float(yaw), float(pitch)


@pytest.mark.parametrize(("relative", "frame", "at_most"), [
    ("driving/ysll.mp4", 0, -20.0),  # the singer's nose points well toward the image left (about 45 degrees)
    ("driving/amns.mp4", 0, -20.0),  # the man under the straw hat looks off toward the image left
    ("reference/chillout.jpg", 0, -5.0),  # the white-haired girl's face is turned a little toward the image left
])
def test_face_turned_toward_image_left_has_negative_yaw(relative, frame, at_most):
    yaw, _ = _yaw_pitch(relative, frame)
    print(f"{relative}[{frame}]: yaw {yaw:.1f} deg")
    assert yaw < at_most


def test_mirrored_frame_turned_toward_image_right_has_positive_yaw():
    """ysll frame 0 mirrored left-right: the same head now turned about 45 degrees toward the image right."""
    yaw, _ = _yaw_pitch("driving/ysll.mp4", 0, mirrored=True)
    assert yaw > 20.0


def test_chin_down_has_positive_pitch_and_chin_up_negative():
    """qie frame 2: the boy's head is bowed, eyes on the table in front of him (chin down).
    amns frame 0: the man tips his head back and looks up past the hat brim (chin up)."""
    _, down = _yaw_pitch("driving/qie.mp4", 2)
    _, up = _yaw_pitch("driving/amns.mp4", 0)
    print(f"pitch chin down {down:.1f}, chin up {up:.1f} deg")
    assert down > 4.0
    assert up < -10.0


def test_pitch_falls_steadily_while_the_head_comes_up():
    """qie frames 6..14: the boy lifts his bowed head until he faces the camera, one smooth nod up.
    Pitch must fall frame after frame (within tracking noise) by a plausible angle for that nod."""
    pitch = motion("driving/qie.mp4").yaw_pitch_roll_degrees[6:15, 1]
    print("qie pitch frames 6..14:", np.round(pitch, 1))
    assert (np.diff(pitch) < 0.5).all()
    assert 8.0 < pitch[0] - pitch[-1] < 30.0


def _rotated_about_centre(points_px: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """mediapipe pixel points turned rigidly by ``rotation`` (camera axes) about the face's rigid centre."""
    camera = to_camera_axes(points_px.astype(np.float64))
    centre = camera[:, RIGID].mean(axis=1, keepdims=True)
    return to_camera_axes((camera - centre) @ rotation.T + centre)


@pytest.mark.parametrize("degrees", [-20.0, -10.0, 10.0, 20.0])
def test_out_of_plane_turn_of_the_landmarks_changes_pitch_and_yaw_by_that_angle(degrees):
    """Units of the landmark geometry: the 3D landmarks of a frontal portrait (civitai1) turned rigidly by
    a known pitch (chin down for +) or yaw (toward the image right for +) read that change in degrees,
    and the nose tip moves the way the sign says (down / to the image right in the picture)."""
    points, found = analyzer().landmarker.landmarks(clip("reference/civitai1.jpg").frames)
    assert found.all()
    size = clip("reference/civitai1.jpg").size
    base, _ = pose_from_landmarks(points, size)
    angle = np.radians(degrees)
    for axis, (column, image_axis) in {"pitch": (0, 1), "yaw": (1, 0)}.items():
        delta = np.zeros((1, 3))
        delta[0, column] = angle
        turned = _rotated_about_centre(points, euler_to_matrix(delta)[0])
        angles, _ = pose_from_landmarks(turned, size)
        change = np.degrees(angles[0, column] - base[0, column])
        assert change == pytest.approx(degrees, abs=1.0), axis
        nose_shift = turned[0, 1, image_axis] - points[0, 1, image_axis]  # landmark 1: nose tip
        assert np.sign(nose_shift) == np.sign(degrees), axis  # image y grows downward, x to the right
