"""Body and hand keypoints of one person per frame, with mediapipe pose + hands (both models ship in the
mediapipe 0.10.21 wheel: pose_landmark_full, i.e. model_complexity 1, and hand_landmark_full; the 'lite' and
'heavy' pose models are downloaded on first use by mediapipe, which this extension never does)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hellomeme_core.body.types import BODY_POINTS, HAND_POINTS, BodyMotion
from hellomeme_core.errors import HelloMemeError, NoPersonError
from hellomeme_core.face.frames import check_frames
from hellomeme_core.face.no_face import POLICIES, apply_fill, fill_plan
from hellomeme_core.face.smoothing import smooth_strength

POSE_MODEL_COMPLEXITY = 1  # the only pose model in the wheel (pose_landmark_full.tflite)
HAND_MODEL_COMPLEXITY = 1  # hand_landmark_full.tflite (the wheel also has the lite one)
MEDIAPIPE_WRISTS = (15, 16)  # the person's left and right wrist in the pose landmarks
MEDIAPIPE_SHOULDERS = (11, 12)
# A fast body movement, in frame sizes per second, that smoothing should let through with little lag.
FAST_MOVE = 1.0


def _mediapipe_solutions():
    try:
        from mediapipe.python.solutions import hands, pose
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise HelloMemeError(f"body motion: mediapipe is not importable ({exc}). Install requirements.txt "
                             "(mediapipe==0.10.21, which has wheels for Python 3.9-3.12 only)") from None
    return pose, hands


def assign_hands(body: np.ndarray, hands: list[np.ndarray]) -> dict[int, int]:
    """Which detected hand (index into ``hands``, each (21, 2+) pixels) is the person's left (0) / right (1)
    hand: the one whose wrist lies nearest that body wrist, within reach. A hand far from both body wrists (an
    ear or a patterned hat seen as a hand; another person's hand) belongs to no side."""
    body = np.asarray(body, dtype=np.float64)
    shoulder_width = float(np.linalg.norm(body[MEDIAPIPE_SHOULDERS[0], :2] - body[MEDIAPIPE_SHOULDERS[1], :2]))
    pairs = []
    for h, hand in enumerate(hands):
        span = float(np.linalg.norm(hand[:, :2].max(0) - hand[:, :2].min(0)))
        reach = max(span, 0.25 * shoulder_width)
        for side, wrist in enumerate(MEDIAPIPE_WRISTS):
            distance = float(np.linalg.norm(hand[0, :2] - body[wrist, :2]))
            if distance <= reach:
                pairs.append((distance, h, side))
    chosen: dict[int, int] = {}
    for _, h, side in sorted(pairs):  # nearest first, each hand and each side once
        if side not in chosen and h not in chosen.values():
            chosen[side] = h
    return chosen


def track_keypoints(frames: np.ndarray, min_confidence: float = 0.5, with_hands: bool = True,
                    progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(F, H, W, 3) uint8 RGB -> body (F, 33, 3), hands (F, 2, 21, 3) in pixels, body_found (F,), hands_found (F, 2).

    Video mode (tracking from frame to frame) for clips, detection on every frame for a single image."""
    pose_solution, hands_solution = _mediapipe_solutions()
    count, height, width = frames.shape[:3]
    scale = np.array([width, height], np.float32)
    body = np.zeros((count, BODY_POINTS, 3), np.float32)
    hands = np.zeros((count, 2, HAND_POINTS, 3), np.float32)
    found = np.zeros(count, bool)
    hands_found = np.zeros((count, 2), bool)
    static = count == 1
    # mediapipe's own landmark smoothing is off: the smoothing input decides (0 = raw).
    pose = pose_solution.Pose(static_image_mode=static, model_complexity=POSE_MODEL_COMPLEXITY, smooth_landmarks=False,
                              enable_segmentation=False, min_detection_confidence=min_confidence,
                              min_tracking_confidence=min_confidence)
    hand_model = hands_solution.Hands(static_image_mode=static, max_num_hands=2, model_complexity=HAND_MODEL_COMPLEXITY,
                                      min_detection_confidence=min_confidence,
                                      min_tracking_confidence=min_confidence) if with_hands else None
    try:
        for i, frame in enumerate(frames):
            frame = np.ascontiguousarray(frame)
            result = pose.process(frame)
            if result.pose_landmarks:
                found[i] = True
                points = result.pose_landmarks.landmark
                body[i, :, :2] = np.array([(p.x, p.y) for p in points], np.float32) * scale
                body[i, :, 2] = [p.visibility for p in points]
            if hand_model is not None and found[i]:
                detected = hand_model.process(frame)
                candidates = [np.array([(p.x, p.y) for p in h.landmark], np.float32) * scale
                              for h in detected.multi_hand_landmarks or []]
                scores = [h.classification[0].score for h in detected.multi_handedness or []]
                for side, h in assign_hands(body[i], candidates).items():
                    hands[i, side, :, :2] = candidates[h]
                    hands[i, side, :, 2] = scores[h]
                    hands_found[i, side] = True
            if progress is not None:
                progress(i + 1)
    finally:
        pose.close()
        if hand_model is not None:
            hand_model.close()
    return body, hands, found, hands_found


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True."""
    edges = np.diff(np.r_[0, flags.astype(np.int8), 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def _check_policy(found: np.ndarray, policy: str, source: str) -> None:
    """The no-person policy's errors, in words about a person (the shared plan speaks of faces)."""
    if policy not in POLICIES:
        raise NoPersonError(f"no-person policy {policy!r} is not one of {POLICIES}")
    missing = np.flatnonzero(~found)
    if not found.any():
        what = "the image" if len(found) == 1 else f"any of the {len(found)} frames"
        raise NoPersonError(f"{source}: no person found in {what}. Use frames that show a person's head and "
                            "shoulders at least (mediapipe pose needs the upper body).")
    if policy == "error" and len(missing):
        shown = ", ".join(str(i) for i in missing[:20]) + (" ..." if len(missing) > 20 else "")
        raise NoPersonError(f"{source}: no person in {len(missing)} of {len(found)} frames (frames {shown}). Choose "
                            "the hold, interpolate or drop no_person_policy to keep going.")


def extract_body_motion(frames: np.ndarray, fps: float = 25.0, no_person_policy: str = "hold", smoothing: float = 0.0,
                        min_confidence: float = 0.5, with_hands: bool = True,
                        progress: Callable[[int], None] | None = None, source: str = "input") -> BodyMotion:
    """BODY_MOTION of a clip (or one image): keypoints, the no-person policy, then One Euro smoothing."""
    frames = check_frames(frames)
    count, height, width = frames.shape[:3]
    if not 0.0 <= min_confidence <= 1.0:
        raise HelloMemeError(f"min_confidence {min_confidence} is outside 0..1")
    body, hands, found, hands_found = track_keypoints(frames, min_confidence, with_hands, progress)
    _check_policy(found, no_person_policy, source)
    rows, pairs, weight = fill_plan(found, no_person_policy, source)
    body = apply_fill(body, pairs, weight)
    hands = apply_fill(hands, pairs, weight)
    # A filled frame shows a hand only if the frames it is made from both had that hand.
    hands_found = hands_found[pairs[:, 0]] & np.where(weight[:, None] > 0, hands_found[pairs[:, 1]], True)
    if smoothing > 0 and len(rows) > 1:
        speed = FAST_MOVE * max(width, height)
        body[..., :2] = smooth_strength(body[..., :2], fps, smoothing, speed)
        for side in range(2):  # each stretch a hand is seen, alone: a gap is no motion to smooth through
            for start, stop in _runs(hands_found[:, side]):
                hands[start:stop, side, :, :2] = smooth_strength(hands[start:stop, side, :, :2], fps, smoothing, speed)
    return BodyMotion(body=body, hands=hands, body_found=found[rows], hands_found=hands_found, frame_indices=rows,
                      fps=float(fps), source_size=(width, height), no_person_policy=no_person_policy,
                      smoothing=float(smoothing), min_confidence=float(min_confidence),
                      no_person_indices=np.flatnonzero(~found), source_frames=count)
