"""The official reference crop and the pose square drawn from it, on the shared/media portraits.

The official pipeline cuts the reference to a square of 3x the mean landmark box side (centre lifted by 0.115
of the side, slid inside the frame, bicubic to 512) and measures the reference pose in that crop; the pose
condition square is drawn from that pose. So the square fits the face only in that crop: these tests check
the crop box against the official arithmetic, then that the square drawn by Render Pose Condition sits on the
face found in Extract Face Motion's face_crop, and that a centre crop of the picture (the old workflow) does not.

Measured with the mediapipe backend (square from the reference condition, face = mediapipe's BOX_POINTS box
detected again in the fed crop; offset and side in units of that face box side):
- official crop at 512, the six portraits as they are: offset 0.19-0.23 (the square sits on the eyes and nose,
  above the box centre: dy -0.19..-0.23, |dx| <= 0.08), square / face side 0.67-0.76;
- the same portraits pasted small and off-centre on a 1280 x 896 canvas: offset 0.19-0.22, ratio 0.66-0.75;
  with the face 16 px from a corner (the crop slid): offset 0.17-0.21, ratio 0.60-0.75; at the edge of a
  1024 x 400 picture (the crop shrunk to 399 and slid): offset 0.18-0.21, ratio 0.66-0.75;
- the centre crop of the 1280 x 896 canvases scaled to 512 (ImageScale crop=center): offset 1.19-2.01, ratio
  0.87-1.23. On the six portraits as they are the official crop is (nearly) the whole picture: 3x the face box
  is more than the 512 pictures (crop 511) and about show1's 1024 (crop 1002), so a centre crop gives about
  the same image (offset 0.19-0.21) and the old workflow only missed on pictures where the face is smaller;
- at 768 the face_crop is the same crop, but Render Pose Condition's square keeps its 512 pixel size and
  offset (the 3DMM camera's focal length is fixed; size only moves the image centre): square / face side
  0.44-0.51 (offset 0.14-0.27); the 512 condition scaled by 1.5 would fit as at 512 (offset 0.19-0.22, ratio
  0.66-0.75). See ``test_pose_square_fits_the_crop_at_768``.
"""
from __future__ import annotations

from functools import cache

import cv2
import numpy as np
import pytest
import torch

from hellomeme_core.face.analyzer import load_face_analyzer
from hellomeme_core.face.landmark_pose import BOX_POINTS
from hellomeme_core.face.mediapipe_backend import MediapipeLandmarker
from tests.face.media_cache import analyzer, clip
from tests.nodes._comfy import comfy_root

PORTRAITS = ("chillout.jpg", "civitai1.jpg", "majicmix2.jpg", "show1.jpg", "toon.png", "zzj.jpg")
LINE_THICKNESS = 15  # of the official pose square's lines
# Fit tolerances, in units of the face box side (measured ranges in the module docstring, then a margin).
MAX_OFFSET = 0.30
SIDE_RATIO = (0.55, 0.90)


# ---- the official crop box, from reading hellomeme/utils.py crop_and_resize --------------------------
def official_crop_box(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """(4,) int x0, y0, x1, y1 of the official crop of a clip whose per-frame landmarks are (F, N, 2)."""
    pts = np.asarray(landmarks, np.float64)
    lows, highs = pts.min(axis=1), pts.max(axis=1)  # per-frame boxes
    side = min(3.0 * (highs - lows).mean(axis=0).max(), min(width, height) - 1.0)
    centre = (lows.min(axis=0) + highs.max(axis=0)) / 2.0  # centre of the box holding every frame's face
    centre[1] -= 0.115 * side
    low, high = centre - side / 2.0, centre + side / 2.0
    # Pushed back inside the frame, keeping the side: first off the left/top edge (to 0), then off the
    # right/bottom edge when it reaches the width/height (to the last pixel, width - 1).
    shift = np.maximum(-low, 0.0)
    low, high = low + shift, high + shift
    size = np.array([width, height], np.float64)
    beyond = high >= size
    low = np.where(beyond, low - (high - size + 1.0), low)
    high = np.where(beyond, size - 1.0, high)
    middle, edge = (low + high) / 2.0, np.floor(high - low).min()
    return np.concatenate([(middle - edge / 2.0).astype(int), (middle + edge / 2.0).astype(int)])


# ---- pictures --------------------------------------------------------------------------------------------
def portrait(name: str) -> np.ndarray:
    return clip(f"reference/{name}").frames[0]


def on_canvas(image: np.ndarray, width: int, height: int, x: int, y: int, side: int = 512) -> np.ndarray:
    """``image`` scaled to side x side and pasted with its top-left at (x, y) (may hang over the edges) on grey."""
    scaled = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    canvas = np.full((height, width, 3), 127, np.uint8)
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + side, width), min(y + side, height)
    canvas[y0:y1, x0:x1] = scaled[y0 - y:y1 - y, x0 - x:x1 - x]
    return canvas


def padded(name: str) -> np.ndarray:
    """The portrait small and off-centre (left, low) in a 1280 x 896 picture."""
    return on_canvas(portrait(name), 1280, 896, 64, 300)


def centre_crop(image: np.ndarray, size: int = 512) -> np.ndarray:
    """What ComfyUI's ImageScale with crop=center gives: the centred square, scaled."""
    height, width = image.shape[:2]
    side = min(height, width)
    y, x = (height - side) // 2, (width - side) // 2
    return cv2.resize(image[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA)


# ---- measurements -----------------------------------------------------------------------------------------
@cache
def _landmarker() -> MediapipeLandmarker:
    return MediapipeLandmarker()


def face_box(image: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Centre (2,), side (the box's larger side) and points (N, 2) of the BOX_POINTS box of the face in ``image``."""
    points, found = _landmarker().landmarks(image[None])
    assert found[0], "mediapipe found no face in the image"
    box = points[0, BOX_POINTS, :2].astype(np.float64)
    low, high = box.min(0), box.max(0)
    return (low + high) / 2, float((high - low).max()), box


def drawn_square(condition: torch.Tensor) -> tuple[np.ndarray, float]:
    """Centre and side of the pose square in a (S, S, 3) condition image: the bounding box of its non-black
    pixels (the four coloured lines), less the line thickness."""
    ys, xs = np.nonzero(condition.numpy().max(-1) > 0)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2]), ((x1 - x0) + (y1 - y0)) / 2 - LINE_THICKNESS


def fit(condition: torch.Tensor, fed: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(offset, square side / face side, offset vector) of the pose square on the face of the fed image, the
    offset in units of the face box side."""
    square_centre, square_side = drawn_square(condition)
    face_centre, face_side, _ = face_box(fed)
    offset = (square_centre - face_centre) / face_side
    return float(np.linalg.norm(offset)), square_side / face_side, offset


def to_uint8(image: torch.Tensor) -> np.ndarray:
    return (image.clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.uint8)


@pytest.fixture(scope="module")
def face_nodes():
    comfy_root()
    import nodes.face as face

    # The FACE_ANALYZER socket carries the core analyzer; made directly, so these tests follow Extract Face
    # Motion and Render Pose Condition only.
    return face, load_face_analyzer("mediapipe")


def reference_condition(face_nodes, image: np.ndarray, size: int = 512):
    """Extract Face Motion on the picture (face_crop at ``size``), then Render Pose Condition's reference
    condition at ``size`` with that motion as the reference: (motion, face_crop uint8, condition)."""
    face, analyzer_ = face_nodes
    images = torch.from_numpy(image[None].astype(np.float32) / 255.0)
    motion, _, _, crop = face.ExtractFaceMotion.execute(analyzer_, images, "error", 0.0, 25.0, None, -1, size).result
    _, condition = face.RenderPoseCondition.execute(motion, 0.0, False, motion, size).result
    assert crop.shape == (1, size, size, 3) and condition.shape == (1, size, size, 3)
    return motion, to_uint8(crop[0]), condition[0]


# ---- the crop box ------------------------------------------------------------------------------------------
@cache
def _face_in_512(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Low and high corners of the BOX_POINTS box of the portrait scaled to 512."""
    _, _, points = face_box(cv2.resize(portrait(name), (512, 512), interpolation=cv2.INTER_AREA))
    return points.min(0), points.max(0)


def _corner(name: str) -> np.ndarray:
    """The face box 16 px from the top and left of a 1024 square (the portrait hangs over the edges): the
    crop square, lifted above the face, is slid right and down."""
    low, _ = _face_in_512(name)
    return on_canvas(portrait(name), 1024, 1024, int(16 - low[0]), int(16 - low[1]))


def _short(name: str) -> np.ndarray:
    """The face box 16 px from the top and right of a wide, short picture: the crop shrinks to the height
    less one and is slid left and down."""
    low, high = _face_in_512(name)
    return on_canvas(portrait(name), 1024, 400, int(1024 - 16 - high[0]), int(16 - low[1]))


CASES = {"as_is": lambda n: portrait(n), "padded": padded, "corner": _corner, "short": _short}


@pytest.mark.parametrize("placement", list(CASES))
@pytest.mark.parametrize("name", PORTRAITS)
def test_crop_box_is_the_official_formula(name, placement):
    image = CASES[placement](name)
    height, width = image.shape[:2]
    analysis = analyzer().analyze(image[None])
    assert analysis.found.all()
    # The mediapipe backend measures the box on landmark_pose.BOX_POINTS, its stand-in for the official
    # 222-point aligner landmarks: the face contour from temple to temple under the chin, the brows, eyes,
    # nose and lips, without the forehead, which the 222 points do not reach and the 478-point mesh does.
    expected = official_crop_box(analysis.landmarks[:, BOX_POINTS], width, height)
    box = analysis.crop_box
    assert np.abs(box - expected).max() <= 2, (box, expected)
    x0, y0, x1, y1 = box
    assert 0 <= x0 < x1 <= width - 1 and 0 <= y0 < y1 <= height - 1
    assert abs((x1 - x0) - (y1 - y0)) <= 1
    if placement == "short":  # 3x the face is more than the picture's height: the side shrinks to it
        assert x1 - x0 == pytest.approx(min(width, height) - 1, abs=1)
    # The face (every box point) is inside the crop.
    points = analysis.landmarks[0, BOX_POINTS]
    assert (points >= box[:2]).all() and (points <= box[2:]).all()


@pytest.mark.parametrize("relative", ["driving/tbh.mp4", "driving/amns.mp4"])
def test_clip_crop_box_is_the_official_formula(relative):
    frames = clip(relative).frames[:24:3]
    analysis = analyzer().analyze(frames)
    assert analysis.found.all()
    expected = official_crop_box(analysis.landmarks[:, BOX_POINTS], frames.shape[2], frames.shape[1])
    assert np.abs(analysis.crop_box - expected).max() <= 2


def test_official_crop_box_slides_and_shrinks_like_the_official_code():
    # Hand-worked boxes: a 100 px face box (side 300) centred at (60, 80) in 640 x 480 is lifted by 34.5 to
    # y 45.5, so its square (-90, -104.5)-(210, 195.5) slides to (0, 0)-(300, 300); at (600, 460) it slides
    # to (339, 179)-(639, 479); a 200 px face in 640 x 480 gets a 479 square, slid to the top and left.
    face = lambda cx, cy, half: np.array([[[cx - half, cy - half], [cx + half, cy + half]]])  # noqa: E731
    assert official_crop_box(face(60, 80, 50), 640, 480).tolist() == [0, 0, 300, 300]
    assert official_crop_box(face(600, 460, 50), 640, 480).tolist() == [339, 179, 639, 479]
    assert official_crop_box(face(100, 100, 100), 640, 480).tolist() == [0, 0, 479, 479]


# ---- the pose square on the crop it was measured in ---------------------------------------------------------
@pytest.mark.parametrize("placement", ["as_is", "padded", "corner"])
@pytest.mark.parametrize("name", PORTRAITS)
def test_pose_square_fits_the_face_crop(face_nodes, name, placement):
    _, crop, condition = reference_condition(face_nodes, CASES[placement](name), 512)
    offset, ratio, vector = fit(condition, crop)
    assert offset <= MAX_OFFSET, (offset, vector)
    assert SIDE_RATIO[0] <= ratio <= SIDE_RATIO[1], ratio
    assert abs(vector[0]) <= 0.12  # sideways the square is on the face's middle; it sits higher, on eyes and nose


@pytest.mark.parametrize("name", PORTRAITS)
def test_centre_crop_of_the_picture_does_not_fit(face_nodes, name):
    """The old workflow fed the picture centre-cropped and scaled (ImageScale crop=center) as the reference."""
    image = padded(name)
    _, crop, condition = reference_condition(face_nodes, image, 512)
    official, _, _ = fit(condition, crop)
    centred, _, _ = fit(condition, centre_crop(image))
    assert centred > max(3 * official, 3 * MAX_OFFSET), (official, centred)


def test_face_crop_at_768_is_the_512_crop_resized(face_nodes):
    image = padded("civitai1.jpg")
    motion_512, crop_512, _ = reference_condition(face_nodes, image, 512)
    motion_768, crop_768, _ = reference_condition(face_nodes, image, 768)
    # The pose is measured in the 512 crop whatever the output size.
    np.testing.assert_array_equal(motion_768.angles, motion_512.angles)
    np.testing.assert_array_equal(motion_768.translation, motion_512.translation)
    down = cv2.resize(crop_768, (512, 512), interpolation=cv2.INTER_AREA).astype(float)
    assert np.abs(down - crop_512).mean() < 2.0


# Render Pose Condition scales the official 512 drawing with size (focal length and line width).
@pytest.mark.parametrize("name", ["chillout.jpg", "civitai1.jpg"])
def test_pose_square_fits_the_crop_at_768(face_nodes, name):
    _, crop, condition = reference_condition(face_nodes, padded(name), 768)
    offset, ratio, _ = fit(condition, crop)
    assert offset <= MAX_OFFSET and SIDE_RATIO[0] <= ratio <= SIDE_RATIO[1], (offset, ratio)
