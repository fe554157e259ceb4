"""Which face is followed when a frame shows several: -1 = the largest (official), 0, 1, ... counted from the
left by box centre; on synthetic frames made of two shared/media portraits (or two driving clips) side by side,
through the mediapipe backend, and through the official backend's detection loop with stand-in networks."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from hellomeme_core.errors import NoFaceError
from hellomeme_core.face.analyzer import extract_face_motion
from hellomeme_core.face.face_choice import MAX_FACES, pick_face
from hellomeme_core.face.official_backend import OfficialFaceAnalyzer
from tests.face.media_cache import analyzer, clip

_GAP, _HEIGHT = 40, 400


def side_by_side(left: np.ndarray, right: np.ndarray, left_size: int, right_size: int) -> tuple[np.ndarray, int]:
    """Two images scaled to squares of the given sides on a grey canvas, and the x that separates them."""
    canvas = np.full((_HEIGHT, 3 * _GAP + left_size + right_size, 3), 127, np.uint8)
    for image, size, x in ((left, left_size, _GAP), (right, right_size, 2 * _GAP + left_size)):
        y = (_HEIGHT - size) // 2
        canvas[y:y + size, x:x + size] = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return canvas, _GAP + left_size + _GAP // 2


@pytest.fixture(scope="module")
def two_portraits():
    """civitai1 small on the left, zzj larger on the right."""
    return side_by_side(clip("reference/civitai1.jpg").frames[0], clip("reference/zzj.jpg").frames[0], 240, 320)


@pytest.fixture(scope="module")
def two_clips():
    """tbh larger on the left, qie smaller on the right, 6 frames; in frame 2 the right face is covered."""
    left, right = clip("driving/tbh.mp4").frames[:12:2], clip("driving/qie.mp4").frames[:12:2]
    pairs = [side_by_side(a, b, 320, 240) for a, b in zip(left, right)]
    frames, middle = np.stack([p[0] for p in pairs]), pairs[0][1]
    frames[2, :, middle:] = 127
    return frames, middle


def _side(motion, middle: int) -> list[str]:
    """Per row, which half of the canvas the followed face's landmarks are in."""
    xs = motion.landmarks[..., 0]
    return ["left" if x.max() < middle else "right" if x.min() > middle else "both" for x in xs]


@pytest.mark.parametrize("face_index, side", [(0, "left"), (1, "right"), (-1, "right")])
def test_face_index_picks_a_face_of_a_still(two_portraits, face_index, side):
    image, middle = two_portraits
    motion = extract_face_motion(analyzer(), image[None], face_index=face_index)
    assert _side(motion, middle) == [side]
    # The official crop (and so the pose) is that face's own: the crop square is centred on that side.
    x0, _, x1, _ = motion.crop_box
    assert ("left" if (x0 + x1) / 2 < middle else "right") == side


def test_face_index_picks_a_face_through_a_clip(two_clips):
    frames, middle = two_clips
    left = extract_face_motion(analyzer(), frames, 15.0, face_index=0)
    right = extract_face_motion(analyzer(), frames, 15.0, face_index=1, no_face_policy="drop")
    largest = extract_face_motion(analyzer(), frames, 15.0, face_index=-1)
    assert _side(left, middle) == ["left"] * 6 and left.frames_without_face == 0
    # Frame 2 shows one face: for the second face from the left it is a frame without a face.
    assert right.frames_without_face == 1 and right.no_face_indices.tolist() == [2]
    assert _side(right, middle) == ["right"] * 5 and right.frame_indices.tolist() == [0, 1, 3, 4, 5]
    assert _side(largest, middle) == ["left"] * 6  # the larger face is the left one here
    # Following a face gives that face's own pose: each track reads (within 4 degrees; measured 1.5 and 2.6) what
    # its clip alone reads, and the two tracks differ (by up to 17.5 degrees here).
    alone_left = extract_face_motion(analyzer(), clip("driving/tbh.mp4").frames[:12:2], 15.0)
    alone_right = extract_face_motion(analyzer(), clip("driving/qie.mp4").frames[:12:2][[0, 1, 3, 4, 5]], 15.0)
    assert np.abs(left.yaw_pitch_roll_degrees - alone_left.yaw_pitch_roll_degrees).max() < 4.0
    assert np.abs(right.yaw_pitch_roll_degrees - alone_right.yaw_pitch_roll_degrees).max() < 4.0
    assert np.abs(left.yaw_pitch_roll_degrees[[0, 1, 3]] - right.yaw_pitch_roll_degrees[:3]).max() > 8.0


def test_face_index_beyond_the_faces_found_is_a_clear_error(two_clips):
    frames, _ = two_clips
    with pytest.raises(NoFaceError, match=r"^face_index 2 asks for the third face from the left, but at most 2 faces "
                                          r"were found in any frame; use -1 for the largest face$"):
        extract_face_motion(analyzer(), frames[:2], face_index=2)
    portrait = clip("reference/civitai1.jpg").frames
    with pytest.raises(NoFaceError, match=r"^face_index 2 asks for the third face from the left, but at most 1 face "
                                          r"was found in any frame; use -1 for the largest face$"):
        extract_face_motion(analyzer(), portrait, face_index=2)
    with pytest.raises(NoFaceError, match="face_index -2 is not allowed"):
        extract_face_motion(analyzer(), portrait, face_index=-2)
    with pytest.raises(NoFaceError, match=f"0 to {MAX_FACES - 1}"):
        extract_face_motion(analyzer(), portrait, face_index=MAX_FACES)


def test_pick_face_orders_by_box_centre_and_area():
    # A wide box starting leftmost whose centre lies right of a narrow one: centres decide, not left edges.
    boxes = np.array([[300, 0, 400, 100], [0, 0, 500, 300], [100, 0, 160, 60]], float)
    assert [pick_face(boxes, i) for i in (0, 1, 2, 3)] == [2, 1, 0, None]
    assert pick_face(boxes, -1) == 1
    assert pick_face(np.zeros((0, 4)), -1) is None and pick_face(np.zeros((0, 4)), 0) is None


class _StandInToolkit(OfficialFaceAnalyzer):
    """The official detection loop with stand-in networks: ``detect`` returns the boxes listed for each
    frame (found by the frame's first pixel), ``align`` a grid filling the box."""

    def __init__(self, boxes_per_frame: list[np.ndarray]):  # no ONNX sessions
        self.boxes_per_frame = boxes_per_frame

    def detect(self, bgr):
        return self.boxes_per_frame[int(bgr[0, 0, 0])]

    def align(self, bgr, box):
        u, v = np.meshgrid(np.linspace(0, 1, 37), np.linspace(0, 1, 6))
        points = np.stack([box[0] + u.ravel() * (box[2] - box[0]), box[1] + v.ravel() * (box[3] - box[1])], 1)
        return points.astype(np.float32), 0.9


def test_official_detection_loop_follows_face_index():
    small_left = [20, 100, 120, 200, 0.9]
    large_right = [300, 80, 480, 260, 0.8]
    boxes = [np.array([large_right, small_left]), np.array([small_left]), np.zeros((0, 5))]
    frames = np.stack([np.full((300, 512, 3), i, np.uint8) for i in range(3)])
    toolkit = _StandInToolkit(boxes)
    for index, expected in ((0, [70, 70, None]), (1, [390, None, None]), (-1, [390, 70, None])):
        landmarks, found = toolkit.face_landmarks(frames, index)
        got = [round(float(lm[:, 0].mean()), 3) if f else None for lm, f in zip(landmarks, found)]
        assert got == expected, index
    with pytest.raises(NoFaceError, match="face_index 2 asks for the third face from the left, but at most 2 faces"):
        toolkit.face_landmarks(frames, 2)
