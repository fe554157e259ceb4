"""SCRFD face detection (the detector of insightface packs: det_10g.onnx, scrfd_10g_bnkps.onnx), our own reader.

Pack conventions: the frame is resized keeping its aspect ratio into the top-left corner of a 640 x 640
black square (or the model's fixed input size), fed as RGB ``(x - 127.5) / 128`` (insightface hands the
network BGR images through ``blobFromImage(swapRB=True)``, i.e. RGB). The 9 outputs are, for strides 8, 16 and
32, scores (cells x 2 anchors, 1), box distances (.., 4: left, top, right, bottom) and 5 keypoint offsets
(.., 10), all in stride units from the anchor centre (column * stride, row * stride), 2 anchors per cell.
Boxes scoring at least 0.5 are kept, then non-maximum suppression at IoU 0.4.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hellomeme_core.errors import HelloMemeError

STRIDES = (8, 16, 32)
ANCHORS_PER_CELL = 2
DEFAULT_SIZE = 640
SCORE_THRESHOLD = 0.5
NMS_IOU = 0.4
MEAN, STD = 127.5, 128.0


@dataclass
class Detections:
    """Faces of one image, best score first: boxes (N, 4) x0, y0, x1, y1, scores (N,), keypoints (N, 5, 2)
    (eye left, eye right, nose, mouth left, mouth right as seen in the image), in image pixels."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def anchor_centres(height: int, width: int, stride: int) -> np.ndarray:
    """(cells * 2, 2) x, y of every anchor of a stride's grid, row by row, both anchors of a cell together."""
    ys, xs = np.mgrid[: height // stride, : width // stride]
    centres = np.stack([xs, ys], -1).reshape(-1, 2).astype(np.float32) * stride
    return np.repeat(centres, ANCHORS_PER_CELL, axis=0)


def _grouped(outputs: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Scores, boxes, keypoints per stride (8, 16, 32), told apart by their last dimension (1, 4, 10) and
    their row counts rather than by output order (batched exports add a leading 1)."""
    rows = [np.asarray(o, np.float32).reshape(-1, np.asarray(o).shape[-1]) for o in outputs]
    groups = []
    for width in (1, 4, 10):
        group = sorted((r for r in rows if r.shape[1] == width), key=len, reverse=True)
        if len(group) != len(STRIDES):
            raise HelloMemeError(f"insightface detector: expected 3 outputs of width {width} (SCRFD with keypoints), "
                                 f"got output shapes {[tuple(np.asarray(o).shape) for o in outputs]}")
        groups.append(group)
    return groups[0], groups[1], groups[2]


def decode(outputs: list[np.ndarray], input_hw: tuple[int, int],
           threshold: float = SCORE_THRESHOLD) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw SCRFD outputs -> (boxes (N, 4), scores (N,), keypoints (N, 5, 2)) in network-input pixels, every
    anchor scoring at least ``threshold`` (before suppression)."""
    scores_by, boxes_by, kps_by = _grouped(outputs)
    all_boxes, all_scores, all_kps = [], [], []
    for stride, scores, dist, kps in zip(STRIDES, scores_by, boxes_by, kps_by):
        centres = anchor_centres(*input_hw, stride)
        if len(centres) != len(scores):
            raise HelloMemeError(f"insightface detector: stride {stride} has {len(scores)} anchors, expected "
                                 f"{len(centres)} for a {input_hw[1]} x {input_hw[0]} input")
        keep = scores[:, 0] >= threshold
        c, d, k = centres[keep], dist[keep] * stride, kps[keep] * stride
        all_boxes.append(np.concatenate([c - d[:, :2], c + d[:, 2:]], 1))
        all_kps.append(c[:, None, :] + k.reshape(-1, 5, 2))
        all_scores.append(scores[keep, 0])
    return np.concatenate(all_boxes), np.concatenate(all_scores), np.concatenate(all_kps)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first (insightface's +1 pixel areas)."""
    order = np.argsort(-scores, kind="stable")
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    keep = []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]) + 1)
        h = np.maximum(0.0, np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]) + 1)
        inter = w * h
        order = rest[inter / (area[i] + area[rest] - inter) <= iou]
    return np.asarray(keep, dtype=int)


def letterbox(rgb: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """The image resized into the top-left of a black (height, width) canvas, and the scale applied."""
    height, width = size
    ratio = rgb.shape[0] / rgb.shape[1]
    # The pack's own rounding: the long side fills the canvas exactly, the short one is truncated.
    if ratio > height / width:
        new_h, new_w = height, max(1, int(height / ratio))
    else:
        new_w, new_h = width, max(1, int(width * ratio))
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(rgb, (new_w, new_h))
    return canvas, new_h / rgb.shape[0]


class ScrfdDetector:
    """SCRFD over an onnxruntime session; ``detect(rgb)`` gives the faces of one uint8 RGB image."""

    def __init__(self, session, threshold: float = SCORE_THRESHOLD, iou: float = NMS_IOU):
        self.session = session
        self.input_name = session.get_inputs()[0].name
        shape = session.get_inputs()[0].shape
        fixed = len(shape) == 4 and all(isinstance(s, int) and s > 0 for s in shape[2:])
        self.size = (int(shape[2]), int(shape[3])) if fixed else (DEFAULT_SIZE, DEFAULT_SIZE)
        self.threshold, self.iou = float(threshold), float(iou)

    def raw(self, canvas: np.ndarray) -> list[np.ndarray]:
        """The network's outputs for a letterboxed uint8 RGB canvas."""
        tensor = ((canvas.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)[None]
        return self.session.run(None, {self.input_name: tensor})

    def detect(self, rgb: np.ndarray) -> Detections:
        """Faces of a (H, W, 3) uint8 RGB image, best first, in its pixels."""
        canvas, scale = letterbox(np.ascontiguousarray(rgb[..., :3]), self.size)
        boxes, scores, kps = decode(self.raw(canvas), self.size, self.threshold)
        keep = nms(boxes, scores, self.iou)
        return Detections((boxes[keep] / scale).astype(np.float32), scores[keep].astype(np.float32),
                          (kps[keep] / scale).astype(np.float32))
