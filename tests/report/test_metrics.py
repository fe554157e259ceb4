"""The fidelity report's measures on synthetic motion and on a real clip against its mirror image."""
from __future__ import annotations

import json

import numpy as np
import pytest

from hellomeme_core.report import metrics
from hellomeme_core.report.plots import SIZE, figure_png, figure_rgb, report_images
from hellomeme_core.report.report import build_report
from tests.face.media_cache import motion
from tests.report.support import delayed, synthetic_motion


def test_a_motion_against_itself_has_zero_error_everywhere():
    m = synthetic_motion()
    report = build_report(m, m, reference=m)
    s = report.summary
    assert s["apd_deg"] == {"yaw": 0.0, "pitch": 0.0, "roll": 0.0, "mean": 0.0}
    assert s["aed"] == 0.0 and s["aed_worst"] == {}
    assert s["landmark_distance"] < 1e-9
    assert s["mouth"]["correlation"] == pytest.approx(1.0)
    assert s["delay"]["frames"] == 0 and s["delay"]["correlation"] == pytest.approx(1.0) and not s["delay"]["mirrored"]
    assert s["jitter"]["driving_pose_deg"] == s["jitter"]["result_pose_deg"] > 0
    assert s["jitter"]["driving_landmarks"] == s["jitter"]["result_landmarks"] > 0
    assert report.frames == len(m) and "both clips have 40 frame(s)" in report.notes[0]
    encoded = json.loads(json.dumps(report.to_json()))  # strict JSON: NaN ends of the jitter are null
    assert encoded["per_frame"]["jitter_driving_pose"][0] is None and len(encoded["per_frame"]["apd_yaw"]) == 40


def test_errors_have_the_size_of_the_difference():
    d = synthetic_motion()
    r = synthetic_motion()
    r.angles = r.angles + np.radians([2.0, -5.0, 1.0]).astype(np.float32)  # pitch +2, yaw -5, roll +1
    r.expression = np.clip(d.expression + 0.1, 0, 1.1)
    report = build_report(d, r)
    apd = report.summary["apd_deg"]
    assert (apd["yaw"], apd["pitch"], apd["roll"]) == pytest.approx((5.0, 2.0, 1.0), abs=1e-4)
    assert report.summary["aed"] == pytest.approx(0.1, abs=1e-6)


@pytest.mark.parametrize("k", [3, -2, 7])
def test_a_delayed_copy_reports_its_delay(k):
    m = synthetic_motion(60)
    late = delayed(m, k) if k > 0 else m
    early = m if k > 0 else delayed(m, -k)
    report = build_report(early, late)
    assert report.summary["delay"]["frames"] == k
    assert report.summary["delay"]["seconds"] == pytest.approx(k / 25.0)
    assert report.summary["delay"]["correlation"] == pytest.approx(1.0)
    assert report.summary["delay"]["reliable"]


def test_a_real_clip_delayed_by_three_frames():
    m = motion("driving/qie.mp4")
    report = build_report(m, delayed(m, 3))
    assert report.summary["delay"]["frames"] == 3 and report.summary["delay"]["correlation"] == pytest.approx(1.0)
    assert report.summary["delay"]["correlation_at_zero"] < 0.95


def test_horizontal_flip_flips_yaw_and_roll_and_keeps_pitch():
    """ysll (singer turned ~45 deg toward the image left) against the same clip mirrored left-right."""
    m, flipped = motion("driving/ysll.mp4"), motion("driving/ysll.mp4", flipped=True)
    report = build_report(m, flipped)
    pf, apd = report.per_frame, report.summary["apd_deg"]
    turned = np.abs(pf["driving_yaw"]) > 5
    assert turned.sum() > 40
    assert (np.sign(pf["driving_yaw"][turned]) == -np.sign(pf["result_yaw"][turned])).all()
    rolled = np.abs(pf["driving_roll"]) > 3
    assert (np.sign(pf["driving_roll"][rolled]) == -np.sign(pf["result_roll"][rolled])).all()
    two_yaw = 2 * np.abs(pf["driving_yaw"]).mean()
    two_roll = 2 * np.abs(pf["driving_roll"]).mean()
    print(f"flip: APD yaw {apd['yaw']:.2f} (2|yaw| {two_yaw:.2f}), pitch {apd['pitch']:.2f}, roll {apd['roll']:.2f} "
          f"(2|roll| {two_roll:.2f}); delay {report.summary['delay']}")
    assert apd["yaw"] == pytest.approx(two_yaw, rel=0.15)
    assert apd["roll"] == pytest.approx(two_roll, rel=0.15)
    assert apd["pitch"] < 4.0 and apd["pitch"] < apd["yaw"] / 10
    assert report.summary["mouth"]["correlation"] > 0.9  # the mouth does not care about the mirror
    assert report.summary["delay"]["frames"] == 0 and report.summary["delay"]["mirrored"]


def test_frame_count_mismatch_and_frame_rate_resampling():
    d = synthetic_motion(40, fps=24.0)
    report = build_report(d, d.subset(slice(0, 30)))
    assert report.frames == 30 and "frame counts differ (driving 40, result 30)" in report.notes[0]
    # The result at 8 fps: every third driving frame. Pairing by time finds exactly those, so errors are 0.
    slow = d.subset(np.arange(0, 40, 3))
    slow.fps, slow.frame_indices = 8.0, np.arange(len(slow))
    report = build_report(d, slow)
    assert report.per_frame["driving_frame"].tolist() == list(range(0, 40, 3))
    assert report.summary["apd_deg"]["mean"] == 0.0 and report.summary["alignment"]["method"] == "time"
    assert report.summary["alignment"]["fps"] == 8.0 and "compared at 8 fps" in report.notes[0]


def test_similarity_alignment_removes_scale_rotation_and_shift_but_not_a_mirror():
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 100, (2, 478, 2))
    points[:, 33], points[:, 263] = (20, 50), (80, 50)
    angle = 0.7
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = 1.8 * points @ turn.T + np.array([40.0, -7.0])
    assert metrics.landmark_distance(points, moved) == pytest.approx([0.0, 0.0], abs=1e-9)
    mirrored = points * np.array([-1.0, 1.0])
    assert (metrics.landmark_distance(points, mirrored) > 0.1).all()
    assert metrics.landmark_distance(points, points[:, :222]) is None  # other layouts: not measured


def test_identity_drift_and_the_identity_similarity_hook():
    m = synthetic_motion()
    other = synthetic_motion(seed=5)
    similarity = np.linspace(0.9, 0.5, len(m))
    report = build_report(m, m, reference=other, identity=similarity)
    assert report.summary["identity_drift"]["mean"] > 0.1  # another face shape
    assert build_report(m, m, reference=m).summary["identity_drift"]["mean"] < 0.05  # its own shape
    assert report.per_frame["identity_similarity"].tolist() == pytest.approx(similarity.tolist())
    assert report.summary["identity_similarity"]["min"] == pytest.approx(0.5)
    with pytest.raises(Exception, match="identity has 3 value"):
        build_report(m, m, identity=np.ones(3))


def test_psnr_is_infinite_and_ssim_one_on_identical_frames():
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, (3, 64, 48, 3), dtype=np.uint8)
    assert np.isinf(metrics.psnr(frames, frames)).all()
    assert metrics.ssim(frames, frames) == pytest.approx([1.0, 1.0, 1.0])
    noisy = np.clip(frames.astype(int) + rng.normal(0, 10, frames.shape), 0, 255).astype(np.uint8)
    assert 27 < metrics.psnr(frames, noisy).mean() < 29  # sigma 10 noise (a little clipped): about 28 dB
    smooth = np.repeat(np.linspace(60, 200, 48)[None, None, :, None], 64, axis=1).repeat(3, axis=3)
    smooth = smooth.astype(np.uint8)
    ssim = [metrics.ssim(smooth, np.clip(smooth + rng.normal(0, sigma, smooth.shape), 0, 255).astype(np.uint8))[0]
            for sigma in (2, 10, 40)]
    assert 1.0 > ssim[0] > ssim[1] > ssim[2] and ssim[2] < 0.3  # structure lost to noise on a flat ramp
    m = synthetic_motion(3)
    report = build_report(m, m, driving_frames=frames, result_frames=frames.astype(np.float32) / 255.0)
    assert report.summary["psnr_db"] == float("inf") and report.summary["ssim"] == pytest.approx(1.0)
    assert report.to_json()["summary"]["psnr_db"] == "inf"


def test_plots_are_pngs_of_the_expected_size():
    m = synthetic_motion()
    report = build_report(m, delayed(m, 2), reference=m, identity=np.full(len(m), 0.8))
    figures = report_images(report)
    assert list(figures) == ["curves", "errors"]
    for figure in figures.values():
        rgb = figure_rgb(figure)
        assert rgb.shape == (SIZE[1], SIZE[0], 3) and rgb.dtype == np.uint8 and rgb.std() > 10
        png = figure_png(figure)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert (width, height) == SIZE
