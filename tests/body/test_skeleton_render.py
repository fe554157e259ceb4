"""The skeleton drawing against the OpenPose convention, pixel for pixel, on synthetic poses."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from matplotlib.colors import hsv_to_rgb

from hellomeme_core.body.openpose import body_18
from hellomeme_core.body.render import draw_body, draw_hand, render_skeleton, sizes
from hellomeme_core.body.types import BodyMotion

# The convention, written out here (not imported): COCO-18 limbs (1-based, as OpenPose lists them; the last two
# are never drawn) and the 18-colour palette, RGB.
LIMB_SEQ_1_BASED = [[2, 3], [2, 6], [3, 4], [4, 5], [6, 7], [7, 8], [2, 9], [9, 10], [10, 11], [2, 12], [12, 13],
                    [13, 14], [2, 1], [1, 15], [15, 17], [1, 16], [16, 18], [3, 17], [6, 18]]
PALETTE = [[255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0], [0, 255, 0],
           [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255], [0, 0, 255], [85, 0, 255],
           [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85]]

# A standing person on a 512 canvas (COCO-18 order), arms out, well apart so limbs meet only at joints.
POSE = np.array([
    [256, 90], [256, 152], [196, 152], [140, 210], [100, 270], [316, 152], [372, 210], [412, 270],
    [220, 300], [214, 390], [210, 480], [292, 300], [298, 390], [302, 480],
    [240, 78], [272, 78], [222, 88], [290, 88]], dtype=np.float64)


def annotator(points: np.ndarray, size: int = 512) -> np.ndarray:
    """The ControlNet annotator's body drawing, re-derived: all point circles, then 17 limbs each blended over the
    whole canvas at 0.4 / 0.6."""
    canvas = np.zeros((size, size, 3), np.uint8)
    for i in range(18):
        cv2.circle(canvas, (int(points[i, 0]), int(points[i, 1])), 4, PALETTE[i], thickness=-1)
    for i in range(17):
        a, b = np.array(LIMB_SEQ_1_BASED[i]) - 1
        cur = canvas.copy()
        Y, X = points[[a, b], 0], points[[a, b], 1]
        length = ((X[0] - X[1]) ** 2 + (Y[0] - Y[1]) ** 2) ** 0.5
        angle = math.degrees(math.atan2(X[0] - X[1], Y[0] - Y[1]))
        polygon = cv2.ellipse2Poly((int(np.mean(Y)), int(np.mean(X))), (int(length / 2), 4), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(cur, polygon, PALETTE[i])
        canvas = cv2.addWeighted(canvas, 0.4, cur, 0.6, 0)
    return canvas


def drawn(points: np.ndarray) -> np.ndarray:
    canvas = np.zeros((512, 512, 3), np.uint8)
    full = np.concatenate([points, np.ones((18, 1))], 1)
    draw_body(canvas, full, 0.5, **{"stick": 4, "radius": 4})
    return canvas


def test_body_matches_the_annotator_pixel_for_pixel():
    ours = drawn(POSE)
    assert np.array_equal(ours, annotator(POSE))
    assert (ours.max(-1) == 0).mean() > 0.9  # black background


def test_each_limb_has_its_palette_colour_at_its_midpoint():
    ours = drawn(POSE)
    for i in range(17):
        a, b = np.array(LIMB_SEQ_1_BASED[i]) - 1
        x, y = ((POSE[a] + POSE[b]) / 2).astype(int)
        expected = np.round(np.array(PALETTE[i]) * 0.6)  # painted at 0.6 over black
        assert ours[y, x].tolist() == expected.tolist(), f"limb {i}"
    # The two ear-shoulder links of the 19-limb list are not drawn: black midway.
    for a, b in ([3, 17], [6, 18]):
        x, y = ((POSE[a - 1] + POSE[b - 1]) / 2).astype(int)
        assert ours[y, x].tolist() == [0, 0, 0]


def test_a_point_circle_with_one_limb_keeps_its_own_colour():
    ours = drawn(POSE)
    # Right ear (16): only limb 14 (from the right eye) reaches it; 3 pixels beyond it, away from the eye, is
    # inside the circle and past the limb's tip.
    away = (POSE[16] - POSE[14]) / np.linalg.norm(POSE[16] - POSE[14])
    x, y = np.round(POSE[16] + 3 * away).astype(int)
    assert ours[y, x].tolist() == PALETTE[16]


def test_later_limbs_are_painted_over_earlier_ones_at_a_crossing():
    pose = POSE.copy()
    pose[4] = [380, 160]  # the right wrist swings across the left upper arm (limb 4: 5->6, COCO 1-based 6->7)
    ours = drawn(pose)
    assert np.array_equal(ours, annotator(pose))
    # Where limb 3 (right forearm, index 3) crosses limb 4 (left upper arm): 0.4 x (limb 3 over black) + 0.6 x limb 4.
    p, r = pose[3], pose[4] - pose[3]
    q, s = pose[5], pose[6] - pose[5]
    t, u = np.cross(q - p, s) / np.cross(r, s), np.cross(q - p, r) / np.cross(r, s)
    assert 0.1 < t < 0.9 and 0.1 < u < 0.9  # a real crossing, away from the joints
    x, y = (p + t * r).round().astype(int)
    under = np.round(np.array(PALETTE[3]) * 0.6)
    expected = np.round(0.4 * under + 0.6 * np.array(PALETTE[4]))
    assert np.abs(ours[y, x].astype(int) - expected).max() <= 1, (ours[y, x], expected)
    assert ours[y, x].tolist() != under.tolist()  # not the earlier limb on top


def test_unseen_points_and_their_limbs_are_not_drawn():
    full = np.concatenate([POSE, np.ones((18, 1))], 1)
    full[4, 2] = 0.2  # right wrist not seen
    canvas = np.zeros((512, 512, 3), np.uint8)
    draw_body(canvas, full, 0.5, stick=4, radius=4)
    x, y = ((POSE[3] + POSE[4]) / 2).astype(int)
    assert canvas[y, x].tolist() == [0, 0, 0]
    x, y = POSE[4].astype(int)
    assert canvas[y, x].tolist() == [0, 0, 0]


def test_hand_edges_in_rainbow_order_and_blue_points():
    hand = np.zeros((21, 2))
    for finger in range(5):  # five straight fingers fanned out from the wrist at (256, 400)
        angle = math.radians(-150 + finger * 30)
        for joint in range(4):
            hand[1 + finger * 4 + joint] = [256 + math.cos(angle) * 40 * (joint + 1), 400 + math.sin(angle) * 40 * (joint + 1)]
    hand[0] = [256, 400]
    canvas = np.zeros((512, 512, 3), np.uint8)
    draw_hand(canvas, hand, line=2, radius=4)
    edges = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11), (11, 12),
             (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20)]
    for i, (a, b) in enumerate(edges):
        if a == 0:
            continue  # the five edges from the wrist overlap near it; their far halves are checked below
        x, y = ((hand[a] + hand[b]) / 2).astype(int)
        expected = np.round(hsv_to_rgb([i / 20.0, 1.0, 1.0]) * 255)
        assert canvas[y, x].tolist() == expected.tolist(), f"hand edge {i}"
    for i in (0, 4, 8, 12, 16):  # wrist edges, three quarters out
        a, b = edges[i]
        x, y = (hand[a] * 0.25 + hand[b] * 0.75).astype(int)
        assert canvas[y, x].tolist() == np.round(hsv_to_rgb([i / 20.0, 1.0, 1.0]) * 255).tolist()
    for x, y in hand.astype(int):
        assert canvas[y, x].tolist() == [0, 0, 255]


def _motion_from_coco(points: np.ndarray, frames: int = 1, source=(512, 512)) -> BodyMotion:
    """A BodyMotion whose mediapipe points map onto the given COCO-18 points (neck = the shoulders' middle)."""
    coco_to_mp = {0: 0, 2: 12, 3: 14, 4: 16, 5: 11, 6: 13, 7: 15, 8: 24, 9: 26, 10: 28, 11: 23, 12: 25, 13: 27,
                  14: 5, 15: 2, 16: 8, 17: 7}
    body = np.zeros((frames, 33, 3), np.float32)
    for coco, mp_index in coco_to_mp.items():
        body[:, mp_index, :2] = points[..., coco, :]
        body[:, mp_index, 2] = 1.0
    return BodyMotion(body=body, hands=np.zeros((frames, 2, 21, 3)), body_found=np.ones(frames),
                      hands_found=np.zeros((frames, 2)), frame_indices=np.arange(frames), fps=8.0, source_size=source)


def test_mediapipe_points_map_to_coco_18_with_the_neck_between_the_shoulders():
    motion = _motion_from_coco(POSE)
    coco = body_18(motion.body)[0]
    assert np.allclose(coco[:, :2], POSE)  # POSE's neck is exactly between its shoulders
    assert np.array_equal(render_skeleton(motion, 512, 512)[0], annotator(POSE))


def test_other_sizes_scale_the_strokes_and_fit_the_frame():
    motion = _motion_from_coco(POSE, source=(512, 512))
    assert sizes(1024, 1024) == {"stick": 8, "radius": 8, "hand_line": 4, "face_radius": 6}
    wide = render_skeleton(motion, 1024, 512)[0]  # a square source in a wide canvas: centred, 256 px each side
    assert wide.shape == (512, 1024, 3)
    assert np.array_equal(wide[:, 256:768], annotator(POSE)) and wide[:, :256].max() == 0 and wide[:, 768:].max() == 0
