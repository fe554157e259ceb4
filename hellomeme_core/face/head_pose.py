"""Head pose in the conventions of the official 3DMM pose network (``hello_3dmm.onnx``).

Camera space: x to the image right, y up, z toward the viewer; the camera sits at the origin looking
down -z, so a visible face has negative z. Angles are radians ordered (pitch, yaw, roll) = rotations
about (x, y, z), composed R = Rz(roll) @ Ry(yaw) @ Rx(pitch) acting on column vectors. Signs that
follow: positive yaw turns the face toward the image right, positive pitch tips the face down,
positive roll turns the face counter-clockwise as seen in the image. Translation is in 3DMM units for
a pinhole of focal length ``FOCAL_LENGTH`` pixels centred on the (512) crop: a face centre at pixel
(u, v) and depth z < 0 satisfies u - W/2 = f x / -z and H/2 - v = f y / -z.
"""
from __future__ import annotations

import numpy as np

# hello_3dmm: used_focal_len = -5.0 / camera_init_z * camera_init_focal_len, camera_init_z = -0.4.
FOCAL_LENGTH = -5.0 / -0.4 * 386.2879122887948
# Size (3DMM units) of the largest side of the official 222-landmark box on a frontal face: the 3DMM
# net sees that box at 65% of its 224 input (expand 0.35) at the initial depth 5 with the focal above,
# so 224 * 0.65 = FOCAL_LENGTH * FACE_EXTENT / 5.
FACE_EXTENT = 224 * 0.65 * 5.0 / FOCAL_LENGTH


def euler_to_matrix(angles: np.ndarray) -> np.ndarray:
    """(F, 3) radians (pitch, yaw, roll) -> (F, 3, 3) float64 R = Rz Ry Rx (column-vector convention).

    sin/cos are taken in the angles' own dtype (float32 in the official code) before widening.
    """
    angles = np.asarray(angles)
    s, c = np.sin(angles), np.cos(angles)
    frames = angles.shape[0]
    rx, ry, rz = (np.repeat(np.eye(3)[None], frames, 0) for _ in range(3))
    rx[:, 1, 1], rx[:, 1, 2], rx[:, 2, 1], rx[:, 2, 2] = c[:, 0], -s[:, 0], s[:, 0], c[:, 0]
    ry[:, 0, 0], ry[:, 0, 2], ry[:, 2, 0], ry[:, 2, 2] = c[:, 1], s[:, 1], -s[:, 1], c[:, 1]
    rz[:, 0, 0], rz[:, 0, 1], rz[:, 1, 0], rz[:, 1, 1] = c[:, 2], -s[:, 2], s[:, 2], c[:, 2]
    return np.matmul(np.matmul(rz, ry), rx)


def matrix_to_euler(rotation: np.ndarray) -> np.ndarray:
    """(F, 3, 3) R = Rz Ry Rx -> (F, 3) radians (pitch, yaw, roll); yaw kept in [-90, 90] degrees."""
    r = np.asarray(rotation, dtype=np.float64)
    yaw = -np.arcsin(np.clip(r[:, 2, 0], -1.0, 1.0))
    pitch = np.arctan2(r[:, 2, 1], r[:, 2, 2])
    roll = np.arctan2(r[:, 1, 0], r[:, 0, 0])
    return np.stack([pitch, yaw, roll], axis=1)


def degrees_yaw_pitch_roll(angles: np.ndarray) -> np.ndarray:
    """(F, 3) radians (pitch, yaw, roll) -> (F, 3) degrees (yaw, pitch, roll), the order people read."""
    deg = np.degrees(np.asarray(angles, dtype=np.float64))
    return deg[:, [1, 0, 2]]


def translation_from_image(centre_px: np.ndarray, extent_px: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(F, 3) 3DMM translation of faces whose centre is at ``centre_px`` (F, 2) and whose rotation-free
    extent (the largest side of the frontal landmark box) is ``extent_px`` (F,) in an image (W, H)."""
    width, height = image_size
    depth = FOCAL_LENGTH * FACE_EXTENT / np.maximum(np.asarray(extent_px, dtype=np.float64), 1e-6)
    x = (centre_px[:, 0] - width * 0.5) * depth / FOCAL_LENGTH
    y = (height * 0.5 - centre_px[:, 1]) * depth / FOCAL_LENGTH
    return np.stack([x, y, -depth], axis=1)
