"""Small ONNX models with the official face-toolkit signatures (names aside, which the code never
relies on): inputs and outputs have the official shapes and dtypes, and some outputs depend on the
per-channel means of the input tensor, so a test can tell which colour order and scaling each network
was fed:

- detector: the face cell's score is ``0.7 + 0.05 * (m0 - m2)`` (channel 0 minus channel 2 of the
  NanoDet-normalised input), the box is fixed;
- aligner: the landmarks are fixed, ``prob = 0.5 + 0.4 * (m0 - m2)``, ``euler = (m0, m1, m2)``;
- 3DMM: angles ``POSE_ANGLES + POSE_WEIGHTS @ (m0, m1, m2)``, translation fixed;
- ARKit: ``0.5 * ARKIT_VALUES + 0.5 * m[i % 3]`` for output i.

``expected_*`` give those outputs for a uniformly coloured frame (every crop then has that colour).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

DET_SHAPE = (272, 160)
STRIDES = (8, 16, 32)
DET_MEAN = np.array([103.53, 116.28, 123.675])  # official NanoDet mean / std, BGR order
DET_STD = np.array([57.375, 57.12, 58.395])
FACE_CELL = (16, 8, 5)  # stride, row, column of the one confident cell: centre x 80, y 128
BOX_BIN = 3  # softmax peak of every side's distance distribution: 3 strides = 48 px
POSE_ANGLES = np.array([0.10, -0.20, 0.05], np.float32)  # pitch, yaw, roll
POSE_WEIGHTS = np.array([[0.2, 0.0, -0.2], [0.0, 0.1, 0.0], [-0.1, 0.0, 0.1]], np.float32)  # (angle, channel)
POSE_TRANSLATION = np.array([0.01, -0.02, -4.0], np.float32)
ARKIT_VALUES = np.linspace(0.0, 1.0, 51, dtype=np.float32)


def _affine_model(input_shape: tuple[int, ...], outputs: dict[str, tuple[np.ndarray, np.ndarray | None]], path: Path) -> Path:
    """Each output = base + reshape(channel_means @ weight) (weight (3, base.size), or None for a constant)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("ReduceMean", ["image"], ["mean"], axes=[2, 3], keepdims=0)]  # (1, 3)
    inits, graph_outputs = [], []
    for name, (base, weight) in outputs.items():
        base = base.astype(np.float32)
        if weight is None:
            weight = np.zeros((3, base.size), np.float32)
        inits += [numpy_helper.from_array(base, f"{name}_base"),
                  numpy_helper.from_array(weight.astype(np.float32).reshape(3, base.size), f"{name}_weight"),
                  numpy_helper.from_array(np.array(base.shape, np.int64), f"{name}_shape")]
        nodes += [helper.make_node("MatMul", ["mean", f"{name}_weight"], [f"{name}_flat"]),
                  helper.make_node("Reshape", [f"{name}_flat", f"{name}_shape"], [f"{name}_delta"]),
                  helper.make_node("Add", [f"{name}_base", f"{name}_delta"], [name])]
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(base.shape)))
    graph = helper.make_graph(nodes, path.stem, [helper.make_tensor_value_info("image", TensorProto.FLOAT, list(input_shape))],
                              graph_outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def aligner_landmarks() -> np.ndarray:
    """(222, 2) landmarks in the unit 128 crop: contour ellipse, two eye clusters, a mouth cluster."""
    t = np.linspace(0, 2 * np.pi, 222, endpoint=False)
    pts = np.stack([0.5 + 0.33 * np.cos(t), 0.52 + 0.38 * np.sin(t)], 1)
    ring = lambda n, c, r: np.stack([c[0] + r * np.cos(np.linspace(0, 2 * np.pi, n, endpoint=False)),  # noqa: E731
                                     c[1] + 0.5 * r * np.sin(np.linspace(0, 2 * np.pi, n, endpoint=False))], 1)
    left = list(range(48, 60)) + list(range(74, 95))
    right = list(range(61, 73)) + list(range(96, 117))
    mouth = list(range(118, 149))
    pts[left] = ring(len(left), (0.33, 0.40), 0.07)
    pts[right] = ring(len(right), (0.67, 0.40), 0.07)
    pts[mouth] = ring(len(mouth), (0.50, 0.70), 0.09)
    fixed = {74: (0.26, 0.40), 96: (0.74, 0.40), 33: (0.50, 0.40), 133: (0.59, 0.70), 149: (0.41, 0.70),
             182: (0.36, 0.36), 202: (0.64, 0.36), 36: (0.50, 0.55)}
    for index, xy in fixed.items():
        pts[index] = xy
    return pts


def detector_outputs() -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Score maps (all 0.01 but the face cell, whose score reads the input) then box distributions."""
    scores, boxes = {}, {}
    for stride in STRIDES:
        rows, cols = int(np.ceil(DET_SHAPE[0] / stride)), int(np.ceil(DET_SHAPE[1] / stride))
        score = np.full((1, rows * cols, 1), 0.01, np.float32)
        weight = np.zeros((3, rows * cols), np.float32)
        dist = np.zeros((1, rows * cols, 32), np.float32)
        if stride == FACE_CELL[0]:
            cell = FACE_CELL[1] * cols + FACE_CELL[2]
            score[0, cell, 0] = 0.7
            weight[:, cell] = (0.05, 0.0, -0.05)
            dist[0, cell].reshape(4, 8)[:, BOX_BIN] = 20.0  # softmax peak at BOX_BIN
        scores[f"score_{stride}"] = (score, weight)
        boxes[f"boxes_{stride}"] = (dist, None)
    return {**scores, **boxes}


def write_toolkit(folder: Path) -> Path:
    """The four ``hello_group_facemodel`` files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    _affine_model((1, 3, *DET_SHAPE), detector_outputs(), folder / "hello_face_det.onnx")
    landmarks = aligner_landmarks()
    _affine_model((1, 3, 128, 128), {
        "landmark": (np.concatenate([landmarks[:, 0], landmarks[:, 1]])[None], None),
        "euler": (np.zeros((1, 3), np.float32), np.eye(3, dtype=np.float32)),
        "prob": (np.full((1, 1), 0.5, np.float32), np.array([[0.4], [0.0], [-0.4]], np.float32)),
    }, folder / "hello_face_landmark.onnx")
    coeffs = np.zeros((1, 1201), np.float32)
    coeffs[0, 1168:1171] = POSE_ANGLES
    coeffs[0, 1198:1201] = POSE_TRANSLATION
    pose_weight = np.zeros((3, 1201), np.float32)
    pose_weight[:, 1168:1171] = POSE_WEIGHTS.T
    _affine_model((1, 3, 224, 224), {"coeffs": (coeffs, pose_weight)}, folder / "hello_3dmm.onnx")
    arkit_weight = np.zeros((3, 51), np.float32)
    arkit_weight[np.arange(51) % 3, np.arange(51)] = 0.5
    _affine_model((1, 3, 224, 224), {"blendshapes": (0.5 * ARKIT_VALUES[None], arkit_weight)},
                  folder / "hello_arkit_blendshape.onnx")
    return folder


# ---- what the networks return for a uniformly coloured frame ---------------------------------------
def expected_detector_score(bgr: np.ndarray, frame_size: tuple[int, int]) -> float:
    """The face cell's score for a uniform BGR colour in a (width, height) frame: the frame is letterboxed
    into the 160 x 272 input (black padding), then (x - mean) / std per BGR channel."""
    width, height = frame_size
    ratio = min(DET_SHAPE[1] / width, DET_SHAPE[0] / height)
    covered = (width * ratio) * (height * ratio) / (DET_SHAPE[0] * DET_SHAPE[1])
    means = (covered * np.asarray(bgr, np.float64) - DET_MEAN) / DET_STD
    return float(0.7 + 0.05 * (means[0] - means[2]))


def expected_aligner(bgr: np.ndarray) -> tuple[float, np.ndarray]:
    """(prob, euler) for a crop of one BGR colour fed as BGR / 255."""
    means = np.asarray(bgr, np.float64) / 255.0
    return float(0.5 + 0.4 * (means[0] - means[2])), means


def expected_angles(rgb: np.ndarray) -> np.ndarray:
    """(3,) pitch, yaw, roll for a crop of one colour fed as RGB / 255."""
    return POSE_ANGLES + POSE_WEIGHTS @ (np.asarray(rgb, np.float64) / 255.0)


def expected_arkit(bgr: np.ndarray) -> np.ndarray:
    """(51,) for a crop of one colour fed as BGR / 255."""
    means = np.asarray(bgr, np.float64) / 255.0
    return 0.5 * ARKIT_VALUES + 0.5 * means[np.arange(51) % 3]
