"""A built-in idle motion: gentle natural head sway and blinks, for talking without a driving video.

Sway: each angle (pitch, yaw, roll) is a sum of three slow sines (0.05-0.4 Hz, random phases from ``seed``),
scaled so it stays within ``SWAY_DEGREES`` of frontal. Blinks: ``eyeBlinkLeft/Right`` close for about
150 ms (a raised-cosine pulse) every 2 to 6 s (uniform, from ``seed``). Same seed, same motion.
"""
from __future__ import annotations

import numpy as np

from hellomeme_core.errors import HelloMemeError
from hellomeme_core.face.arkit import ARKIT_NAMES
from hellomeme_core.face.types import FaceMotion

SWAY_DEGREES = np.array([2.5, 4.0, 2.0])  # most pitch, yaw, roll may reach (a few degrees)
BLINK_SECONDS = 0.15
BLINK_GAP = (2.0, 6.0)
_FREQUENCIES = (0.05, 0.4)  # Hz: slow, never a nod or shake
# Without a base motion the head sits centred in the crop at a typical portrait's depth (measured on the
# reference portraits with the mediapipe backend: z from -3.1 to -4.4).
DEFAULT_TRANSLATION = (0.0, 0.0, -3.5)
_BLINKS = [ARKIT_NAMES.index("eyeBlinkLeft"), ARKIT_NAMES.index("eyeBlinkRight")]


def idle_motion(frames: int, fps: float, seed: int = 0, base: FaceMotion | None = None) -> FaceMotion:
    """``frames`` frames at ``fps`` of idle head motion (see the module notes).

    With ``base`` (the reference portrait's motion) the sway is added to its first frame's pose, and its
    translation, expression, landmarks, face box, crop box, source size and face parts are held on every
    frame. Without it the head is frontal at ``DEFAULT_TRANSLATION``, the landmarks are empty and the boxes
    zeros: then only pose and blinks mean something."""
    if frames < 1 or not fps > 0:
        raise HelloMemeError(f"idle motion: needs at least one frame and fps above 0 (got {frames} frames, {fps} fps)")
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    angles = np.zeros((frames, 3))
    for axis in range(3):
        freqs = rng.uniform(*_FREQUENCIES, size=3)
        phases = rng.uniform(0, 2 * np.pi, size=3)
        weights = rng.uniform(0.5, 1.0, size=3)
        wave = (weights[:, None] * np.sin(2 * np.pi * freqs[:, None] * t[None] + phases[:, None])).sum(0)
        # Scaled by the sum of the weights (the most the sines can add up to), never beyond the bound.
        angles[:, axis] = np.radians(SWAY_DEGREES[axis]) * wave / weights.sum()
    expression = np.zeros((frames, 51))
    blink = np.zeros(frames)
    at = rng.uniform(0.5, BLINK_GAP[0])  # first blink soon, so short clips blink too
    while at < t[-1] + BLINK_SECONDS:
        inside = np.abs(t - at) < BLINK_SECONDS / 2
        # Raised cosine, at least one frame fully closed even at 8 fps (a frame lasts 125 ms, a blink 150).
        pulse = 0.5 + 0.5 * np.cos(2 * np.pi * (t - at) / BLINK_SECONDS)
        blink = np.maximum(blink, np.where(inside, pulse, 0.0))
        nearest = int(np.argmin(np.abs(t - at)))
        blink[nearest] = 1.0
        at += rng.uniform(*BLINK_GAP)
    hold = lambda a: np.repeat(np.asarray(a[:1]), frames, axis=0)  # noqa: E731  (first frame on every frame)
    if base is not None and len(base):
        angles = angles + base.angles[:1].astype(np.float64)
        expression = hold(base.expression).astype(np.float64)
        translation, landmarks, boxes = hold(base.translation), hold(base.landmarks), hold(base.face_boxes)
        crop_box, size, parts = base.crop_box, base.source_size, base.face_parts
        parts = None if parts is None else parts[:1].repeat(frames, *([1] * (parts.dim() - 1)))
    else:
        translation = np.tile(np.array(DEFAULT_TRANSLATION), (frames, 1))
        landmarks, boxes, crop_box, size, parts = np.zeros((frames, 0, 2)), np.zeros((frames, 4)), np.zeros(4), (0, 0), None
    expression[:, _BLINKS] = np.maximum(expression[:, _BLINKS], blink[:, None])
    return FaceMotion(
        angles=angles, translation=translation, expression=expression, face_found=np.ones(frames, bool),
        landmarks=landmarks, face_boxes=boxes, crop_box=crop_box, frame_indices=np.arange(frames), fps=float(fps),
        source_size=tuple(size), backend="idle", source_frames=frames, face_parts=parts,
        extras={"idle_seed": int(seed)},
    )
