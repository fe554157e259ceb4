"""Combine keeps the pose motion bit for bit apart from the mouth; the idle motion is seeded and gentle."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hellomeme_core.audio.combine import combine_motions
from hellomeme_core.audio.idle import BLINK_GAP, SWAY_DEGREES, idle_motion
from hellomeme_core.audio.motion import PHONEMES, audio_to_face_motion
from hellomeme_core.audio.visemes import MOUTH_COLUMNS, MOUTH_NAMES
from hellomeme_core.face.arkit import ARKIT_NAMES
from hellomeme_core.face.types import FaceMotion
from tests.audio.speech import speech


def _pose(frames: int, fps: float) -> FaceMotion:
    """A driving-video-like motion with every field filled with distinct values."""
    rng = np.random.default_rng(3)
    return FaceMotion(
        angles=rng.normal(0, 0.2, (frames, 3)), translation=rng.normal(0, 1, (frames, 3)),
        expression=rng.uniform(0, 1, (frames, 51)), face_found=rng.uniform(size=frames) > 0.1,
        landmarks=rng.uniform(0, 500, (frames, 478, 2)), face_boxes=rng.uniform(0, 500, (frames, 4)),
        crop_box=np.array([10, 20, 410, 420]), frame_indices=np.arange(frames) + 5, fps=fps, source_size=(640, 480),
        face_parts=torch.randn(frames, 3, 16), pd_fpg=torch.randn(frames, 548), extras={"neg_pd_fpg": torch.zeros(548)},
    )


def test_combine_keeps_the_pose_frame_by_frame():
    samples, rate = speech("en_words")
    mouth, _ = audio_to_face_motion(samples, rate, 25.0, PHONEMES)  # 25 fps mouth onto an 8 fps pose
    pose = _pose(30, 8.0)
    out = combine_motions(pose, mouth)
    assert len(out) == len(pose) and out.fps == pose.fps
    for name in ("angles", "translation", "landmarks", "face_boxes", "crop_box", "face_found", "frame_indices"):
        assert np.array_equal(getattr(out, name), getattr(pose, name)), name
        assert getattr(out, name).dtype == getattr(pose, name).dtype
    assert torch.equal(out.pd_fpg, pose.pd_fpg) and out.source_size == pose.source_size
    others = [i for i in range(51) if i not in set(MOUTH_COLUMNS.tolist())]
    assert np.array_equal(out.expression[:, others], pose.expression[:, others])
    assert "eyeBlinkLeft" not in MOUTH_NAMES and "jawOpen" in MOUTH_NAMES and len(MOUTH_NAMES) == 27
    # The mouth is the audio's, read at the pose frames' times (frame k at k / 8 s = audio frame 25k/8).
    jaw = ARKIT_NAMES.index("jawOpen")
    t = np.arange(30) / 8.0
    np.testing.assert_allclose(out.expression[:, jaw], np.interp(t, np.arange(len(mouth)) / 25.0,
                                                                 mouth.expression[:, jaw]), atol=1e-6)
    assert out.extras["mouth_from_audio"] and out.extras["neg_pd_fpg"] is pose.extras["neg_pd_fpg"]
    # Eye parts stay; the mouth part is the pose's most closed-mouth frame's on every frame.
    assert torch.equal(out.face_parts[:, :2], pose.face_parts[:, :2])
    closed = int(np.argmin(pose.coefficient("jawOpen")))
    assert torch.equal(out.face_parts[:, 2], pose.face_parts[closed, 2].expand(30, -1))
    # A pose longer than the speech: the mouth rests (neutral) after it.
    long_out = combine_motions(_pose(60, 8.0), mouth)
    assert not long_out.expression[50:, MOUTH_COLUMNS].any()


def test_idle_motion_is_seeded_and_gentle():
    a, b, c = idle_motion(400, 25.0, seed=7), idle_motion(400, 25.0, seed=7), idle_motion(400, 25.0, seed=8)
    assert np.array_equal(a.angles, b.angles) and np.array_equal(a.expression, b.expression)
    assert not np.allclose(a.angles, c.angles)
    degrees = np.degrees(np.abs(a.angles)).max(axis=0)
    assert np.all(degrees <= SWAY_DEGREES + 1e-4) and np.all(degrees >= 0.3 * SWAY_DEGREES)  # moves, a few degrees
    speed = np.degrees(np.abs(np.diff(a.angles, axis=0))).max() * 25.0
    assert speed < 8.0  # deg/s: a sway, never a nod
    blink = a.coefficient("eyeBlinkLeft")
    assert np.array_equal(blink, a.coefficient("eyeBlinkRight"))
    closed = blink > 0.5
    starts = np.flatnonzero(closed[1:] & ~closed[:-1]) + 1
    gaps = np.diff(starts) / 25.0
    assert len(starts) >= 2 and gaps.min() >= BLINK_GAP[0] - 0.2 and gaps.max() <= BLINK_GAP[1] + 0.2
    lengths = [np.argmin(closed[s:]) / 25.0 for s in starts]
    assert max(lengths) <= 0.2  # about 150 ms each
    mouth = a.expression[:, MOUTH_COLUMNS]
    assert not mouth.any()
    # At 8 fps every blink still closes the eyes fully on one frame.
    slow = idle_motion(80, 8.0, seed=7)
    assert (slow.coefficient("eyeBlinkLeft") == 1.0).sum() >= 2


def test_idle_motion_around_a_reference():
    reference = _pose(1, 25.0)
    idle = idle_motion(50, 8.0, seed=1, base=reference)
    assert np.array_equal(idle.translation, np.repeat(reference.translation, 50, 0))
    assert np.array_equal(idle.landmarks, np.repeat(reference.landmarks, 50, 0))
    assert np.array_equal(idle.crop_box, reference.crop_box) and idle.face_parts.shape == (50, 3, 16)
    sway = np.degrees(np.abs(idle.angles - reference.angles[:1]))
    assert np.all(sway.max(axis=0) <= SWAY_DEGREES + 1e-3)


def test_idle_needs_frames():
    from hellomeme_core.errors import HelloMemeError

    with pytest.raises(HelloMemeError, match="fps"):
        idle_motion(0, 8.0)
