"""Pose, eyes and everything else from one FaceMotion; mouth and jaw from another (an audio-made one).

The result has the pose motion's frames, fps and every field of it unchanged (angles, translation,
landmarks, face boxes, crop box, face_found, frame indices, face-part and PD-FGC embeddings...) except the
mouth and jaw columns of ``expression`` (``visemes.MOUTH_NAMES``), which are the mouth motion's, resampled
by time to the pose motion's frames (frame k at k / fps in both). Where the pose motion is longer than the
mouth one, the mouth stays closed (neutral); a shorter pose motion cuts the mouth motion.
One more exception: the mouth's CLIP face-part embedding (``face_parts[:, 2]``, arkit mode), which shows
the driving clip's own mouth, is replaced on every frame by the one of the pose motion's most closed-mouth
frame (lowest jawOpen), so the coefficients alone move the mouth. ``extras["mouth_from_audio"]`` is True when the mouth motion came from audio, so Apply HelloMeme can tell.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from hellomeme_core.audio.visemes import MOUTH_COLUMNS
from hellomeme_core.errors import HelloMemeError
from hellomeme_core.face.types import FaceMotion


def resample_columns(values: np.ndarray, fps: float, frames: int, target_fps: float) -> np.ndarray:
    """(frames, C) of ``values`` (N, C) at ``fps``, read at k / target_fps (linear; 0 past the end)."""
    source_t = np.arange(len(values)) / fps
    t = np.arange(frames) / target_fps
    out = np.stack([np.interp(t, source_t, values[:, c]) for c in range(values.shape[1])], 1)
    out[t > source_t[-1] + 0.5 / fps] = 0.0  # past the speech: neutral mouth
    return out


def combine_motions(pose: FaceMotion, mouth: FaceMotion) -> FaceMotion:
    """``pose`` with the mouth and jaw coefficients of ``mouth`` (see the module notes)."""
    if len(mouth) == 0 or len(pose) == 0:
        raise HelloMemeError("combine: a face motion has no frames")
    if not pose.fps > 0 or not mouth.fps > 0:
        raise HelloMemeError(
            f"combine: both motions need their frame rate (pose {pose.fps:g} fps, mouth {mouth.fps:g} fps); "
            "set fps in Extract Face Motion to the video's rate")
    expression = pose.expression.copy()
    expression[:, MOUTH_COLUMNS] = resample_columns(mouth.expression[:, MOUTH_COLUMNS], mouth.fps, len(pose), pose.fps)
    extras = dict(pose.extras)
    extras["mouth_from_audio"] = bool(mouth.extras.get("mouth_from_audio", False))
    if "audio_method" in mouth.extras:
        extras["audio_method"] = mouth.extras["audio_method"]
    parts = pose.face_parts
    if parts is not None and parts.dim() == 3 and parts.shape[1] == 3:
        closed = int(np.argmin(pose.coefficient("jawOpen")))
        parts = parts.clone()
        parts[:, 2] = parts[closed, 2]
    # dataclasses.replace re-runs the checks of __post_init__ and keeps every other field as it is.
    return dataclasses.replace(pose, expression=expression, extras=extras, face_parts=parts)
