"""Frames without a face: hold / interpolate / drop / error, counted and never losing the batch."""
from __future__ import annotations

import json

import numpy as np
import pytest

from hellomeme_core.errors import NoFaceError
from hellomeme_core.face.analyzer import extract_face_motion
from hellomeme_core.face.no_face import apply_fill, fill_plan
from hellomeme_core.face.types import FaceMotion
from tests.face.media_cache import analyzer, clip

FOUND = np.array([False, True, True, False, False, True, False])
VALUES = np.array([0.0, 10.0, 20.0, 0.0, 0.0, 50.0, 0.0])[:, None]


def _filled(policy):
    rows, pairs, weight = fill_plan(FOUND, policy)
    return rows, apply_fill(VALUES, pairs, weight)[:, 0]


def test_hold_repeats_the_last_good_frame_and_the_first_for_leading_gaps():
    rows, values = _filled("hold")
    assert rows.tolist() == list(range(7))
    assert values.tolist() == [10, 10, 20, 20, 20, 50, 50]


def test_interpolate_blends_between_good_frames():
    rows, values = _filled("interpolate")
    np.testing.assert_allclose(values, [10, 10, 20, 30, 40, 50, 50])


def test_drop_keeps_only_frames_with_a_face():
    rows, values = _filled("drop")
    assert rows.tolist() == [1, 2, 5] and values.tolist() == [10, 20, 50]


def test_error_names_the_frames():
    with pytest.raises(NoFaceError, match=r"no face in 4 of 7 frames of the video \(frames 0, 3, 4, 6\)\. "
                                          r"Choose the hold, interpolate or drop no-face policy"):
        fill_plan(FOUND, "error")


def test_no_face_anywhere_is_a_clear_error_whatever_the_policy():
    for policy in ("hold", "interpolate", "drop"):
        with pytest.raises(NoFaceError, match="no face found in any of the 3 frames of the video. Use a video where"):
            fill_plan(np.zeros(3, bool), policy)


def test_unknown_policy_is_rejected():
    with pytest.raises(NoFaceError, match="not one of"):
        fill_plan(FOUND, "skip")


@pytest.fixture(scope="module")
def clip_with_blank_frames():
    frames = clip("driving/qie.mp4").frames[:8].copy()
    frames[[0, 3, 4]] = 0  # black frames: no face
    return frames


def test_video_with_blank_frames_reports_and_holds(clip_with_blank_frames):
    m = extract_face_motion(analyzer(), clip_with_blank_frames, 15.0, no_face_policy="hold")
    assert len(m) == 8 and m.frames_without_face == 3
    assert m.face_found.tolist() == [False, True, True, False, False, True, True, True]
    np.testing.assert_array_equal(m.angles[3], m.angles[2])
    np.testing.assert_array_equal(m.angles[4], m.angles[2])
    np.testing.assert_array_equal(m.expression[0], m.expression[1])


def test_video_with_blank_frames_drop_and_interpolate(clip_with_blank_frames):
    dropped = extract_face_motion(analyzer(), clip_with_blank_frames, 15.0, no_face_policy="drop")
    assert dropped.frame_indices.tolist() == [1, 2, 5, 6, 7] and dropped.frames_without_face == 3
    inter = extract_face_motion(analyzer(), clip_with_blank_frames, 15.0, no_face_policy="interpolate")
    np.testing.assert_allclose(inter.translation[3], inter.translation[2] + (inter.translation[5] - inter.translation[2]) / 3,
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(NoFaceError, match="frames 0, 3, 4"):
        extract_face_motion(analyzer(), clip_with_blank_frames, 15.0, no_face_policy="error")


def test_image_without_a_face_is_worded_for_an_image():
    """A new user's reference portrait without a face was reported as a 'clip' of 1 frame(s)."""
    with pytest.raises(NoFaceError) as info:
        extract_face_motion(analyzer(), np.full((1, 256, 256, 3), 128, np.uint8), source="portrait.png",
                            no_face_policy="error")
    message = str(info.value)
    assert message.startswith("portrait.png: no face found in the image. Use an image where one face is clearly visible")
    assert "other face backend" in message
    assert not any(word in message for word in ("clip", "video", "frame"))


def test_cli_reference_without_a_face_says_image_and_fails(tmp_path, capsys):
    import cv2

    from hellomeme_core.cli.main import main as cli

    image = tmp_path / "grey.png"
    cv2.imwrite(str(image), np.full((256, 256, 3), 128, np.uint8))
    assert cli(["motion", "--input", str(image), "--out", str(tmp_path / "m.json")]) == 1
    assert f"error: {image}: no face found in the image." in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize("policy", ["hold", "interpolate", "drop"])
def test_frames_without_a_face_are_counted_under_every_policy(clip_with_blank_frames, policy, tmp_path):
    m = extract_face_motion(analyzer(), clip_with_blank_frames, 15.0, no_face_policy=policy)
    assert len(m) == (5 if policy == "drop" else 8)
    assert m.frames_without_face == 3 and m.no_face_indices.tolist() == [0, 3, 4]
    assert m.source_frame_count == 8
    data = json.loads(m.save_json(tmp_path / "m.json", include_landmarks=False).read_text())
    assert data["frames_without_face"] == 3 and data["no_face_frames"] == [0, 3, 4] and data["source_frames"] == 8
    back = FaceMotion.from_json(tmp_path / "m.json")
    assert back.frames_without_face == 3 and back.source_frame_count == 8
    # Keeping every row (as relative motion does) keeps the count; a part keeps the gaps inside its span.
    assert m.subset(slice(None)).frames_without_face == 3
    assert m.subset(slice(0, 3)).frames_without_face == (2 if policy == "drop" else 1)  # drop: rows 1, 2, 5


def test_cli_summary_and_json_count_dropped_frames(clip_with_blank_frames, tmp_path, capsys):
    from hellomeme_core.cli.main import main as cli
    from hellomeme_core.media import write_video

    video = write_video(tmp_path / "blank_frames.mp4", clip_with_blank_frames, 15.0)
    out = tmp_path / "drop.json"
    assert cli(["motion", "--input", str(video), "--out", str(out), "--no-face", "drop", "--no-landmarks"]) == 0
    data = json.loads(out.read_text())
    assert len(data["frames"]) == 5 and data["frames_without_face"] == 3 and data["no_face_frames"] == [0, 3, 4]
    assert "5 frame(s) at 15 fps, 3 of 8 source frame(s) without a face (drop: left out of the motion)" in capsys.readouterr().out
