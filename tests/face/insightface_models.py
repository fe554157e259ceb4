"""Small ONNX models with the signatures of the insightface packs' detector and recognizer (names aside,
which the code never relies on), so the tests take the path the real packs take:

- detector (SCRFD with keypoints): input (1, 3, 640, 640), 9 outputs: scores (12800 / 3200 / 800, 1), box
  distances (.., 4), keypoint offsets (.., 10) for strides 8, 16, 32 (2 anchors per cell), in that order.
  The raw outputs are constants placing the faces given to ``write_detector`` (plus a weaker duplicate of
  each, for suppression), except that each face's score reads the input: ``score + 0.05 * (m0 - m2)``
  (channel means of the normalised input), so a test can tell the colour order and scaling fed.
- recognizer (ArcFace): input (N, 3, 112, 112), output (N, 512): the crop average-pooled 8 x 8 (3 x 14 x 14
  values), its mean taken off, projected by a fixed random matrix. Not an identity model, but a deterministic
  function of the aligned pixels that tells two different photographs apart (cosine well below 1) and gives
  1 for the same pixels; ``reference_embedding`` computes it in float64.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.face.toolkit_models import _affine_model

SIZE = 640
STRIDES = (8, 16, 32)
SCORE_WEIGHT = np.array([0.05, 0.0, -0.05])
POOL = 8
EMBED = 512


def _index(stride: int, x: float, y: float, anchor: int) -> int:
    cols, rows = SIZE // stride, SIZE // stride
    col, row = int(np.clip(round(x / stride), 0, cols - 1)), int(np.clip(round(y / stride), 0, rows - 1))
    return (row * cols + col) * 2 + anchor


def scrfd_outputs(faces: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Raw outputs (in insightface's order) placing ``faces``: dicts with ``box`` (x0, y0, x1, y1) and
    ``kps`` (5, 2) in 640-input pixels, ``score`` and ``stride``."""
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    parts = {}
    for stride in STRIDES:
        n = (SIZE // stride) ** 2 * 2
        parts[stride] = (np.full((n, 1), 0.01, np.float32), np.zeros((3, n), np.float32),
                         np.zeros((n, 4), np.float32), np.zeros((n, 10), np.float32))
    for face in faces:
        box, kps, stride = np.asarray(face["box"], np.float64), np.asarray(face["kps"], np.float64), face["stride"]
        score, weight, dist, offsets = parts[stride]
        for anchor, shift, drop in ((0, 0.0, 0.0), (1, 3.0, 0.1)):  # the face, then a weaker shifted duplicate
            i = _index(stride, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, anchor)
            cx, cy = (i // 2) % (SIZE // stride) * stride, (i // 2) // (SIZE // stride) * stride
            b = box + shift
            dist[i] = np.array([cx - b[0], cy - b[1], b[2] - cx, b[3] - cy]) / stride
            offsets[i] = ((kps + shift) - [cx, cy]).reshape(-1) / stride
            score[i, 0] = face["score"] - drop
            weight[:, i] = SCORE_WEIGHT
    for stride in STRIDES:
        out[f"score_{stride}"] = (parts[stride][0], parts[stride][1])
    for stride in STRIDES:
        out[f"bbox_{stride}"] = (parts[stride][2], None)
    for stride in STRIDES:
        out[f"kps_{stride}"] = (parts[stride][3], None)
    return out


def write_detector(path: Path, faces: list[dict]) -> Path:
    """A SCRFD-signature detector finding ``faces`` (see ``scrfd_outputs``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return _affine_model((1, 3, SIZE, SIZE), scrfd_outputs(faces), path)


def projection(seed: int = 0) -> np.ndarray:
    """(3 * 14 * 14, 512) float32 projection of the recognizer."""
    d = 3 * (112 // POOL) ** 2
    return (np.random.default_rng(seed).standard_normal((d, EMBED)) / np.sqrt(d)).astype(np.float32)


def write_recognizer(path: Path, seed: int = 0) -> Path:
    """An ArcFace-signature recognizer (see the module docstring)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    path.parent.mkdir(parents=True, exist_ok=True)
    nodes = [helper.make_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=[POOL, POOL], strides=[POOL, POOL]),
             helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
             helper.make_node("ReduceMean", ["flat"], ["mean"], axes=[1], keepdims=1),
             helper.make_node("Sub", ["flat", "mean"], ["centred"]),
             helper.make_node("MatMul", ["centred", "proj"], ["683"])]
    graph = helper.make_graph(nodes, "recognizer",
                              [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, 112, 112])],
                              [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["None", EMBED])],
                              [numpy_helper.from_array(projection(seed), "proj")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_landmark_model(path: Path) -> Path:
    """A model with the 192 x 192 input of the packs' landmark models (2d106det), which the pack must skip."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return _affine_model((1, 3, 192, 192), {"fc1": (np.zeros((1, 212), np.float32), None)}, path)


def write_pack(folder: Path, faces: list[dict], names: tuple[str, str] = ("det_10g.onnx", "w600k_r50.onnx"),
               seed: int = 0) -> Path:
    """A pack folder (buffalo_l names by default) with the generated detector and recognizer."""
    write_detector(folder / names[0], faces)
    write_recognizer(folder / names[1], seed)
    return folder


# ---- float64 references -----------------------------------------------------------------------------
def reference_embedding(crop: np.ndarray, seed: int = 0) -> np.ndarray:
    """The recognizer's unit embedding of an aligned uint8 RGB crop (112, 112, 3), in float64."""
    x = (crop.astype(np.float64) - 127.5) / 127.5
    cells = 112 // POOL
    pooled = x.reshape(cells, POOL, cells, POOL, 3).mean(axis=(1, 3)).transpose(2, 0, 1).reshape(-1)
    v = (pooled - pooled.mean()) @ projection(seed).astype(np.float64)
    return v / np.linalg.norm(v)


def face_at(box: tuple[float, float, float, float], score: float = 0.8, stride: int = 16) -> dict:
    """A face dict for ``box`` (640-input pixels) with keypoints where the ArcFace template puts them in it."""
    from hellomeme_core.face.insightface.recognition import ARCFACE_TEMPLATE

    x0, y0, x1, y1 = box
    kps = ARCFACE_TEMPLATE / 112.0 * [x1 - x0, y1 - y0] + [x0, y0]
    return {"box": box, "kps": kps, "score": score, "stride": stride}
