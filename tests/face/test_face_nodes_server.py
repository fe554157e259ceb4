"""The face nodes inside a real ComfyUI server: a portrait through Load Image -> Load Face Analyzer ->
Extract Face Motion -> Render Pose Condition -> Save Image."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.face.media_cache import media_path

pytestmark = pytest.mark.slow


def test_face_workflow_runs_in_comfyui(comfy_server):
    shutil.copy(media_path("reference/zzj.jpg"), comfy_server.input_dir / "hm_face_test.jpg")
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "hm_face_test.jpg"}},
        "2": {"class_type": "HelloMemeLoadFaceAnalyzer", "inputs": {"backend": "mediapipe", "device": "auto", "pd_fgc": False}},
        "3": {"class_type": "HelloMemeExtractFaceMotion", "inputs": {
            "face_analyzer": ["2", 0], "images": ["1", 0], "no_face_policy": "hold", "smoothing": 0.0, "fps": 25.0}},
        "4": {"class_type": "HelloMemeRenderPoseCondition", "inputs": {
            "face_motion": ["3", 0], "translation_ratio": 0.0, "relative": False, "size": 512}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "hm_pose_condition"}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["3", 1], "filename_prefix": "hm_face_preview"}},
    }
    history = comfy_server.run_prompt(prompt, timeout=300)
    saved = comfy_server.node_output(history, "5")["images"]
    assert len(saved) == 1
    from PIL import Image

    condition = np.asarray(Image.open(comfy_server.output_dir / saved[0]["filename"]))
    assert condition.shape == (512, 512, 3) and set(np.unique(condition)) <= {0, 255}
    assert (condition > 0).any()
    preview = comfy_server.node_output(history, "6")["images"]
    assert len(preview) == 1
