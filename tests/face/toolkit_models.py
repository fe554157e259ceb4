"""Small ONNX models with the official face-toolkit signatures (names aside, which the code never
relies on): inputs and outputs have the official shapes and dtypes, and the values are fixed known
numbers (plus 0 x the input, so the graph really reads its input)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

DET_SHAPE = (272, 160)
STRIDES = (8, 16, 32)
POSE_ANGLES = np.array([0.10, -0.20, 0.05], np.float32)  # pitch, yaw, roll
POSE_TRANSLATION = np.array([0.01, -0.02, -4.0], np.float32)
ARKIT_VALUES = np.linspace(0.0, 1.0, 51, dtype=np.float32)


def _constant_model(input_shape: tuple[int, ...], outputs: dict[str, np.ndarray], path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1, 2, 3], keepdims=0),
             helper.make_node("Mul", ["mean", "zero"], ["nothing"])]
    inits = [numpy_helper.from_array(np.zeros((1,), np.float32), "zero")]
    graph_outputs = []
    for name, value in outputs.items():
        value = value.astype(np.float32)
        inits.append(numpy_helper.from_array(value, f"{name}_value"))
        nodes.append(helper.make_node("Add", [f"{name}_value", "nothing"], [name]))
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
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


def detector_outputs() -> dict[str, np.ndarray]:
    """One confident face cell at stride 16 near the input centre, box sides 4 strides from it."""
    outputs = {}
    for stride in STRIDES:
        rows, cols = int(np.ceil(DET_SHAPE[0] / stride)), int(np.ceil(DET_SHAPE[1] / stride))
        score = np.full((1, rows * cols, 1), 0.01, np.float32)
        dist = np.zeros((1, rows * cols, 32), np.float32)
        if stride == 16:
            cell = 8 * cols + 5  # row 8 (y = 128), column 5 (x = 80)
            score[0, cell, 0] = 0.9
            dist[0, cell].reshape(4, 8)[:, 4] = 20.0  # softmax peak at bin 4: distance 64 px
        outputs[f"score_{stride}"] = score
        outputs[f"boxes_{stride}"] = dist
    return {**{k: v for k, v in outputs.items() if k.startswith("score")},
            **{k: v for k, v in outputs.items() if k.startswith("boxes")}}


def write_toolkit(folder: Path) -> Path:
    """The four ``hello_group_facemodel`` files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    _constant_model((1, 3, *DET_SHAPE), detector_outputs(), folder / "hello_face_det.onnx")
    landmarks = aligner_landmarks()
    _constant_model((1, 3, 128, 128), {
        "landmark": np.concatenate([landmarks[:, 0], landmarks[:, 1]])[None],
        "euler": np.zeros((1, 3), np.float32),
        "prob": np.full((1, 1), 0.9, np.float32),
    }, folder / "hello_face_landmark.onnx")
    coeffs = np.zeros((1, 1201), np.float32)
    coeffs[0, 1168:1171] = POSE_ANGLES
    coeffs[0, 1198:1201] = POSE_TRANSLATION
    _constant_model((1, 3, 224, 224), {"coeffs": coeffs}, folder / "hello_3dmm.onnx")
    _constant_model((1, 3, 224, 224), {"blendshapes": ARKIT_VALUES[None]}, folder / "hello_arkit_blendshape.onnx")
    return folder
