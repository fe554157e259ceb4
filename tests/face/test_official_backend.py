"""The official ONNX toolkit backend end to end on small generated models with the official signatures,
and the PD-FGC encoder on its official weight layout."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from hellomeme_core.errors import HelloMemeError, MissingModelFileError
from hellomeme_core.face.analyzer import extract_face_motion, load_face_analyzer
from hellomeme_core.face.head_pose import FOCAL_LENGTH
from hellomeme_core.face.official_backend import TOOLKIT_FILES, find_toolkit_dir
from tests.face import toolkit_models as tk
from tests.face.media_cache import clip

pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def toolkit_dir(tmp_path_factory):
    return tk.write_toolkit(tmp_path_factory.mktemp("models") / "hello_group_facemodel")


@pytest.fixture(scope="module")
def official_motion(toolkit_dir):
    analyzer = load_face_analyzer("official", "cpu", str(toolkit_dir))
    frames = clip("driving/qie.mp4").frames[:4]
    return analyzer, frames, extract_face_motion(analyzer, frames, 15.0)


def test_toolkit_folder_is_found_in_models_dirs(toolkit_dir):
    assert find_toolkit_dir([toolkit_dir.parent]) == toolkit_dir
    assert find_toolkit_dir([toolkit_dir]) == toolkit_dir
    assert find_toolkit_dir([toolkit_dir.parent.parent]) is None


def test_detector_decodes_the_nanodet_outputs(official_motion):
    analyzer, frames, _ = official_motion
    boxes = analyzer.detect(np.ascontiguousarray(frames[0][..., ::-1]))
    # One cell at stride 16, (x 80, y 128) of the 160 x 272 letterboxed input, sides 64 px away; a 512
    # frame is scaled by 160 / 512 and centred vertically (offset 56).
    ratio = 160 / 512
    expected = np.array([(80 - 64) / ratio, (128 - 64 - 56) / ratio, (80 + 64) / ratio, (128 + 64 - 56) / ratio])
    assert boxes.shape == (1, 5)
    np.testing.assert_allclose(boxes[0, :4], expected, atol=0.01)
    assert boxes[0, 4] == pytest.approx(0.9)


def test_official_backend_returns_the_networks_pose_and_expression(official_motion):
    _, frames, m = official_motion
    assert m.backend == "official" and m.frames_without_face == 0 and m.landmarks.shape == (4, 222, 2)
    np.testing.assert_allclose(m.angles, np.tile(tk.POSE_ANGLES, (4, 1)), atol=1e-6)
    np.testing.assert_allclose(m.expression, np.tile(tk.ARKIT_VALUES, (4, 1)), atol=1e-6)
    # Translation: the crop prediction moved to the whole 512 crop image (official crop_transl_to_full_transl).
    x0, y0, x1, y1 = m.crop_box
    pts = (m.landmarks[0].astype(np.float64) - (x0, y0)) * (512 / (x1 - x0))
    centre = (pts.min(0) + pts.max(0)) / 2
    scale = 224 / (pts.max(0) - pts.min(0)).max() * (1 - 0.35)
    tx, ty, tz = tk.POSE_TRANSLATION.astype(np.float64)
    bs = 2 * FOCAL_LENGTH / scale / tz
    expected = [tx - 2 * (centre[0] - 256) / bs, ty + 2 * (centre[1] - 256) / bs, tz * scale]
    np.testing.assert_allclose(m.translation[0], expected, rtol=1e-4, atol=1e-5)


def test_landmarks_follow_the_detected_box(official_motion):
    _, _, m = official_motion
    # The aligner's unit landmarks were placed with eye corners 74 / 96 level and 0.48 apart.
    left, right = m.landmarks[0, 74], m.landmarks[0, 96]
    assert abs(left[1] - right[1]) < 0.5 and right[0] > left[0]


def test_pd_fgc_embedding_from_the_official_weight_layout(toolkit_dir, official_motion, tmp_path):
    from tests.support.official_weights import official_state_dict

    path = tmp_path / "pd_fgc_motion.safetensors"
    save_file({k: v.contiguous() for k, v in official_state_dict("songkey/pd_fgc_motion").items()}, str(path))
    analyzer = load_face_analyzer("official", "cpu", str(toolkit_dir))
    analyzer.load_pd_fgc(path)
    frames = official_motion[1][:2]
    m = extract_face_motion(analyzer, frames, 15.0)
    assert isinstance(m.pd_fpg, torch.Tensor) and m.pd_fpg.shape == (2, 548)
    assert torch.isfinite(m.pd_fpg).all() and m.pd_fpg.abs().sum() > 0
    assert m.extras["neg_pd_fpg"].shape == (1, 548)
    inputs = m.expression_inputs()
    assert inputs["pd_fpg"].shape == (1, 2, 548) and inputs["neg_pd_fpg"].shape == (1, 1, 548)
    assert inputs["drive_coeff"].shape == (1, 2, 51)
    with torch.no_grad():  # the encoder the analyzer loaded, on the official negative input
        assert torch.allclose(m.extras["neg_pd_fpg"], analyzer.pd_fgc(torch.full((1, 3, 224, 224), -1.0)))


def test_missing_and_broken_toolkit_files_are_clear_errors(toolkit_dir, tmp_path):
    with pytest.raises(MissingModelFileError, match="hello_group_facemodel"):
        load_face_analyzer("official", "cpu", None)
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / TOOLKIT_FILES["pose"]).write_bytes((toolkit_dir / TOOLKIT_FILES["pose"]).read_bytes())
    with pytest.raises(MissingModelFileError, match="hello_face_det.onnx"):
        load_face_analyzer("official", "cpu", str(partial))
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in TOOLKIT_FILES.values():
        (broken / name).write_bytes(b"not an onnx file")
    with pytest.raises(HelloMemeError, match="not a loadable ONNX model"):
        load_face_analyzer("official", "cpu", str(broken))


def test_cli_with_the_official_backend(toolkit_dir, tmp_path):
    import json

    from hellomeme.__main__ import main as cli

    out = tmp_path / "official.json"
    rc = cli(["motion", "--input", str(_qie()), "--max-frames", "3", "--out", str(out),
              "--backend", "official", "--models-dir", str(toolkit_dir.parent), "--device", "cpu"])
    data = json.loads(out.read_text())
    assert rc == 0 and data["backend"] == "official" and len(data["frames"]) == 3
    np.testing.assert_allclose(data["frames"][0]["angles_radians_pitch_yaw_roll"], tk.POSE_ANGLES, atol=1e-6)
    assert len(data["frames"][0]["landmarks"]) == 222


def _qie():
    from tests.face.media_cache import media_path

    return media_path("driving/qie.mp4")
