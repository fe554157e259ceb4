"""Skeleton condition frames in the OpenPose convention: black background, coloured body limbs and points,
rainbow hands, white face dots; what a stock ControlNet OpenPose model reads."""
from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from hellomeme_core.body.openpose import (BODY_COLOURS, FACE_POINT_COLOUR, HAND_EDGE_COLOURS, HAND_EDGES,
                                          HAND_POINT_COLOUR, LIMB_OPACITY, LIMBS, NECK, body_18, face_70)
from hellomeme_core.body.retarget import link_lengths, retarget_attached, retarget_body, size_ratio
from hellomeme_core.body.types import BodyMotion
from hellomeme_core.errors import HelloMemeError

# Sizes of the convention at 512 pixels; other sizes scale them with the shorter side.
STICK_WIDTH, POINT_RADIUS, HAND_LINE, FACE_RADIUS, REFERENCE_SIZE = 4, 4, 2, 3, 512
WRISTS_18 = (7, 4)  # the person's left and right wrist among the COCO-18 points (hand slots 0, 1)
NOSE = 0
NO_PERSON_BORDER = (255, 0, 0)


def sizes(width: int, height: int) -> dict[str, int]:
    """Stroke sizes for a canvas: the convention's 512-pixel sizes scaled by the shorter side."""
    scale = min(width, height) / REFERENCE_SIZE
    return {name: max(1, int(round(value * scale))) for name, value in
            (("stick", STICK_WIDTH), ("radius", POINT_RADIUS), ("hand_line", HAND_LINE), ("face_radius", FACE_RADIUS))}


def fit(source_size: tuple[int, int], width: int, height: int) -> tuple[float, np.ndarray]:
    """(scale, offset) that fit the source frame into the canvas whole, centred, without distortion (so limb
    angles stay those of the video)."""
    src_w, src_h = (max(1, int(v)) for v in source_size)
    scale = min(width / src_w, height / src_h)
    return scale, np.array([(width - src_w * scale) / 2, (height - src_h * scale) / 2])


def draw_body(canvas: np.ndarray, points: np.ndarray, min_confidence: float, stick: int, radius: int) -> None:
    """Draw 18 COCO points (x, y, confidence) on an RGB uint8 canvas in place: every point's circle first, then
    the 17 limbs in order, each blended over what is below at the convention's opacity."""
    seen = points[:, 2] >= min_confidence
    for i, (x, y, _) in enumerate(points):
        if seen[i]:
            cv2.circle(canvas, (int(x), int(y)), radius, BODY_COLOURS[i], thickness=-1)
    for i, (a, b) in enumerate(LIMBS):
        if not (seen[a] and seen[b]):
            continue
        (xa, ya), (xb, yb) = points[a, :2], points[b, :2]
        length = math.hypot(xa - xb, ya - yb)
        angle = math.degrees(math.atan2(ya - yb, xa - xb))
        polygon = cv2.ellipse2Poly((int((xa + xb) / 2), int((ya + yb) / 2)), (int(length / 2), stick), int(angle), 0, 360, 1)
        # The blend only changes pixels inside the limb, so it is done on the limb's box alone.
        x0, y0 = np.maximum(polygon.min(0), 0)
        x1, y1 = np.minimum(polygon.max(0) + 1, (canvas.shape[1], canvas.shape[0]))
        if x1 <= x0 or y1 <= y0:
            continue
        region = canvas[y0:y1, x0:x1]
        painted = region.copy()
        cv2.fillConvexPoly(painted, polygon - np.array([x0, y0]), BODY_COLOURS[i])
        canvas[y0:y1, x0:x1] = cv2.addWeighted(region, 1.0 - LIMB_OPACITY, painted, LIMB_OPACITY, 0)


def draw_hand(canvas: np.ndarray, points: np.ndarray, line: int, radius: int) -> None:
    """Draw one 21-point hand (x, y) in place: the 20 edges in their rainbow colours, then blue points."""
    for i, (a, b) in enumerate(HAND_EDGES):
        cv2.line(canvas, (int(points[a, 0]), int(points[a, 1])), (int(points[b, 0]), int(points[b, 1])),
                 HAND_EDGE_COLOURS[i], thickness=line)
    for x, y in points[:, :2]:
        cv2.circle(canvas, (int(x), int(y)), radius, HAND_POINT_COLOUR, thickness=-1)


def draw_face(canvas: np.ndarray, points: np.ndarray, radius: int) -> None:
    """White dots at the 70 face points."""
    for x, y in points:
        cv2.circle(canvas, (int(x), int(y)), radius, FACE_POINT_COLOUR, thickness=-1)


def _face_rows(face_motion, motion: BodyMotion) -> list[np.ndarray | None]:
    """Per body row, the 70 OpenPose face points of the same source frame (source pixels), or None."""
    if face_motion is None:
        return [None] * len(motion)
    points = face_70(face_motion.landmarks)
    if points is None:
        raise HelloMemeError("the face_motion's landmarks are not mediapipe's 478-point mesh (the official face "
                             "toolkit's 222 points have no OpenPose face mapping); extract the face motion with the "
                             "mediapipe face analyzer, or turn draw_face off")
    by_frame = {int(f): row for row, f in enumerate(face_motion.frame_indices) if face_motion.face_found[row]}
    return [points[by_frame[int(f)]] if int(f) in by_frame else None for f in motion.frame_indices]


def canvas_points(motion: BodyMotion, width: int, height: int) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """(COCO-18 points (F, 18, 3), hands (F, 2, 21, 3), scale, offset) of a motion in canvas pixels."""
    scale, offset = fit(motion.source_size, width, height)
    body = body_18(motion.body).astype(np.float64)
    body[..., :2] = body[..., :2] * scale + offset
    hands = motion.hands.astype(np.float64)
    hands[..., :2] = hands[..., :2] * scale + offset
    return body, hands, scale, offset


def render_skeleton(motion: BodyMotion, width: int, height: int, face_motion=None, reference: BodyMotion | None = None,
                    draw_hands: bool = True, draw_faces: bool = True,
                    progress: Callable[[int], None] | None = None) -> np.ndarray:
    """(F, height, width, 3) uint8 RGB skeleton frames of a body motion (plus the face points of ``face_motion``),
    the source frames fitted into the canvas; with ``reference`` the limbs take the reference person's lengths and
    the neck moves from the reference's neck as the driving neck moves from its first frame."""
    body, hands, scale, offset = canvas_points(motion, width, height)
    faces = _face_rows(face_motion, motion) if draw_faces else [None] * len(motion)
    faces = [None if f is None else f * scale + offset for f in faces]
    ratio = 1.0
    if reference is not None:
        ref_body, _, _, _ = canvas_points(reference, width, height)
        ref_row = int(np.flatnonzero(reference.body_found)[0]) if reference.body_found.any() else 0
        ref_lengths = link_lengths(ref_body[ref_row])
        ratio = size_ratio(ref_lengths, link_lengths(body[0]))
        roots = ref_body[ref_row, NECK, :2] + (body[:, NECK, :2] - body[:1, NECK, :2]) * ratio
        old = body[..., :2].copy()
        body[..., :2] = retarget_body(old, ref_lengths, roots)
        for side, wrist in enumerate(WRISTS_18):  # a hand hangs off its body wrist
            hands[:, side, :, :2] = retarget_attached(hands[:, side, :, :2], old[:, wrist], body[:, wrist, :2], ratio)
        faces = [None if f is None else retarget_attached(f[None], old[i:i + 1, NOSE], body[i:i + 1, NOSE, :2], ratio)[0]
                 for i, f in enumerate(faces)]
    size = sizes(width, height)
    out = np.zeros((len(motion), height, width, 3), np.uint8)
    for i in range(len(motion)):
        draw_body(out[i], body[i], motion.min_confidence, size["stick"], size["radius"])
        if draw_hands:
            for side in range(2):
                if motion.hands_found[i, side]:
                    draw_hand(out[i], hands[i, side], size["hand_line"], size["radius"])
        if faces[i] is not None:
            draw_face(out[i], faces[i], size["face_radius"])
        if progress is not None:
            progress(i + 1)
    return out


def draw_preview(frames: np.ndarray, motion: BodyMotion) -> np.ndarray:
    """The source frames (F, H, W, 3) uint8 with the skeleton drawn over them; a red border on frames without a
    person (their skeleton, where the policy kept the frame, is the filled one)."""
    out = np.array(frames, dtype=np.uint8, copy=True)
    height, width = out.shape[1:3]
    size = sizes(width, height)
    body = body_18(motion.body)
    rows = {int(f): r for r, f in enumerate(motion.frame_indices)}
    border = max(2, min(width, height) // 64)
    missing = set(motion.no_person_indices.tolist())
    for i in range(len(out)):
        row = rows.get(i)
        if row is not None:
            draw_body(out[i], body[row], motion.min_confidence, size["stick"], size["radius"])
            for side in range(2):
                if motion.hands_found[row, side]:
                    draw_hand(out[i], motion.hands[row, side], size["hand_line"], size["radius"])
        if i in missing:
            cv2.rectangle(out[i], (0, 0), (width - 1, height - 1), NO_PERSON_BORDER, thickness=border)
    return out
