"""Tier 3: the shared motion-preview workflow queued, exactly as shipped, through the HTTP API of a real
ComfyUI server, on a real driving clip; the two videos it saves are decoded and checked."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hellomeme_core.driving_video import load_driving_video
from tests.e2e.conftest import CLIP_SIZE, cached_nodes, drop_execution_cache
from tests.e2e.media import StreamInfo, probe, read_frames
from tests.e2e.workflow_graph import WORKFLOWS_DIR, WorkflowPair, upstream

pytestmark = pytest.mark.slow

MOTION = WorkflowPair("hellomeme_motion_preview", WORKFLOWS_DIR / "hellomeme_motion_preview.json",
                      WORKFLOWS_DIR / "hellomeme_motion_preview_api.json")
MEME = WorkflowPair("hellomeme_video", WORKFLOWS_DIR / "hellomeme_video.json", WORKFLOWS_DIR / "hellomeme_video_api.json")
MEME_CONDITION, MEME_EMPTY_LATENT = "11", "17"  # Render Pose Condition, Empty Latent (one per frame)
POSE_SAVE, LANDMARK_SAVE = "7", "9"  # SaveVideo node ids in the workflow
CONDITION_SIZE = 512
# RGB of the four edges of the official pose square (green, blue, red, magenta), on black.
EDGE_COLOURS = np.array([(0, 255, 0), (0, 0, 255), (255, 0, 0), (255, 0, 255)], dtype=np.int32)


@dataclass
class MotionRun:
    history: dict
    driving: np.ndarray  # the driving frames Load Driving Video keeps (the official 8 fps)
    driving_info: StreamInfo
    pose: np.ndarray
    pose_info: StreamInfo
    landmarks: np.ndarray
    landmarks_info: StreamInfo


def saved_video(server, history: dict, node_id: str) -> Path:
    """The file a SaveVideo node wrote, from its UI output in the prompt's history."""
    output = server.node_output(history, node_id)
    files = output.get("images") or output.get("videos") or []
    assert len(files) == 1, f"SaveVideo node {node_id} reported {output!r}"
    entry = files[0]
    assert entry["type"] == "output"
    path = server.output_dir / entry.get("subfolder", "") / entry["filename"]
    assert path.is_file(), f"{path} reported by node {node_id} does not exist"
    return path


@pytest.fixture(scope="module")
def motion_run(comfy_server, staged_inputs) -> MotionRun:
    drop_execution_cache(comfy_server)
    history = comfy_server.run_prompt(MOTION.api(), timeout=300)
    assert cached_nodes(history) == []
    pose_path = saved_video(comfy_server, history, POSE_SAVE)
    landmark_path = saved_video(comfy_server, history, LANDMARK_SAVE)
    driving = staged_inputs["driving"]
    return MotionRun(history, load_driving_video(driving).frames, probe(driving), read_frames(pose_path),
                     probe(pose_path), read_frames(landmark_path), probe(landmark_path))


def test_both_videos_have_every_driving_frame_at_the_official_rate(motion_run: MotionRun):
    frames = len(motion_run.driving)
    assert frames == pytest.approx(motion_run.driving_info.duration_s * 8, abs=2)  # 15 fps clip -> 8 fps
    assert len(motion_run.pose) == frames
    assert len(motion_run.landmarks) == frames
    for info in (motion_run.pose_info, motion_run.landmarks_info):
        assert info.fps == pytest.approx(8.0, rel=0.01)
        assert info.video_codec == "h264"


def test_frame_sizes(motion_run: MotionRun):
    width, height = CLIP_SIZE
    assert motion_run.driving.shape[1:] == (height, width, 3)
    assert motion_run.pose.shape[1:] == (CONDITION_SIZE, CONDITION_SIZE, 3)  # the condition is always 512 x 512
    assert motion_run.landmarks.shape[1:] == (height, width, 3)  # the preview keeps the driving frames' size


def test_driving_audio_is_carried_into_both_videos(motion_run: MotionRun):
    assert motion_run.driving_info.audio_codec is not None
    for info in (motion_run.pose_info, motion_run.landmarks_info):
        assert info.audio_codec == "aac", info
        assert info.duration_s == pytest.approx(len(motion_run.driving) / 8.0, abs=0.15)


def test_pose_condition_is_four_coloured_lines_on_black(motion_run: MotionRun):
    pose = motion_run.pose.astype(np.int32)
    brightest = pose.max(axis=-1)
    black = brightest < 40
    lit = brightest > 160
    # Mostly background: the square is four 15-pixel lines on a 512 x 512 canvas.
    assert black.mean() > 0.8, f"only {black.mean():.2%} of the condition pixels are black"
    assert lit.mean() > 0.01, f"only {lit.mean():.2%} of the condition pixels are lit"
    # Inside the lines (3 pixels away from their borders, where H.264's half-resolution chroma blurs colours)
    # the -1/+1 pattern holds: every channel near 0 or 255, no grey, no other hue.
    core = lit.copy()
    for axis in (1, 2):
        core &= np.roll(lit, 3, axis) & np.roll(lit, -3, axis)
    pixels = pose[core]
    distance = np.abs(pixels[:, None, :] - EDGE_COLOURS[None]).max(axis=-1)  # (N, 4)
    nearest = distance.argmin(axis=1)
    assert (distance.min(axis=1) < 70).mean() > 0.99
    # All four edges are visible in every frame.
    frame_of_pixel = np.nonzero(core)[0]
    for frame in range(len(pose)):
        counts = np.bincount(nearest[frame_of_pixel == frame], minlength=4)
        assert (counts > 200).all(), f"frame {frame}: edge pixel counts {counts.tolist()}"


def test_pose_condition_follows_the_head(motion_run: MotionRun):
    """The driving head turns during the clip, so the square changes shape between frames."""
    lit = motion_run.pose.max(axis=-1) > 160
    changed = (lit[0] != lit).reshape(len(lit), -1).mean(axis=1)
    assert changed.max() > 0.002, f"the condition barely changes: {changed.max():.4%} of pixels at most"


def _face_box(frame: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the face mediapipe's own face detector finds (independent of our analyzer)."""
    import mediapipe as mp

    with mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as detector:
        found = detector.process(np.ascontiguousarray(frame))
    assert found.detections, "mediapipe finds no face in the driving clip"
    box = found.detections[0].location_data.relative_bounding_box
    height, width = frame.shape[:2]
    return (int(box.xmin * width), int(box.ymin * height),
            int((box.xmin + box.width) * width), int((box.ymin + box.height) * height))


def test_landmark_preview_differs_from_the_driving_frames_only_near_the_face(motion_run: MotionRun):
    driving = motion_run.driving.astype(np.int16)
    preview = motion_run.landmarks.astype(np.int16)
    difference = np.abs(preview - driving).max(axis=-1)  # (F, H, W)
    x0, y0, x1, y1 = _face_box(motion_run.driving[0])
    # The head axes reach 0.6 face widths out of the landmarks' centre, a little past the face box.
    margin = int(0.3 * (x1 - x0))
    near_face = np.zeros(difference.shape[1:], dtype=bool)
    near_face[max(0, y0 - margin):y1 + margin, max(0, x0 - margin):x1 + margin] = True
    drawn = difference > 60
    inside = drawn[:, near_face].sum()
    outside = drawn[:, ~near_face].sum()
    assert inside > 200 * len(difference), f"only {inside} drawn pixels near the face over {len(difference)} frames"
    assert outside <= 0.01 * inside, f"{outside} pixels changed away from the face ({inside} near it)"
    # Away from the face only compression noise separates the preview from its input.
    assert difference[:, ~near_face].mean() < 4.0


def _pose_square_centre(image: np.ndarray) -> np.ndarray:
    """(x, y) centre of the lit pixels of a condition image."""
    ys, xs = np.nonzero(image.max(axis=-1) > 160)
    return np.array([xs.mean(), ys.mean()])


def test_meme_workflow_motion_half_runs_and_sizes_the_latent_batch(comfy_server, staged_inputs):
    """The model-free half of hellomeme_video (reference portrait and driving motion, pose condition at the
    reference head, the empty latent batch) queued as shipped, with save nodes on its two ends."""
    from PIL import Image
    from safetensors.torch import load_file

    prompt = upstream(MEME.api(), [MEME_CONDITION, MEME_EMPTY_LATENT])
    assert "1" not in prompt  # no checkpoint needed for this half
    prompt["90"] = {"class_type": "SaveImage", "inputs": {"images": [MEME_CONDITION, 0], "filename_prefix": "e2e/condition"}}
    prompt["91"] = {"class_type": "SaveImage", "inputs": {"images": [MEME_CONDITION, 1], "filename_prefix": "e2e/reference_condition"}}
    prompt["92"] = {"class_type": "SaveLatent", "inputs": {"samples": [MEME_EMPTY_LATENT, 0], "filename_prefix": "e2e/latent"}}
    history = comfy_server.run_prompt(prompt, timeout=300)

    def files(node_id: str, key: str) -> list[Path]:
        return [comfy_server.output_dir / f["subfolder"] / f["filename"] for f in comfy_server.node_output(history, node_id)[key]]

    conditions = [np.asarray(Image.open(p).convert("RGB")) for p in files("90", "images")]
    (reference_file,) = files("91", "images")
    reference = np.asarray(Image.open(reference_file).convert("RGB"))
    frames = len(load_driving_video(staged_inputs["driving"]).frames)
    assert len(conditions) == frames
    assert conditions[0].shape == reference.shape == (CONDITION_SIZE, CONDITION_SIZE, 3)
    # The first driving square sits at the reference head (later ones move by half the driving head's movement).
    assert np.abs(_pose_square_centre(conditions[0]) - _pose_square_centre(reference)).max() < 40
    (latent_file,) = files("92", "latents")
    latent = load_file(str(latent_file))["latent_tensor"]
    assert tuple(latent.shape) == (frames, 4, CONDITION_SIZE // 8, CONDITION_SIZE // 8)  # one latent per frame
