"""The official ONNX toolkit backend end to end on small generated models with the official signatures
(their outputs read the input's channel means, so the colour order and scaling each network is fed are
pinned), on the real toolkit files when they are present, and the PD-FGC encoder on its official
weight layout."""
from __future__ import annotations

import cv2
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
    # One cell at stride 16, (x 80, y 128) of the 160 x 272 letterboxed input, sides 3 strides (48 px)
    # away; a 512 frame is scaled by 160 / 512 and centred vertically (offset 56).
    ratio, side = 160 / 512, tk.BOX_BIN * 16
    expected = np.array([(80 - side) / ratio, (128 - side - 56) / ratio, (80 + side) / ratio, (128 + side - 56) / ratio])
    assert boxes.shape == (1, 5)
    np.testing.assert_allclose(boxes[0, :4], expected, atol=0.01)
    assert 0.5 < boxes[0, 4] < 0.9


# A uniformly coloured frame: every crop each network sees has that colour, so each output says which
# channel order and scaling the network was fed. The official code: detector BGR (x - mean) / std with
# the BGR NanoDet mean; aligner BGR / 255; 3DMM RGB / 255 (it converts BGR to RGB); ARKit BGR / 255.
COLOUR_RGB = np.array([200, 120, 40])


@pytest.fixture(scope="module")
def colour_frame():
    return np.full((1, 512, 512, 3), COLOUR_RGB, np.uint8)


def test_detector_and_aligner_see_bgr_with_their_official_scaling(toolkit_dir, colour_frame):
    analyzer = load_face_analyzer("official", "cpu", str(toolkit_dir))
    bgr = np.ascontiguousarray(colour_frame[0][..., ::-1])
    boxes = analyzer.detect(bgr)
    score = tk.expected_detector_score(COLOUR_RGB[::-1], (512, 512))
    assert boxes[0, 4] == pytest.approx(score, abs=2e-3)
    assert abs(tk.expected_detector_score(COLOUR_RGB, (512, 512)) - score) > 0.02  # RGB would read otherwise
    _, prob = analyzer.align(bgr, boxes[0, :4])
    assert prob == pytest.approx(tk.expected_aligner(COLOUR_RGB[::-1])[0], abs=2e-3)
    assert abs(tk.expected_aligner(COLOUR_RGB)[0] - prob) > 0.1


def test_pose_network_sees_rgb_and_arkit_network_bgr(toolkit_dir, colour_frame):
    m = extract_face_motion(load_face_analyzer("official", "cpu", str(toolkit_dir)), colour_frame)
    assert m.frames_without_face == 0
    np.testing.assert_allclose(m.angles[0], tk.expected_angles(COLOUR_RGB), atol=2e-3)
    assert np.abs(tk.expected_angles(COLOUR_RGB[::-1]) - m.angles[0]).max() > 0.05
    np.testing.assert_allclose(m.expression[0], tk.expected_arkit(COLOUR_RGB[::-1]), atol=2e-3)
    assert np.abs(tk.expected_arkit(COLOUR_RGB) - m.expression[0]).max() > 0.2
    # The same picture with red and blue swapped moves both the way their colour order says.
    swapped = extract_face_motion(load_face_analyzer("official", "cpu", str(toolkit_dir)),
                                  np.ascontiguousarray(colour_frame[..., ::-1]))
    np.testing.assert_allclose(swapped.angles[0], tk.expected_angles(COLOUR_RGB[::-1]), atol=2e-3)
    np.testing.assert_allclose(swapped.expression[0], tk.expected_arkit(COLOUR_RGB), atol=2e-3)


def test_official_backend_returns_the_networks_pose_and_expression(official_motion):
    _, frames, m = official_motion
    assert m.backend == "official" and m.frames_without_face == 0 and m.landmarks.shape == (4, 222, 2)
    # The networks' outputs read the pictures (values pinned exactly on a plain colour above).
    assert np.abs(m.angles - tk.POSE_ANGLES).max() > 1e-3 and np.abs(m.angles - tk.POSE_ANGLES).max() < 0.2
    assert m.expression.min() >= 0.0 and m.expression.max() <= 1.0 and np.ptp(m.expression, axis=0).max() > 0
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
        torch.testing.assert_close(m.extras["neg_pd_fpg"], analyzer.pd_fgc.encoder(torch.full((1, 3, 224, 224), -1.0)),
                                   rtol=1e-5, atol=1e-4)


class _RecordingSession:
    """An onnxruntime session that keeps a copy of every input it is run on."""

    def __init__(self, session):
        self.session, self.inputs = session, []

    def get_inputs(self):
        return self.session.get_inputs()

    def run(self, names, feeds):
        self.inputs.append(np.array(next(iter(feeds.values()))))
        return self.session.run(names, feeds)


class _RecordingEncoder(torch.nn.Module):
    """The FanEncoder, keeping every batch it is given."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.inputs = inner, []

    def forward(self, x):
        self.inputs.append(x.clone())
        return self.inner(x)


@pytest.fixture(scope="module")
def small_face_run(toolkit_dir):
    """One 1280 x 720 frame whose face box is 150 px wide (the detector is pinned to it), so the clip crop
    (about 330 px) is enlarged to 512: ARKit and PD-FGC inputs taken from that crop differ from inputs
    warped straight from the frame. Returns the frame, the motion and what the two networks received."""
    from hellomeme_core.face.pd_fgc_expression import PdFgcExpression
    from hellomeme_core.pd_fgc import FanEncoder
    from tests.support.official_weights import official_state_dict

    frame = np.full((1, 720, 1280, 3), 90, np.uint8)
    frame[0, 150:550, 450:850] = cv2.resize(clip("driving/qie.mp4").frames[0], (400, 400), interpolation=cv2.INTER_AREA)
    analyzer = load_face_analyzer("official", "cpu", str(toolkit_dir))
    analyzer.detect = lambda bgr: np.array([[575.0, 250.0, 725.0, 420.0, 0.9]])
    analyzer.sessions["arkit"] = arkit = _RecordingSession(analyzer.sessions["arkit"])
    encoder = _RecordingEncoder(FanEncoder.from_state_dict(official_state_dict("songkey/pd_fgc_motion")).eval())
    analyzer.pd_fgc = PdFgcExpression(encoder, "cpu")
    motion = extract_face_motion(analyzer, frame)
    return frame, motion, arkit.inputs, encoder


def test_arkit_reads_the_512_crop_with_crop_landmarks(small_face_run):
    from hellomeme_core.face.crop import crop_frames, points_to_crop
    from hellomeme_core.face.official_backend import landmark_warp

    frame, motion, arkit_inputs, _ = small_face_run
    x0, y0, x1, y1 = motion.crop_box
    assert motion.frames_without_face == 0 and 250 < x1 - x0 < 450  # the crop is enlarged about 1.5 x

    def arkit_input(image_bgr, points):  # the official HelloARKitBSPred preprocessing
        eye = points[96] - points[74]
        m, _ = landmark_warp(points, 224, 0.15, float(np.degrees(np.arctan2(eye[1], eye[0] + 1e-8))))
        return (cv2.warpAffine(image_bgr, m, (224, 224)).astype(np.float32) / 255.0).transpose(2, 0, 1)[None]

    bgr = np.ascontiguousarray(frame[..., ::-1])
    from_crop = arkit_input(crop_frames(bgr, motion.crop_box)[0], points_to_crop(motion.landmarks[0], motion.crop_box))
    from_frame = arkit_input(bgr[0], motion.landmarks[0].astype(np.float64))
    assert len(arkit_inputs) == 1
    np.testing.assert_allclose(arkit_inputs[0], from_crop, atol=1e-6)
    # The full-frame input would fail the check above: measured 0.0018 mean, 0.035 max (9 grey levels) apart.
    assert np.abs(from_frame - from_crop).mean() > 0.001 and np.abs(from_frame - from_crop).max() > 0.02


def test_pd_fgc_reads_the_512_crop_with_crop_landmarks(small_face_run):
    from hellomeme_core.face.pd_fgc_expression import aligned_crops, clip_aligned_crops, encoder_input

    frame, motion, _, encoder = small_face_run
    assert len(encoder.inputs) == 2  # the frame's batch, then the all -1 negative
    from_crop = encoder_input(clip_aligned_crops(frame, motion.landmarks, motion.crop_box))
    from_frame = encoder_input(aligned_crops(frame, motion.landmarks))
    torch.testing.assert_close(encoder.inputs[0], from_crop, rtol=0, atol=1e-6)
    # The full-frame crop would fail the check above: measured 0.0035 mean, 0.078 max (10 grey levels) apart.
    assert float((from_frame - from_crop).abs().mean()) > 0.002 and float((from_frame - from_crop).abs().max()) > 0.04
    assert torch.equal(encoder.inputs[1], torch.full((1, 3, 224, 224), -1.0))
    with torch.no_grad():
        torch.testing.assert_close(motion.pd_fpg, encoder.inner(from_crop), rtol=1e-5, atol=1e-4)


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

    from hellomeme_core.cli.main import main as cli

    out = tmp_path / "official.json"
    rc = cli(["motion", "--input", str(_qie()), "--max-frames", "3", "--out", str(out),
              "--backend", "official", "--models-dir", str(toolkit_dir.parent), "--device", "cpu"])
    data = json.loads(out.read_text())
    assert rc == 0 and data["backend"] == "official" and len(data["frames"]) == 3
    same = extract_face_motion(load_face_analyzer("official", "cpu", str(toolkit_dir)), clip("driving/qie.mp4").frames[:3])
    np.testing.assert_allclose([f["angles_radians_pitch_yaw_roll"] for f in data["frames"]], same.angles, atol=1e-6)
    assert len(data["frames"][0]["landmarks"]) == 222
    assert "arkit_order" in data["conventions"] and "coefficients" not in data["conventions"]


def _qie():
    from tests.face.media_cache import media_path

    return media_path("driving/qie.mp4")


def _real_toolkit_dir():
    """The real hello_group_facemodel folder under $HELLOMEME_MODELS_DIR (or the default models folder)."""
    from hellomeme_core.errors import HelloMemeError
    from hellomeme_core.model_files.locations import default_models_dir

    try:
        base = default_models_dir(must_exist=False)
    except HelloMemeError:
        return None
    return find_toolkit_dir([base]) if base.is_dir() else None


@pytest.fixture(scope="module")
def real_analyzer():
    folder = _real_toolkit_dir()
    if folder is None:
        pytest.skip("the real HelloMeme face toolkit is not here: set HELLOMEME_MODELS_DIR to a models folder "
                    "holding hello_group_facemodel/ (hello_face_det, hello_face_landmark, hello_3dmm, "
                    "hello_arkit_blendshape .onnx; python -m hellomeme_core download --toolkit)")
    return load_face_analyzer("official", "auto", str(folder))


def test_real_toolkit_on_labelled_frames(real_analyzer):
    """The real networks on the frames whose pose test_pose_signs labels: ysll frame 0 turned about 45
    degrees toward the image left (yaw < 0), qie frame 2 chin down (pitch > 0), amns frame 0 chin up."""
    qie = extract_face_motion(real_analyzer, clip("driving/qie.mp4").frames[:8], 15.0)
    assert qie.frames_without_face == 0 and (qie.translation[:, 2] < 0).all()
    assert qie.expression.min() >= 0.0 and qie.expression.max() <= 1.0
    x0, y0, x1, y1 = qie.face_boxes[0]
    assert 0 <= x0 < x1 <= 512 and 0 <= y0 < y1 <= 512
    yaw, pitch = (lambda d: (d[0], d[1]))(qie.yaw_pitch_roll_degrees[2])
    assert pitch > 0.0, pitch
    ysll = extract_face_motion(real_analyzer, clip("driving/ysll.mp4").frames[:1])
    assert ysll.yaw_pitch_roll_degrees[0, 0] < -15.0
    amns = extract_face_motion(real_analyzer, clip("driving/amns.mp4").frames[:1])
    assert amns.yaw_pitch_roll_degrees[0, 1] < 0.0


def test_real_toolkit_arkit_order_assumption(real_analyzer):
    """Reads the real ARKit network's outputs by the ASSUMED names (types.ARKIT_NAMES): the open mouth of
    yao.jpg must score a higher jawOpen than the closed mouth of civitai1.jpg, and the closed eyes of
    ysll frame 11 a higher eyeBlink (both sides) than its open eyes in frame 7. A failure here means
    the assumed order is wrong, not the network."""
    from hellomeme_core.face.types import ARKIT_NAMES

    open_mouth = extract_face_motion(real_analyzer, clip("driving/yao.jpg").frames)
    closed = extract_face_motion(real_analyzer, clip("reference/civitai1.jpg").frames)
    assert open_mouth.coefficient("jawOpen")[0] > closed.coefficient("jawOpen")[0] + 0.2
    eyes = extract_face_motion(real_analyzer, clip("driving/ysll.mp4").frames[[7, 11]])
    for side in ("Left", "Right"):
        blink = eyes.coefficient(f"eyeBlink{side}")
        assert blink[1] > blink[0] + 0.2, (side, blink, ARKIT_NAMES.index(f"eyeBlink{side}"))
