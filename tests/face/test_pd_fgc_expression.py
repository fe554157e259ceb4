"""The PD-FGC expression input ``pd_fpg`` for both face backends (hellomeme_core/face/pd_fgc_expression.py): the
official five-point alignment on the 512 clip crop, the mediapipe anchors on real frames, the embedding through a
FanEncoder with generated weights in the official layout, and (when the real files are here) the mediapipe
alignment against the official toolkit's."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import torch

from hellomeme_core.errors import HelloMemeError, ShapeMismatchError
from hellomeme_core.face.analyzer import extract_face_motion, load_face_analyzer
from hellomeme_core.face.crop import crop_frames, points_to_crop
from hellomeme_core.face.mediapipe_backend import MediapipeFaceAnalyzer
from hellomeme_core.face.pd_fgc_expression import (ANCHORS, PD_FGC_TEMPLATE, PdFgcExpression, aligned_crops,
                                                   alignment_matrices, anchor_points, clip_aligned_crops, encoder_input,
                                                   resolve_device)
from hellomeme_core.pd_fgc import FanEncoder
from tests.face.media_cache import clip


@pytest.fixture(scope="module")
def encoder() -> FanEncoder:
    from tests.support.official_weights import official_state_dict

    return FanEncoder.from_state_dict(official_state_dict("songkey/pd_fgc_motion"), "generated pd_fgc_motion").eval()


def _apply(matrices: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.einsum("fij,fnj->fni", matrices[:, :, :2], points) + matrices[:, None, :, 2]


def _complex_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Independent least-squares similarity in the complex plane: dst ~ a * src + b (a = scale * rotation)."""
    s, d = src[:, 0] + 1j * src[:, 1], dst[:, 0] + 1j * dst[:, 1]
    sc, dc = s - s.mean(), d - d.mean()
    a = (np.conj(sc) * dc).sum() / (np.abs(sc) ** 2).sum()
    b = d.mean() - a * s.mean()
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


# ---- alignment -------------------------------------------------------------------------------------------------
# Near-frontal faces (|yaw| < 12 degrees by the mediapipe pose). Measured five-anchor residual on the 224 template
# after the fit: qie 4.2 px mean (6.2 max), tbh 4.3 (7.5), civitai1 5.6 (8.2), zzj 2.3 (2.9). A similarity cannot
# follow a turned head: yao (yaw -24) 9.3 mean, amns (yaw -35) 10.7 mean, 18.7 max.
FRONTAL = [("driving/qie.mp4", 0), ("driving/tbh.mp4", 0), ("reference/civitai1.jpg", 0), ("reference/zzj.jpg", 0)]


@pytest.fixture(scope="module")
def frontal_crop_points() -> np.ndarray:
    """(4, 478, 2) mediapipe landmarks of the frontal frames, each in its clip's 512 crop."""
    out = []
    for relative, index in FRONTAL:
        motion = extract_face_motion(MediapipeFaceAnalyzer(), clip(relative).frames[index:index + 1])
        assert motion.frames_without_face == 0, relative
        out.append(points_to_crop(motion.landmarks[0], motion.crop_box))
    return np.stack(out)


def test_mediapipe_anchors_land_on_the_template(frontal_crop_points):
    anchors = anchor_points(frontal_crop_points)
    matrices = alignment_matrices(frontal_crop_points)
    residual = np.linalg.norm(_apply(matrices, anchors) - PD_FGC_TEMPLATE, axis=-1)  # (4, 5) px on the 224 crop
    assert residual.mean() < 6.0 and residual.max() < 9.0, residual.round(2)
    # The fit is the least-squares similarity (the official umeyama with scaling): an independent solution agrees.
    for a, m in zip(anchors, matrices):
        np.testing.assert_allclose(m, _complex_fit(a, PD_FGC_TEMPLATE), atol=1e-9)
    # Iris centres: image left first (468 is the subject's right eye); mouth corners likewise; the nose between.
    assert (anchors[:, 0, 0] < anchors[:, 1, 0]).all() and (anchors[:, 3, 0] < anchors[:, 4, 0]).all()
    assert ((anchors[:, 2, 1] > anchors[:, :2, 1].max(1)) & (anchors[:, 2, 1] < anchors[:, 3:, 1].min(1))).all()


def test_the_warp_carries_anchor_pixels_onto_the_template():
    """A 512 crop with bright dots at five anchors (a turned, scaled, shifted template): in the aligned 224 crop
    each dot's centroid sits on its template point (direction and bicubic warp of the official cv2 call)."""
    angle, scale, shift = np.radians(12.0), 1.8, np.array([60.0, 35.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = PD_FGC_TEMPLATE @ rot.T * scale + shift
    image = np.zeros((512, 512, 3), np.uint8)
    for x, y in points:
        cv2.circle(image, (int(round(x * 16)), int(round(y * 16))), 5 * 16, (255, 255, 255), -1, cv2.LINE_AA, shift=4)
    landmarks = np.zeros((1, 478, 2))
    landmarks[0, list(ANCHORS[478])] = points
    crop = aligned_crops(image[None], landmarks)[0, ..., 0].astype(np.float64)
    assert crop.shape == (224, 224)
    yy, xx = np.mgrid[:224, :224]
    for tx, ty in PD_FGC_TEMPLATE:
        near = (np.hypot(xx - tx, yy - ty) < 6) * crop
        centroid = np.array([(near * xx).sum(), (near * yy).sum()]) / near.sum()
        assert np.hypot(*(centroid - (tx, ty))) < 0.3, (centroid, (tx, ty))


def test_crops_are_cut_from_the_512_clip_crop_first():
    """clip_aligned_crops = 512 crop (bicubic) + landmarks moved into it, THEN the warp; not one warp of the frame."""
    frames = clip("reference/show1.jpg").frames  # 1024 x 1024: its crop (1002 px) is resized to 512 first
    motion = extract_face_motion(MediapipeFaceAnalyzer(), frames)
    got = clip_aligned_crops(frames, motion.landmarks, motion.crop_box)
    expected = aligned_crops(crop_frames(frames, motion.crop_box), points_to_crop(motion.landmarks, motion.crop_box))
    np.testing.assert_array_equal(got, expected)
    direct = aligned_crops(frames, motion.landmarks)  # the old way: straight from the full frame
    assert np.abs(got.astype(float) - direct).mean() > 2.0  # measured 4.7 grey levels: the two orders differ


def test_bad_landmarks_are_named():
    with pytest.raises(ShapeMismatchError, match=r"222 or 478.*\(3, 68, 2\)"):
        anchor_points(np.zeros((3, 68, 2)))


# ---- the embedding -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ysll_motion(encoder):
    """ysll frames 7 (eyes open) and 11 (eyes closed) through mediapipe + PD-FGC."""
    analyzer = MediapipeFaceAnalyzer()
    analyzer.pd_fgc = PdFgcExpression(encoder, "cpu", batch_size=1)
    frames = clip("driving/ysll.mp4").frames[[7, 11]]
    seen = []
    motion = extract_face_motion(analyzer, frames, 25.0, progress=seen.append)
    return frames, motion, seen


def test_mediapipe_backend_returns_pd_fpg(ysll_motion, encoder):
    frames, motion, seen = ysll_motion
    pd = motion.pd_fpg
    assert isinstance(pd, torch.Tensor) and pd.shape == (2, 548) and pd.dtype == torch.float32
    assert torch.isfinite(pd).all()
    # Eyes open vs closed: measured relative distance 0.077 with the generated weights.
    assert float((pd[0] - pd[1]).norm() / pd[0].norm()) > 0.02
    # What the motion holds is the encoder on the official crops of these frames, nothing else.
    crops = clip_aligned_crops(frames, motion.landmarks, motion.crop_box)
    with torch.no_grad():
        torch.testing.assert_close(pd, encoder(encoder_input(crops)), rtol=1e-5, atol=1e-4)
        negative = encoder(torch.full((1, 3, 224, 224), -1.0))
    torch.testing.assert_close(motion.extras["neg_pd_fpg"], negative, rtol=1e-5, atol=1e-5)
    inputs = motion.expression_inputs()
    assert inputs["pd_fpg"].shape == (1, 2, 548) and inputs["neg_pd_fpg"].shape == (1, 1, 548)
    # Progress: the landmark pass counts 1, 2, then the embedding pass (batch size 1) counts 1, 2 again.
    assert seen == [1, 2, 1, 2]


def test_frames_without_a_face_are_filled_by_the_policy(encoder):
    analyzer = MediapipeFaceAnalyzer()
    analyzer.pd_fgc = PdFgcExpression(encoder, "cpu")
    frames = clip("driving/qie.mp4").frames[:2].copy()
    frames[1] = 0  # no face
    held = extract_face_motion(analyzer, frames, no_face_policy="hold")
    assert held.frames_without_face == 1 and held.pd_fpg.shape == (2, 548)
    torch.testing.assert_close(held.pd_fpg[1], held.pd_fpg[0])  # the last good frame's values
    dropped = extract_face_motion(analyzer, frames, no_face_policy="drop")
    assert dropped.pd_fpg.shape == (1, 548)


def test_batches_and_devices(encoder):
    crops = np.random.default_rng(1).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    one, three = PdFgcExpression(encoder, "cpu", batch_size=1), PdFgcExpression(encoder, "cpu", batch_size=3)
    seen = []
    np.testing.assert_allclose(one.embed(crops, progress=seen.append), three.embed(crops), rtol=1e-5, atol=1e-4)
    assert seen == [1, 2, 3]
    assert next(encoder.parameters()).device.type == "cpu"  # back where it was kept
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(HelloMemeError, match="'cuda' asked but torch sees no CUDA GPU"):
            resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_matches_cpu(encoder):
    crops = np.random.default_rng(2).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    gpu = PdFgcExpression(encoder, "cuda").embed(crops)
    assert next(encoder.parameters()).device.type == "cpu"  # moved to the GPU only while it ran
    np.testing.assert_allclose(gpu, PdFgcExpression(encoder, "cpu").embed(crops), rtol=1e-3, atol=1e-3)


def test_load_face_analyzer_with_the_official_file(tmp_path):
    from tests.support.official_weights import write_repo

    weights = write_repo(tmp_path, "songkey/pd_fgc_motion")  # <dir>/pd_fgc_motion/diffusion_pytorch_model.safetensors
    analyzer = load_face_analyzer("mediapipe", "cpu", pd_fgc_path=weights.parent)
    assert isinstance(analyzer.pd_fgc, PdFgcExpression) and analyzer.pd_fgc.device == torch.device("cpu")
    assert not analyzer.pd_fgc.encoder.training
    assert load_face_analyzer("mediapipe").pd_fgc is None


# ---- mediapipe against the official toolkit (real files only) ------------------------------------------------
def _real_models():
    """(toolkit folder, pd_fgc_motion path) under $HELLOMEME_MODELS_DIR, or None."""
    from hellomeme_core.face.official_backend import find_toolkit_dir
    from hellomeme_core.model_files.check import find_repo_file
    from hellomeme_core.model_files.layout import PD_FGC_REPO

    base = os.environ.get("HELLOMEME_MODELS_DIR")
    if not base:
        return None
    toolkit, pd_fgc = find_toolkit_dir([base]), find_repo_file(base, PD_FGC_REPO)
    return (toolkit, pd_fgc) if toolkit and pd_fgc else None


def test_mediapipe_alignment_matches_the_official_toolkit(record_property):
    """Same frames through both backends with the real encoder: the aligned 224 crops, where the mediapipe anchors
    fall in the official crop, and the pd_fpg cosine similarity. Never measured here (no real toolkit on this
    machine): the bounds are first guesses; the figures go to the test report (record_property) and the message."""
    real = _real_models()
    if real is None:
        pytest.skip("needs the real official toolkit and PD-FGC encoder: set HELLOMEME_MODELS_DIR to a folder holding "
                    "hello_group_facemodel/ (4 ONNX files) and pd_fgc_motion (python -m hellomeme_core download "
                    "--toolkit --models-dir DIR); the generated toolkit models return fixed landmarks")
    toolkit, pd_fgc = real
    frames = np.concatenate([clip("driving/qie.mp4").frames[:6:2], clip("driving/tbh.mp4").frames[:6:2]])
    official = load_face_analyzer("official", "auto", str(toolkit), pd_fgc_path=pd_fgc)
    mediapipe = load_face_analyzer("mediapipe", "auto", pd_fgc_path=pd_fgc)
    figures = {}
    for name, rows in (("qie", slice(0, 3)), ("tbh", slice(3, 6))):
        part = frames[rows]
        off, mp = extract_face_motion(official, part), extract_face_motion(mediapipe, part)
        assert off.frames_without_face == 0 and mp.frames_without_face == 0
        off_crops = clip_aligned_crops(part, off.landmarks, off.crop_box).astype(np.float64)
        mp_crops = clip_aligned_crops(part, mp.landmarks, mp.crop_box).astype(np.float64)
        # Both anchor sets in the official 224 frame (official landmarks -> official crop -> official fit).
        fit = alignment_matrices(points_to_crop(off.landmarks, off.crop_box))
        distance = np.linalg.norm(_apply(fit, anchor_points(points_to_crop(mp.landmarks, off.crop_box)))
                                  - _apply(fit, anchor_points(points_to_crop(off.landmarks, off.crop_box))), axis=-1)
        cosine = torch.nn.functional.cosine_similarity(off.pd_fpg, mp.pd_fpg, dim=1).numpy()
        figures[name] = dict(crop_mad=float(np.abs(off_crops - mp_crops).mean()),
                             anchor_px_mean=distance.mean(0).round(2).tolist(), anchor_px_max=float(distance.max()),
                             cosine_min=float(cosine.min()))
        record_property(f"pd_fgc_backends_{name}", figures[name])
    for name, f in figures.items():
        assert f["crop_mad"] < 15.0, figures
        assert max(f["anchor_px_mean"]) < 6.0 and f["anchor_px_max"] < 10.0, figures
        assert f["cosine_min"] > 0.9, figures

