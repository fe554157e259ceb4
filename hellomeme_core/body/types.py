"""BODY_MOTION: the body and hand keypoints of one person, per frame."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hellomeme_core.errors import ShapeMismatchError

BODY_POINTS, HAND_POINTS = 33, 21
LEFT, RIGHT = 0, 1  # hand slots: the person's own left and right hand (not the image side)


@dataclass
class BodyMotion:
    """Per-frame keypoints of one person (mediapipe topology), in source pixels.

    body: (F, 33, 3) float32 x, y (pixels of the source frames) and visibility in [0, 1] (mediapipe pose order).
    hands: (F, 2, 21, 3) float32 x, y, confidence of the person's left (0) and right (1) hand (mediapipe hand
        order); confidence 0 where that hand was not found.
    body_found: (F,) bool, False where the frame had no person and its values come from ``no_person_policy``.
    hands_found: (F, 2) bool.
    frame_indices: (F,) source frame of each row (differs from arange only under the drop policy).
    no_person_indices: source frames without a person, whatever the policy did with them.
    min_confidence: keypoints below it are treated as not seen (not drawn).
    """

    body: np.ndarray
    hands: np.ndarray
    body_found: np.ndarray
    hands_found: np.ndarray
    frame_indices: np.ndarray
    fps: float = 0.0
    source_size: tuple[int, int] = (0, 0)  # (width, height)
    no_person_policy: str = "hold"
    smoothing: float = 0.0
    min_confidence: float = 0.5
    no_person_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    source_frames: int = 0

    def __post_init__(self) -> None:
        self.body = np.asarray(self.body, dtype=np.float32)
        frames = len(self.body)
        self.hands = np.asarray(self.hands, dtype=np.float32)
        for name, shape in (("body", (frames, BODY_POINTS, 3)), ("hands", (frames, 2, HAND_POINTS, 3))):
            if getattr(self, name).shape != shape:
                raise ShapeMismatchError(f"BodyMotion: {name} must have shape {shape}, got {getattr(self, name).shape}")
        self.body_found = np.asarray(self.body_found, dtype=bool).reshape(frames)
        self.hands_found = np.asarray(self.hands_found, dtype=bool).reshape(frames, 2)
        self.frame_indices = np.asarray(self.frame_indices, dtype=np.int64).reshape(frames)
        self.no_person_indices = np.asarray(self.no_person_indices, dtype=np.int64).reshape(-1)
        self.source_frames = int(self.source_frames or frames)

    def __len__(self) -> int:
        return len(self.body)

    @property
    def frames_without_person(self) -> int:
        """Source frames without a person, under every policy (dropped ones included)."""
        return int(len(self.no_person_indices))
