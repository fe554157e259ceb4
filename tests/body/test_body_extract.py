"""Body keypoints on the shared driving clips: on the person, hands only at the body's wrists, the no-person
policies, smoothing."""
from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from hellomeme_core.body.extract import assign_hands, extract_body_motion
from hellomeme_core.errors import NoPersonError
from tests.face.media_cache import clip

NOSE, LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_WRIST, RIGHT_WRIST = 0, 11, 12, 15, 16


@cache
def motion(relative: str, start: int = 0, stop: int | None = None, smoothing: float = 0.0):
    c = clip(relative)
    return extract_body_motion(c.frames[start:stop], c.fps, smoothing=smoothing)


def _face_box(frame: np.ndarray) -> np.ndarray:
    """x0, y0, x1, y1 of the face mediapipe's face detector finds (a model apart from pose)."""
    import mediapipe as mp

    # The short-range model (0) finds these close-ups; the full-range one (1) misses some of them.
    with mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5) as detector:
        found = detector.process(np.ascontiguousarray(frame))
    assert found.detections, "the face detector finds no face"
    box = found.detections[0].location_data.relative_bounding_box
    height, width = frame.shape[:2]
    return np.array([box.xmin * width, box.ymin * height, (box.xmin + box.width) * width, (box.ymin + box.height) * height])


@pytest.mark.parametrize("name", ["tbh", "ysll"])
def test_keypoints_land_on_the_person(name):
    relative = f"driving/{name}.mp4"
    m = motion(relative, 0, 12)
    assert m.body_found.all() and m.frames_without_person == 0
    for row in (0, 11):
        x0, y0, x1, y1 = _face_box(clip(relative).frames[row])
        nose = m.body[row, NOSE]
        assert nose[2] > 0.9 and x0 <= nose[0] <= x1 and y0 <= nose[1] <= y1, (row, nose, (x0, y0, x1, y1))
        # Both shoulders below the face, one each side of the nose, within two face widths of it.
        width = x1 - x0
        left, right = m.body[row, LEFT_SHOULDER], m.body[row, RIGHT_SHOULDER]
        assert left[1] > y1 - 0.1 * width and right[1] > y1 - 0.1 * width
        assert right[0] < nose[0] < left[0]  # the person's right shoulder is on the image's left
        assert abs(left[0] - nose[0]) < 2.5 * width and abs(right[0] - nose[0]) < 2.5 * width


def test_a_hand_far_from_the_body_wrists_is_not_taken():
    """amns shows no hand, but mediapipe hands mistakes the ear for one in its last frames: the wrist check drops it."""
    import mediapipe as mp

    frames = clip("driving/amns.mp4").frames[96:106]
    with mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=2, model_complexity=1) as hands:
        raw = sum(bool(hands.process(np.ascontiguousarray(f)).multi_hand_landmarks) for f in frames)
    assert raw >= 5  # the false hand is there to be dropped
    m = motion("driving/amns.mp4", 96, 106)
    assert m.body_found.all() and not m.hands_found.any()


def test_hands_are_assigned_to_the_nearest_body_wrist_within_reach():
    body = np.zeros((33, 3))
    body[LEFT_SHOULDER, :2], body[RIGHT_SHOULDER, :2] = [300, 200], [200, 200]
    body[LEFT_WRIST, :2], body[RIGHT_WRIST, :2] = [330, 400], [170, 400]
    hand = np.zeros((21, 2)) + np.linspace(0, 40, 21)[:, None]  # a 57-pixel hand, wrist first
    near_right, near_left, far = hand + [175, 395], hand + [335, 410], hand + [250, 50]
    assert assign_hands(body, [near_right, far, near_left]) == {1: 0, 0: 2}
    assert assign_hands(body, [far]) == {}
    # Two candidates for one wrist: the nearer wins, the other is left out.
    assert assign_hands(body, [near_left + 20, near_left]) == {0: 1}


def _with_blank_frames(rows: list[int]) -> np.ndarray:
    frames = clip("driving/qie.mp4").frames[:8].copy()
    frames[rows] = 0
    return frames


def test_no_person_policies():
    frames = _with_blank_frames([0, 3])
    held = extract_body_motion(frames, 15.0, "hold")
    assert held.frames_without_person == 2 and held.body_found.tolist() == [False, True, True, False] + [True] * 4
    assert np.array_equal(held.body[3], held.body[2]) and np.array_equal(held.body[0], held.body[1])
    between = extract_body_motion(frames, 15.0, "interpolate")
    assert np.allclose(between.body[3], (between.body[2] + between.body[4]) / 2, atol=1e-3)
    dropped = extract_body_motion(frames, 15.0, "drop")
    assert len(dropped) == 6 and dropped.frame_indices.tolist() == [1, 2, 4, 5, 6, 7]
    with pytest.raises(NoPersonError, match=r"no person in 2 of 8 frames \(frames 0, 3\)"):
        extract_body_motion(frames, 15.0, "error")
    with pytest.raises(NoPersonError, match="no person found in any of the 4 frames"):
        extract_body_motion(np.zeros((4, 64, 64, 3), np.uint8), 15.0, "hold")


def test_smoothing_removes_jitter():
    raw = motion("driving/ysll.mp4", 0, 30)
    smooth = motion("driving/ysll.mp4", 0, 30, smoothing=0.6)
    upper = [NOSE, LEFT_SHOULDER, RIGHT_SHOULDER]
    jitter = lambda m: np.abs(np.diff(m.body[:, upper, :2], n=2, axis=0)).mean()  # noqa: E731
    assert jitter(smooth) < 0.6 * jitter(raw)
    assert np.abs(smooth.body[:, upper, :2] - raw.body[:, upper, :2]).mean() < 15  # still the same person
