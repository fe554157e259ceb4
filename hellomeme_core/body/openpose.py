"""The OpenPose drawing convention a stock ControlNet OpenPose model was trained on (COCO-18 body, 21-point
hands, 70-point face), and the mapping from mediapipe's topologies to it."""
from __future__ import annotations

import colorsys

import numpy as np

# COCO-18 keypoints, in OpenPose order.
BODY_18_NAMES = ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
                 "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
                 "right_eye", "left_eye", "right_ear", "left_ear")
NECK = 1
# The mediapipe pose landmark behind each COCO-18 point; the neck (None) is the middle of the two shoulders.
MEDIAPIPE_TO_BODY_18 = (0, None, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7)
MEDIAPIPE_SHOULDERS = (11, 12)

# OpenPose limbs as (from, to) COCO-18 indices, in drawing order; the 19-entry list of the ControlNet annotator
# draws only its first 17 (the two ear-shoulder links are never drawn), one palette entry each.
LIMBS_19 = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
            (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17))
DRAWN_LIMBS = 17
LIMBS = LIMBS_19[:DRAWN_LIMBS]
# One RGB colour per keypoint (its circle) and per limb (the limb of the same index): a hue wheel in 18 steps.
BODY_COLOURS = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
                (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
                (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85))
# A limb is painted at this opacity over what is already drawn (the annotator's 0.4 / 0.6 blend).
LIMB_OPACITY = 0.6

# Hand: 21 points (wrist, then four per finger from thumb to little finger), 20 edges, each edge its own hue.
HAND_EDGES = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11), (11, 12),
              (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20))
HAND_POINT_COLOUR = (0, 0, 255)
FACE_POINT_COLOUR = (255, 255, 255)


def hand_edge_colours() -> tuple[tuple[int, int, int], ...]:
    """RGB of each hand edge: hue ``i / 20`` at full saturation and value (the convention's rainbow)."""
    out = []
    for i in range(len(HAND_EDGES)):
        r, g, b = colorsys.hsv_to_rgb(i / float(len(HAND_EDGES)), 1.0, 1.0)
        out.append((int(round(r * 255)), int(round(g * 255)), int(round(b * 255))))
    return tuple(out)


HAND_EDGE_COLOURS = hand_edge_colours()

# Mediapipe face mesh (478 points) -> the 68 points of the OpenPose / dlib face layout (jaw 0-16, brows 17-26,
# nose 27-35, eyes 36-47, mouth 48-67) plus the two pupils (68, 69): the mesh vertex nearest each dlib point.
# An approximation (the two meshes do not share vertices), good enough for a condition drawn as dots.
MEDIAPIPE_TO_FACE_70 = (
    127, 234, 93, 132, 58, 172, 136, 150, 152, 379, 365, 397, 288, 361, 323, 454, 356,  # jaw, image left to right
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,  # brows
    168, 197, 5, 4, 75, 97, 2, 326, 305,  # nose bridge, nostrils
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,  # eyes
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lips
    78, 82, 13, 312, 308, 317, 14, 87,  # inner lips
    468, 473,  # pupils (iris centres)
)
FACE_MESH_POINTS = 478


def body_18(body: np.ndarray) -> np.ndarray:
    """(..., 33, 3) mediapipe x, y, visibility -> (..., 18, 3) COCO-18 x, y, confidence (neck: the shoulders'
    midpoint, as sure as the less sure shoulder)."""
    body = np.asarray(body, dtype=np.float32)
    out = np.zeros(body.shape[:-2] + (18, 3), np.float32)
    for target, source in enumerate(MEDIAPIPE_TO_BODY_18):
        if source is not None:
            out[..., target, :] = body[..., source, :]
    left, right = (body[..., i, :] for i in MEDIAPIPE_SHOULDERS)
    out[..., NECK, :2] = (left[..., :2] + right[..., :2]) / 2
    out[..., NECK, 2] = np.minimum(left[..., 2], right[..., 2])
    return out


def face_70(landmarks: np.ndarray) -> np.ndarray | None:
    """(..., 478, 2) mediapipe face mesh -> (..., 70, 2) OpenPose face points; None for other layouts
    (the official toolkit's 222 points have no mapping here)."""
    landmarks = np.asarray(landmarks, dtype=np.float32)
    if landmarks.shape[-2] != FACE_MESH_POINTS:
        return None
    return landmarks[..., list(MEDIAPIPE_TO_FACE_70), :2]
