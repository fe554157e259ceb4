"""Following one person by identity: a clip of two shared-media portraits side by side that swap places
halfway; the person of the identity image is followed across the swap (insightface pack reader, then the
face analyzers' landmarks on the chosen face)."""
from __future__ import annotations

from functools import cache

import cv2
import numpy as np
import pytest

from hellomeme_core.face.insightface.follow import choose_by_identity, track_faces
from hellomeme_core.face.insightface.packs import InsightFacePack
from tests.face import insightface_models as M
from tests.face.media_cache import media_path

HALF = 256
LEFT, RIGHT = (50, 50, 220, 230), (50 + HALF, 50, 220 + HALF, 230)  # frame pixels; the clip is 512 x 256
SWAP = 4


@cache
def portrait(name: str) -> np.ndarray:
    image = cv2.cvtColor(cv2.imread(str(media_path(f"reference/{name}"))), cv2.COLOR_BGR2RGB)
    return cv2.resize(image, (HALF, HALF), interpolation=cv2.INTER_AREA)


def swap_clip() -> np.ndarray:
    """8 frames: zzj left and civitai1 right, then swapped; each frame shifted a little and re-lit."""
    a, b = portrait("zzj.jpg"), portrait("civitai1.jpg")
    rng = np.random.default_rng(0)
    frames = []
    for i in range(2 * SWAP):
        frame = np.concatenate([a, b] if i < SWAP else [b, a], axis=1).astype(np.float32)
        frame = np.roll(frame, int(rng.integers(-3, 4)), axis=1) * rng.uniform(0.9, 1.1) + rng.normal(0, 3, frame.shape)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return np.stack(frames)


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    scale = 640 / (2 * HALF)  # the clip is letterboxed into the 640 input at 1.25
    faces = [M.face_at(tuple(v * scale for v in LEFT), 0.8), M.face_at(tuple(v * scale for v in RIGHT), 0.75)]
    return InsightFacePack(M.write_pack(tmp_path_factory.mktemp("pack") / "buffalo_l", faces))


def identity_image(name: str) -> np.ndarray:
    """The person alone (both places of the two-face layout hold them, so whichever face is largest is theirs)."""
    return np.concatenate([portrait(name)] * 2, axis=1)


@pytest.mark.parametrize("name, first", [("zzj.jpg", "left"), ("civitai1.jpg", "right")])
def test_identity_is_followed_across_the_swap(pack, name, first):
    clip = swap_clip()
    track = track_faces(pack, clip, identity_rgb=identity_image(name))
    assert track.found.all() and (track.faces == 2).all()
    side = np.where((track.boxes[:, 0] + track.boxes[:, 2]) / 2 < HALF, "left", "right")
    other = "right" if first == "left" else "left"
    assert side.tolist() == [first] * SWAP + [other] * SWAP
    # The chosen face is the person (about 1 with this pixel recognizer); the other face clearly less.
    assert track.similarity.min() > 0.95
    target = pack.recognizer.embed_faces(identity_image(name), pack.detector.detect(identity_image(name)).keypoints[:1])[0]
    others = [float((pack.recognizer.embed_faces(f, pack.detector.detect(f).keypoints) @ target).min()) for f in clip]
    assert max(others) < 0.5


def test_ties_go_to_the_face_nearest_the_previous_one():
    e = np.eye(3, dtype=np.float32)
    target = np.array([1.0, 0.0, 0.0], np.float32)
    embeddings = np.stack([e[0] * 0.99 + e[1] * 0.1, e[0]])  # cosines 0.99 and 1.0: a tie within 0.05
    boxes = np.array([[0, 0, 10, 10], [100, 0, 110, 10]], np.float32)
    assert choose_by_identity(embeddings, boxes, target, None)[0] == 1  # no history: the best
    assert choose_by_identity(embeddings, boxes, target, np.array([1, 0, 11, 10]))[0] == 0  # near the last one
    assert choose_by_identity(embeddings, boxes, target, np.array([1, 0, 11, 10]), margin=0.001)[0] == 1
    assert choose_by_identity(embeddings[:, ::-1].copy(), boxes, target, None)[0] is None  # nobody like the target


@pytest.mark.parametrize("detector", ["built-in", "insightface"])
def test_face_motion_follows_the_identity(pack, detector):
    """Extract Face Motion's path: mediapipe's landmarks are those of the followed person in every frame
    (built-in: mediapipe's own faces matched to the boxes; insightface: the mesh read around the boxes)."""
    from hellomeme_core.face.analyzer import extract_face_motion, load_face_analyzer

    analyzer = load_face_analyzer("mediapipe", detector=detector, insightface=pack)
    clip = swap_clip()
    motion = extract_face_motion(analyzer, clip, 8.0, identity=identity_image("civitai1.jpg"))
    assert motion.frames_without_face == 0
    centre_x = motion.landmarks[..., 0].mean(axis=1)
    assert (centre_x[:SWAP] > HALF + 60).all() and (centre_x[SWAP:] < HALF - 60).all()
    # Without an identity the same clip follows the leftmost face: the other person after the swap.
    left = extract_face_motion(analyzer, clip, 8.0, face_index=0)
    assert (left.landmarks[..., 0].mean(axis=1) < HALF).all()


def test_identity_without_a_pack_names_what_is_missing():
    from hellomeme_core.errors import MissingModelFileError
    from hellomeme_core.face.analyzer import extract_face_motion, load_face_analyzer

    analyzer = load_face_analyzer("mediapipe")
    with pytest.raises(MissingModelFileError, match="identity_image needs an insightface model pack"):
        extract_face_motion(analyzer, swap_clip()[:1], identity=identity_image("zzj.jpg"))
    with pytest.raises(MissingModelFileError, match="insightface detector needs"):
        load_face_analyzer("mediapipe", detector="insightface")


def test_insightface_boxes_feed_the_mesh_for_small_faces(tmp_path):
    """A 64 px portrait on a 1280 x 720 canvas: mediapipe alone misses it; given the box (here placed by the
    generated detector where the face is), the face mesh reads the enlarged crop and finds it."""
    from hellomeme_core.face.analyzer import extract_face_motion, load_face_analyzer
    from hellomeme_core.face.mediapipe_backend import MediapipeLandmarker
    from tests.bench.bench_detectors import variant

    box = (910, 305, 954, 355)  # the face inside the pasted portrait (900..964, 300..364), frame pixels
    pack = InsightFacePack(M.write_pack(tmp_path / "buffalo_l", [M.face_at(tuple(v * 0.5 for v in box), 0.8, 8)]))
    analyzer = load_face_analyzer("mediapipe", detector="insightface", insightface=pack)
    for name in ("zzj.jpg", "civitai1.jpg"):
        rgb = cv2.cvtColor(cv2.imread(str(media_path(f"reference/{name}"))), cv2.COLOR_BGR2RGB)
        frame = variant(rgb, "small face")[None]
        assert not MediapipeLandmarker().landmarks(frame)[1][0]
        motion = extract_face_motion(analyzer, frame)
        centre = motion.landmarks[0].mean(0)
        assert motion.frames_without_face == 0 and 900 < centre[0] < 964 and 300 < centre[1] < 364
