"""The insightface pack reader on generated models with the packs' signatures: finding packs, SCRFD decoding
and suppression, the colour order and scaling fed, ArcFace alignment and embeddings against float64 references."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from hellomeme_core.errors import MissingModelFileError
from hellomeme_core.face.insightface import detector as D
from hellomeme_core.face.insightface.identity import plot_series, similarity_series, summarise
from hellomeme_core.face.insightface.packs import InsightFacePack, find_pack, list_packs
from hellomeme_core.face.insightface.recognition import ARCFACE_TEMPLATE, align_face, alignment_matrix
from tests.face import insightface_models as M
from tests.face.media_cache import media_path

FACES = [M.face_at((50, 60, 250, 300), 0.8, 16), M.face_at((400, 100, 480, 200), 0.7, 8),
         M.face_at((100, 400, 400, 620), 0.9, 32), M.face_at((500, 500, 520, 530), 0.3, 8)]  # the last under 0.5


@pytest.fixture(scope="module")
def pack_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("insightface")
    M.write_pack(root / "models" / "buffalo_l", FACES)
    M.write_pack(root / "antelopev2", FACES, names=("scrfd_10g_bnkps.onnx", "glintr100.onnx"))
    M.write_landmark_model(root / "antelopev2" / "2d106det.onnx")
    return root


def _reference_decode(raw: list[np.ndarray], threshold: float) -> list[tuple]:
    """Anchor by anchor, from the outputs in insightface's order (scores, boxes, keypoints x 3 strides)."""
    found = []
    for level, stride in enumerate((8, 16, 32)):
        cols = 640 // stride
        scores, boxes, kps = (np.asarray(raw[level + 3 * part], np.float64) for part in range(3))
        for k in range(len(scores)):
            if scores[k, 0] < threshold:
                continue
            cx, cy = (k // 2) % cols * stride, (k // 2) // cols * stride
            d, o = boxes[k] * stride, kps[k] * stride
            found.append((scores[k, 0], (cx - d[0], cy - d[1], cx + d[2], cy + d[3]),
                          [(cx + o[2 * j], cy + o[2 * j + 1]) for j in range(5)]))
    return sorted(found, key=lambda f: -f[0])


def test_packs_are_found_and_classified_by_signature(pack_root, tmp_path):
    assert list_packs([pack_root]) == ["antelopev2", "buffalo_l"]
    assert find_pack([pack_root], "buffalo_l") == pack_root / "models" / "buffalo_l"
    # Renamed files still work: the roles come from the signatures, and the 192 x 192 landmark model is skipped.
    odd = tmp_path / "mypack"
    M.write_landmark_model(odd / "a.onnx")
    M.write_pack(odd, FACES, names=("b.onnx", "c.onnx"))
    pack = InsightFacePack(odd)
    assert pack.detector.size == (640, 640) and pack.recognizer.size == 112
    with pytest.raises(MissingModelFileError) as err:
        find_pack([tmp_path / "empty"], "antelopev2")
    text = str(err.value)
    assert "antelopev2" in text and "scrfd_10g_bnkps.onnx" in text and "glintr100.onnx" in text and "w600k_r50.onnx" in text
    assert str(tmp_path / "empty") in text and "never downloads" in text
    (tmp_path / "half").mkdir()
    M.write_recognizer(tmp_path / "half" / "w600k_r50.onnx")
    with pytest.raises(MissingModelFileError, match="no detector"):
        InsightFacePack(tmp_path / "half").detector


def test_detection_matches_reference_decode_and_suppresses_duplicates(pack_root):
    pack = InsightFacePack(pack_root / "antelopev2")
    canvas = np.full((640, 640, 3), 127, np.uint8)
    raw = pack.detector.raw(canvas)
    ref = _reference_decode(raw, 0.5)
    boxes, scores, kps = D.decode(raw, (640, 640), 0.5)
    assert len(ref) == len(scores) == 6  # 3 faces over 0.5, each with its duplicate
    got = sorted(zip(scores, boxes, kps), key=lambda f: -f[0])
    for (s, b, k), (rs, rb, rk) in zip(got, ref):
        assert s == pytest.approx(rs, abs=1e-6)
        np.testing.assert_allclose(b, rb, atol=1e-3)
        np.testing.assert_allclose(k, rk, atol=1e-3)
    det = pack.detector.detect(canvas)
    assert len(det) == 3  # duplicates suppressed, the 0.3 face under the threshold
    expected = [FACES[2], FACES[0], FACES[1]]  # best score first
    for i, face in enumerate(expected):
        np.testing.assert_allclose(det.boxes[i], face["box"], atol=0.05)
        np.testing.assert_allclose(det.keypoints[i], face["kps"], atol=0.05)


def test_letterbox_maps_back_to_the_frame(pack_root):
    """A 1280 x 320 frame is scaled by 0.5 into the top of the canvas: boxes come back doubled."""
    pack = InsightFacePack(pack_root / "models" / "buffalo_l")
    det = pack.detector.detect(np.full((320, 1280, 3), 127, np.uint8))
    np.testing.assert_allclose(det.boxes[1], np.array(FACES[0]["box"]) * 2, atol=0.1)
    canvas, scale = D.letterbox(np.zeros((320, 1280, 3), np.uint8) + 200, (640, 640))
    assert scale == 0.5 and canvas[:160].min() == 200 and canvas[160:].max() == 0


def test_detector_is_fed_rgb_scaled_like_the_pack(pack_root):
    """Score = base + 0.05 (m0 - m2) of the (x - 127.5) / 128 input: red passes, blue (what BGR would be) fails."""
    pack = InsightFacePack(pack_root / "models" / "buffalo_l")
    red = np.zeros((640, 640, 3), np.uint8)
    red[..., 0] = 255
    m = (np.array([255.0, 0.0, 0.0]) - 127.5) / 128.0
    det = pack.detector.detect(red)
    assert det.scores[0] == pytest.approx(0.9 + 0.05 * (m[0] - m[2]), abs=2e-5)
    # Blue in channel 0 lowers every face's score by the same amount (what a BGR feed of red would do).
    blue = red[..., ::-1].copy()
    assert pack.detector.detect(blue).scores.min() == pytest.approx(0.7 - 0.05 * (m[0] - m[2]), abs=2e-5)


def test_nms_keeps_best_of_overlaps():
    boxes = np.array([[0, 0, 100, 100], [5, 5, 105, 105], [200, 200, 300, 300], [0, 0, 100, 60]], np.float64)
    scores = np.array([0.7, 0.9, 0.8, 0.6])
    # IoU(1, 0) = 0.82 > 0.4 dropped; box 3 overlaps box 1 by 0.51 of the union: dropped too.
    assert D.nms(boxes, scores, 0.4).tolist() == [1, 2]


def _bilinear64(image: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """Float64 inverse-mapped bilinear warp with black outside (what warpAffine approximates)."""
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
    ys, xs = np.mgrid[:size, :size].astype(np.float64)
    sx, sy = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2], inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    out = np.zeros((size, size, 3))
    for dx in (0, 1):
        for dy in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            w = (1 - np.abs(sx - xi)) * (1 - np.abs(sy - yi))
            ok = (xi >= 0) & (xi < image.shape[1]) & (yi >= 0) & (yi < image.shape[0])
            out += np.where(ok[..., None], image[yi.clip(0, image.shape[0] - 1), xi.clip(0, image.shape[1] - 1)], 0) * w[..., None]
    return out


def _lstsq_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """x' = a x - b y + tx, y' = b x + a y + ty by plain least squares (float64)."""
    rows = []
    for (x, y) in src:
        rows += [[x, -y, 1, 0], [y, x, 0, 1]]
    a, b, tx, ty = np.linalg.lstsq(np.array(rows), dst.reshape(-1), rcond=None)[0]
    return np.array([[a, -b, tx], [b, a, ty]])


def test_alignment_and_embedding_match_float64_reference(pack_root):
    image = cv2.cvtColor(cv2.imread(str(media_path("reference/zzj.jpg"))), cv2.COLOR_BGR2RGB)
    # A rotated, scaled, noisy placement of the template: the similarity fit is least squares, not exact.
    rng = np.random.default_rng(3)
    angle, scale = np.radians(12.0), 2.1
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    kps = ARCFACE_TEMPLATE @ rot.T + [140, 150] + rng.normal(0, 2.0, (5, 2))
    m = alignment_matrix(kps)
    np.testing.assert_allclose(m, _lstsq_similarity(kps, ARCFACE_TEMPLATE), atol=1e-9)
    crop = align_face(image, kps)
    reference_crop = _bilinear64(image.astype(np.float64), _lstsq_similarity(kps, ARCFACE_TEMPLATE), 112)
    assert np.abs(crop - reference_crop).mean() < 0.6  # warpAffine's fixed-point weights
    pack = InsightFacePack(pack_root / "models" / "buffalo_l")
    got = pack.recognizer.embed_faces(image, kps[None])[0]
    want = M.reference_embedding(crop)
    assert float(got @ want) == pytest.approx(1.0, abs=1e-5)
    assert float(got @ M.reference_embedding(np.clip(reference_crop + 0.5, 0, 255).astype(np.uint8))) > 0.999


def test_identity_series_arithmetic(pack_root):
    """The reference against frames: itself 1.0, another photo lower, and every value equal to the float64
    reference (the frame's best face against the reference's largest face)."""
    pack = InsightFacePack(pack_root / "models" / "buffalo_l")
    load = lambda p: cv2.resize(cv2.cvtColor(cv2.imread(str(media_path(p))), cv2.COLOR_BGR2RGB), (640, 640))  # noqa: E731
    a, b = load("reference/zzj.jpg"), load("reference/chillout.jpg")
    values = similarity_series(pack, a, np.stack([a, b, a[:, ::-1]]))
    faces = pack.detector.detect(a)
    big = int(np.argmax((faces.boxes[:, 2] - faces.boxes[:, 0]) * (faces.boxes[:, 3] - faces.boxes[:, 1])))
    target = M.reference_embedding(align_face(a, faces.keypoints[big]))
    # Each frame's value is its best face against the reference's largest face, computed here in float64.
    for frame, value in zip((a, b, a[:, ::-1]), values):
        det = pack.detector.detect(np.ascontiguousarray(frame))
        best = max(float(M.reference_embedding(align_face(np.ascontiguousarray(frame), k)) @ target) for k in det.keypoints)
        assert value == pytest.approx(best, abs=1e-4)
    assert values[0] == pytest.approx(1.0, abs=1e-5) and values[1] < 0.9


def test_summary_warning_and_plot():
    values = np.array([0.8, 0.7, np.nan, 0.3, 0.6], np.float32)
    s = summarise(values, 0.5)
    assert s.mean == pytest.approx(0.6, abs=1e-6) and s.min == pytest.approx(0.3, abs=1e-6)
    assert s.below == [3] and s.no_face == [2]
    assert "1 frame(s) below the threshold 0.50" in s.warning() and "frames 3" in s.warning()
    assert summarise(values, 0.2).warning() is None
    assert "no face" in summarise(np.full(3, np.nan), 0.5).warning()
    plot = plot_series(values, 0.5)
    assert plot.shape == (320, 768, 3) and plot.dtype == np.uint8 and plot.std() > 10


def test_check_reports_packs_and_download_refuses_them(tmp_path, capsys):
    from hellomeme_core.cli.main import main

    (tmp_path / "hellomeme").mkdir()
    M.write_pack(tmp_path / "insightface" / "antelopev2", FACES, names=("scrfd_10g_bnkps.onnx", "glintr100.onnx"))
    assert main(["check", "--models-dir", str(tmp_path / "hellomeme"), "--json"]) == 0
    report = {p["id"]: p for p in json.loads(capsys.readouterr().out)["insightface"]}
    assert report["antelopev2"]["status"] == "ok" and report["buffalo_l"]["status"] == "missing"
    assert report["buffalo_l"]["missing"] == ["det_10g.onnx", "w600k_r50.onnx"]
    assert main(["download", "--id", "insightface/buffalo_l/w600k_r50", "--models-dir", str(tmp_path / "hellomeme")]) == 2
    assert "never downloaded" in capsys.readouterr().err
    assert not (tmp_path / "insightface" / "models").exists()
