"""The mediapipe backend on real portraits and driving videos: faces found, pose signs and units,
expression, smoothing."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from hellomeme_core.face.analyzer import extract_face_motion
from hellomeme_core.face.types import ARKIT_NAMES
from tests.face.media_cache import DRIVING_VIDEOS, analyzer, clip, motion


def jitter_degrees(angles_deg: np.ndarray) -> float:
    """Mean absolute second difference of the angles (degrees per frame^2): frame-to-frame shake."""
    return float(np.abs(np.diff(angles_deg, n=2, axis=0)).mean())


@pytest.mark.parametrize("name", DRIVING_VIDEOS)
def test_every_frame_of_every_driving_video_has_a_face(name):
    m = motion(f"driving/{name}.mp4")
    c = clip(f"driving/{name}.mp4")
    assert len(m) == len(c.frames)
    assert m.frames_without_face == 0
    assert m.expression.shape == (len(c.frames), 51)
    assert m.landmarks.shape == (len(c.frames), 478, 2)
    assert m.fps == pytest.approx(c.fps) and m.audio_path == c.audio_path
    # The official crop is a square inside the frame that holds every frame's face.
    x0, y0, x1, y1 = m.crop_box
    assert x1 - x0 == y1 - y0 and x0 >= 0 and y0 >= 0 and x1 <= c.size[0] and y1 <= c.size[1]


@pytest.mark.parametrize("name", DRIVING_VIDEOS)
def test_smoothing_reduces_jitter(name):
    raw = jitter_degrees(motion(f"driving/{name}.mp4").yaw_pitch_roll_degrees)
    smooth = jitter_degrees(motion(f"driving/{name}.mp4", smoothing=0.5).yaw_pitch_roll_degrees)
    print(f"{name}: jitter {raw:.3f} deg raw -> {smooth:.3f} deg with smoothing 0.5")
    assert smooth < 0.6 * raw


@pytest.mark.parametrize("name", DRIVING_VIDEOS)
def test_flipped_video_negates_yaw_and_roll(name):
    a = motion(f"driving/{name}.mp4", step=3).yaw_pitch_roll_degrees
    b = motion(f"driving/{name}.mp4", step=3, flipped=True).yaw_pitch_roll_degrees
    yaw_err, roll_err, pitch_err = np.abs(a[:, 0] + b[:, 0]), np.abs(a[:, 2] + b[:, 2]), np.abs(a[:, 1] - b[:, 1])
    print(f"{name}: |yaw+yaw'| mean {yaw_err.mean():.2f} max {yaw_err.max():.2f}; |roll+roll'| mean {roll_err.mean():.2f} "
          f"max {roll_err.max():.2f}; |pitch-pitch'| mean {pitch_err.mean():.2f} deg")
    turned = np.abs(a[:, 0]) > 8
    assert (np.sign(a[turned, 0]) == -np.sign(b[turned, 0])).all()
    assert yaw_err.mean() < 5.0 and roll_err.mean() < 2.0 and roll_err.max() < 5.0
    assert pitch_err.mean() < 8.0  # pitch should not change; mediapipe is least mirror-consistent at large yaw


@pytest.mark.parametrize("portrait", ["reference/chillout.jpg", "reference/civitai1.jpg", "reference/zzj.jpg", "driving/jue.jpg"])
def test_in_plane_rotation_changes_roll_by_that_angle(portrait):
    image = clip(portrait).frames[0]
    height, width = image.shape[:2]
    frames = [image]
    angles = (-20.0, -10.0, 10.0, 20.0)
    for angle in angles:  # OpenCV's positive angle turns the picture counter-clockwise on screen
        m = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
        frames.append(cv2.warpAffine(image, m, (width, height), borderMode=cv2.BORDER_REFLECT))
    rolls = np.array([extract_face_motion(analyzer(), f[None]).yaw_pitch_roll_degrees[0, 2] for f in frames])
    change = rolls[1:] - rolls[0]
    print(f"{portrait}: roll change {np.round(change, 2)} for rotations {angles}")
    np.testing.assert_allclose(change, angles, atol=3.0)


def test_smaller_face_moves_translation_away_from_the_camera():
    image = clip("reference/civitai1.jpg").frames[0]
    height, width = image.shape[:2]
    scales = (1.0, 0.8, 0.6)
    frames = []
    for s in scales:  # the same face, smaller, centred on a black frame of the same size
        small = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        canvas = np.zeros_like(image)
        y, x = (height - small.shape[0]) // 2, (width - small.shape[1]) // 2
        canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
        frames.append(canvas)
    m = extract_face_motion(analyzer(), np.stack(frames))
    z = m.translation[:, 2]
    print(f"depth z {np.round(z, 3)} for scales {scales}")
    assert m.frames_without_face == 0
    assert (z < 0).all() and z[0] > z[1] > z[2]  # further from the camera (which looks down -z)
    # Perspective: depth is inversely proportional to the face's size in the image.
    np.testing.assert_allclose(z[0] / z, scales, rtol=0.06)


def test_open_mouth_scores_higher_jaw_open_than_closed():
    open_mouth = motion("driving/yao.jpg")
    closed = [motion(p) for p in ("reference/chillout.jpg", "reference/civitai1.jpg", "reference/show1.jpg")]
    print("jawOpen open", open_mouth.coefficient("jawOpen"), "closed", [c.coefficient("jawOpen")[0] for c in closed])
    for c in closed:
        assert open_mouth.coefficient("jawOpen")[0] > c.coefficient("jawOpen")[0] + 0.5
    # Within a video too: the frame with the widest lip gap scores the highest jawOpen decile.
    m = motion("driving/amns.mp4")
    gap = m.landmarks[:, 14, 1] - m.landmarks[:, 13, 1]
    assert m.coefficient("jawOpen")[np.argmax(gap)] >= np.percentile(m.coefficient("jawOpen"), 90) - 1e-6


def test_a_blink_is_a_short_closure_of_both_eyes():
    """ysll frames 10-12: the singer shuts both eyes (his face turned about 40 degrees toward the image
    left, so his right eye is the far one); they are open in frames 6-9 and half-lidded again from 13
    on. A blink must read high in BOTH eyes for at most a few frames and fall back on both sides."""
    m = motion("driving/ysll.mp4")
    left, right = m.coefficient("eyeBlinkLeft"), m.coefficient("eyeBlinkRight")
    print("ysll eyeBlink left", np.round(left[4:20], 2), "right", np.round(right[4:20], 2))
    closed = np.flatnonzero(np.minimum(left, right) > 0.6)
    assert len(closed) and (np.diff(closed) == 1).all(), closed  # one run of closed frames
    start, end = int(closed[0]), int(closed[-1])
    assert 1 <= end - start + 1 <= 4 and start <= 11 <= end
    for eye in (left, right):
        assert (eye[start - 4:start] < 0.3).all()  # open before
        assert (eye[end + 3:end + 6] < eye[start:end + 1].min() - 0.15).all()  # reopened after
    # A clip without a blink (amns: eyes wide open throughout) never reads both eyes closed.
    still = motion("driving/amns.mp4")
    assert np.minimum(still.coefficient("eyeBlinkLeft"), still.coefficient("eyeBlinkRight")).max() < 0.5


def test_frontal_portraits_read_near_zero_pose():
    for p in ("reference/civitai1.jpg", "reference/show1.jpg", "reference/majicmix2.jpg"):
        ypr = motion(p).yaw_pitch_roll_degrees[0]
        assert np.abs(ypr).max() < 15.0, (p, ypr)


def test_coefficients_are_named_and_bounded():
    m = motion("driving/ysll.mp4")
    assert len(ARKIT_NAMES) == 51 == len(set(ARKIT_NAMES))
    assert m.expression.min() >= 0.0 and m.expression.max() <= 1.0
    moving = (m.expression.max(0) - m.expression.min(0)) > 0.05
    assert moving.sum() >= 10  # a talking clip moves many coefficients, not a constant vector


# Coefficients a talking, laughing, surprised face moves on the driving clips: gaze, lids, jaw, lips,
# brows, the cheek raise of a smile. Left out: cheekPuff (nobody puffs the cheeks there), mouthPucker,
# noseSneer, jawForward, jawLeft/Right, mouthLeft/Right, mouthFrown, mouthShrug, mouthRollLower, mouthDimple.
TALKING = tuple(
    f"{base}{side}" for base in ("eyeBlink", "eyeLookDown", "eyeLookIn", "eyeLookOut", "eyeLookUp", "eyeSquint",
                                 "eyeWide", "mouthSmile", "mouthStretch", "mouthLowerDown", "mouthUpperUp",
                                 "mouthPress", "browDown", "browOuterUp", "cheekSquint")
    for side in ("Left", "Right")
) + ("jawOpen", "mouthClose", "mouthFunnel", "mouthRollUpper", "browInnerUp")


def test_coefficients_move_and_rarely_saturate_on_the_driving_clips():
    e = np.concatenate([motion(f"driving/{n}.mp4").expression for n in DRIVING_VIDEOS])
    top, saturated = e.max(axis=0), (e >= 0.99).mean(axis=0)
    for i in np.argsort(-saturated)[:5]:
        print(f"{ARKIT_NAMES[i]}: max {top[i]:.2f}, at 1.0 in {100 * saturated[i]:.1f}% of frames")
    still = [n for n in TALKING if top[ARKIT_NAMES.index(n)] <= 0.25]
    assert not still, f"never move on the driving clips: {still}"
    too_often = [ARKIT_NAMES[i] for i in np.flatnonzero(saturated > 0.10)]
    assert not too_often, f"at 1.0 in more than 10% of the driving frames: {too_often}"


def _value(m, name, rows=slice(None)):
    return float(m.coefficient(name)[rows].mean())


def test_squint_cheek_funnel_and_wide_read_where_the_faces_show_them():
    """yao.jpg and jue.jpg: men laughing with the eyes squeezed and the cheeks pushed up; civitai1.jpg and
    chillout.jpg: calm portraits. amns frames 90-97: lips in a round 'O'; tbh: a wide open laugh (not
    round); ysll frames 0-40: ordinary speech. tbh frames 18-25: the eyes opened wide after frames 0-12
    of squinting laughter."""
    laughing = [motion("driving/yao.jpg"), motion("driving/jue.jpg")]
    calm = [motion("reference/civitai1.jpg"), motion("reference/chillout.jpg")]
    for side in ("Left", "Right"):
        for name in (f"eyeSquint{side}", f"cheekSquint{side}"):
            assert min(_value(m, name) for m in laughing) > 0.4, name
            assert max(_value(m, name) for m in calm) < 0.15, name
    round_o = _value(motion("driving/amns.mp4"), "mouthFunnel", slice(90, 98))
    assert round_o > 0.6
    assert _value(motion("driving/tbh.mp4"), "mouthFunnel") < 0.1
    assert motion("driving/ysll.mp4").coefficient("mouthFunnel")[:41].max() < 0.1
    tbh = motion("driving/tbh.mp4")
    wide = (tbh.coefficient("eyeWideLeft") + tbh.coefficient("eyeWideRight")) / 2
    assert wide[18:26].mean() > wide[:13].mean() + 0.1
