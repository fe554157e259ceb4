"""Eye and mouth crops for the face-part embeddings, made as the official pipeline makes them: every frame is
aligned to a five-point face template, each part is cut with ONE box covering that part in every
frame, resized to 256, blurred; the crops then go through a CLIP vision encoder (done by the caller)."""
from __future__ import annotations

import cv2
import numpy as np

from hellomeme_core.errors import ShapeMismatchError

PART_NAMES = ("eye_image_left", "eye_image_right", "mouth")
# Five template points in unit image coordinates: between the eyes, the two outer eye corners (image
# left, image right), the two mouth corners (image right, image left), as the official template.
FACE_TEMPLATE = np.array([[0.50951539, 0.40128625], [0.29259476, 0.40203411], [0.72196212, 0.40857479],
                          [0.63420714, 0.71678643], [0.38437035, 0.71723224]])
# Per landmark scheme: the five anchor points and the three part regions (eye + brow, eye + brow, lips).
_SCHEMES = {
    222: dict(anchors=[33, 74, 96, 133, 149], parts=[
        list(range(48, 60)) + list(range(74, 95)),
        list(range(61, 73)) + list(range(96, 117)),
        list(range(118, 149)),
    ]),
    478: dict(anchors=[168, 33, 263, 291, 61], parts=[
        [7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246, 46, 52, 53, 55, 63, 65, 66, 70, 105, 107],
        [249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466, 276, 282, 283, 285, 293, 295, 296, 300, 334, 336],
        [0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269, 270, 291,
         308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415],
    ]),
}


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (rotation, uniform scale, shift) taking src (N, 2) onto dst (N, 2)."""
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    a, b = src - src_mean, dst - dst_mean
    cov = b.T @ a / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rot = u @ np.diag(d) @ vt
    scale = (s * d).sum() / a.var(0).sum()
    m = np.zeros((2, 3))
    m[:, :2] = rot * scale
    m[:, 2] = dst_mean - scale * rot @ src_mean
    return m


def face_part_crops(frames: np.ndarray, landmarks: np.ndarray, size: int = 256) -> np.ndarray:
    """(F, H, W, 3) uint8 frames + (F, N, 2) landmarks (N = 222 or 478) -> (F, 3, size, size, 3) uint8 crops
    in ``PART_NAMES`` order."""
    frames = np.asarray(frames)
    landmarks = np.asarray(landmarks, dtype=np.float64)
    scheme = _SCHEMES.get(landmarks.shape[1])
    if scheme is None or len(frames) != len(landmarks):
        raise ShapeMismatchError(f"face parts: need one (222 or 478, 2) landmark set per frame, got landmarks "
                                 f"{tuple(landmarks.shape)} for {len(frames)} frames")
    height, width = frames.shape[1:3]
    target = FACE_TEMPLATE * (width, height)
    matrices = np.stack([similarity_transform(lm[scheme["anchors"]], target) for lm in landmarks])  # (F, 2, 3)
    aligned = np.einsum("fij,fnj->fni", matrices[:, :, :2], landmarks) + matrices[:, None, :, 2]
    crops = np.empty((len(frames), len(scheme["parts"]), size, size, 3), dtype=np.uint8)
    for p, region in enumerate(scheme["parts"]):
        pts = aligned[:, region]
        tl, br = pts.min(axis=(0, 1)), pts.max(axis=(0, 1))  # one box for the whole clip
        centre, side = (tl + br) * 0.5, (br - tl).max() * 1.2
        part = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), 0, size / side)
        part[:, 2] += size * 0.5 - centre
        for f in range(len(frames)):  # OpenCV warps one image per call
            m = np.vstack([part, [0, 0, 1]]) @ np.vstack([matrices[f], [0, 0, 1]])
            crop = cv2.warpAffine(np.ascontiguousarray(frames[f]), m[:2], (size, size))
            crops[f, p] = cv2.GaussianBlur(crop, (5, 5), 0)
    return crops
