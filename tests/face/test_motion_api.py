"""FACE_MOTION: JSON round trip, rotation conventions, relative motion, condition images, face parts, CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hellomeme_core.cli.main import main as cli
from hellomeme_core.face.face_parts import face_part_crops
from hellomeme_core.face.head_pose import euler_to_matrix, matrix_to_euler
from hellomeme_core.face.retarget import condition_images, relative_motion
from hellomeme_core.face.types import ARKIT_NAMES, FaceMotion
from hellomeme_core.pose_condition import project_face_square, render_pose_condition
from tests.face.media_cache import clip, media_path, motion


def test_euler_round_trip_and_axis_meaning():
    angles = np.array([[0.3, -0.5, 0.2], [-0.1, 0.8, -1.0]])
    np.testing.assert_allclose(matrix_to_euler(euler_to_matrix(angles)), angles, atol=1e-12)
    facing = euler_to_matrix(np.array([[0.0, 0.3, 0.0], [0.3, 0.0, 0.0], [0.0, 0.0, 0.3]])) @ np.array([0, 0, 1.0])
    assert facing[0, 0] > 0  # +yaw turns the face toward the image right
    assert facing[1, 1] < 0  # +pitch tips the face down (y is up)
    right = euler_to_matrix(np.array([[0.0, 0.0, 0.3]]))[0] @ np.array([1.0, 0, 0])
    assert right[1] > 0  # +roll turns the face counter-clockwise on screen


def test_condition_square_follows_pose_signs():
    base = project_face_square(np.zeros((1, 3)), np.array([[0, 0, -4.0]]), 512)[0]
    np.testing.assert_allclose(base.mean(0), [256, 256])
    x_moved = project_face_square(np.zeros((1, 3)), np.array([[0.05, 0.05, -4.0]]), 512)[0].mean(0)
    assert x_moved[0] > 256 and x_moved[1] < 256  # +x right, +y up in the image
    farther = project_face_square(np.zeros((1, 3)), np.array([[0, 0, -8.0]]), 512)[0]
    assert np.ptp(farther[:, 0]) == pytest.approx(np.ptp(base[:, 0]) / 2, rel=1e-6)


def test_json_round_trip(tmp_path):
    m = motion("driving/qie.mp4", step=4)
    path = m.save_json(tmp_path / "m.json")
    data = json.loads(path.read_text())
    assert data["fps"] == pytest.approx(m.fps) and data["audio_path"] == m.audio_path
    first = data["frames"][0]
    assert set(first["expression"]) == set(ARKIT_NAMES) and len(first["rotation_matrix"]) == 3
    conventions = data["conventions"]
    assert "+yaw turns the face toward the image right" in conventions["pose"]
    assert "assumption" in conventions["arkit_order"]
    assert set(conventions["coefficients"]) == set(ARKIT_NAMES)
    assert "0 at eye_open_L +0.360 (neutral), 1 at +0.080" in conventions["coefficients"]["eyeBlinkLeft"]
    back = FaceMotion.from_json(path)
    np.testing.assert_allclose(back.angles, m.angles)
    np.testing.assert_allclose(back.expression, m.expression, atol=1e-5)
    np.testing.assert_allclose(back.rotation, m.rotation, atol=1e-6)
    assert back.face_found.tolist() == m.face_found.tolist() and back.crop_box.tolist() == m.crop_box.tolist()
    assert back.drive_coeff().shape == (1, len(m), 51)


def test_relative_motion_applies_the_change_on_the_reference_pose():
    drive = motion("driving/ysll.mp4", step=4)
    reference = motion("reference/civitai1.jpg")
    same = relative_motion(drive, drive.subset(slice(0, 1)))
    np.testing.assert_allclose(same.angles, drive.angles, atol=1e-5)
    moved = relative_motion(drive, reference)
    np.testing.assert_allclose(moved.angles[0], reference.angles[0], atol=1e-5)
    # The rotation between frames is the driving clip's own.
    rel_drive = euler_to_matrix(drive.angles[:1].astype(np.float64))[0].T @ euler_to_matrix(drive.angles[-1:].astype(np.float64))[0]
    rel_moved = euler_to_matrix(moved.angles[:1].astype(np.float64))[0].T @ euler_to_matrix(moved.angles[-1:].astype(np.float64))[0]
    np.testing.assert_allclose(rel_moved, rel_drive, atol=1e-5)


def test_condition_images_for_drive_and_reference():
    drive = motion("driving/tbh.mp4", step=8)
    reference = motion("reference/civitai1.jpg")
    cond, ref = condition_images(drive, reference, translation_ratio=0.5)
    assert cond.shape == (3, len(drive), 512, 512) and ref.shape == (3, 1, 512, 512)
    assert set(torch.unique(cond).tolist()) == {-1.0, 1.0}
    expected = render_pose_condition(drive.angles, drive.translation, reference.translation[0], 512, 0.5)
    assert torch.equal(cond, expected)


def test_face_part_crops_for_mediapipe_landmarks():
    m = motion("driving/qie.mp4", step=8)
    crops = face_part_crops(clip("driving/qie.mp4").frames[::8], m.landmarks)
    assert crops.shape == (len(m), 3, 256, 256, 3) and crops.dtype == np.uint8
    assert crops.std() > 10  # real picture content, not black


def test_cli_writes_motion_json_and_preview(tmp_path, capsys):
    out, preview = tmp_path / "motion.json", tmp_path / "preview.mp4"
    rc = cli(["motion", "--input", str(media_path("driving/tbh.mp4")), "--out", str(out), "--preview", str(preview),
              "--max-frames", "8", "--smoothing", "0.3"])
    assert rc == 0 and preview.stat().st_size > 0
    data = json.loads(out.read_text())
    assert len(data["frames"]) == 8 and data["fps"] == pytest.approx(15.0) and data["audio_path"].endswith("tbh.mp4")
    assert data["frames_without_face"] == 0 and len(data["frames"][0]["yaw_pitch_roll_degrees"]) == 3
    assert "8 frame(s) at 15 fps" in capsys.readouterr().out


def test_cli_on_an_image_and_on_a_broken_file(tmp_path, capsys):
    out = tmp_path / "ref.json"
    assert cli(["motion", "--input", str(media_path("reference/zzj.jpg")), "--out", str(out), "--no-landmarks"]) == 0
    assert "landmarks" not in json.loads(out.read_text())["frames"][0]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 100)
    assert cli(["motion", "--input", str(broken), "--out", str(tmp_path / "x.json")]) == 1
    assert "broken.mp4" in capsys.readouterr().err
