"""The three face nodes called in-process with ComfyUI's own modules (CPU)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.face.media_cache import clip
from tests.nodes._comfy import comfy_root


@pytest.fixture(scope="module")
def face_nodes():
    comfy_root()
    import nodes.face as face

    return face


def _images(relative: str, count: int | None = None, step: int = 1) -> torch.Tensor:
    frames = clip(relative).frames[::step][:count]
    return torch.from_numpy(frames.astype(np.float32) / 255.0)


def test_nodes_are_registered_with_tooltips(face_nodes):
    names = {cls.GET_SCHEMA().display_name for cls in face_nodes.NODES}
    assert names == {"Load Face Analyzer", "Extract Face Motion", "Render Pose Condition"}
    for cls in face_nodes.NODES:
        spec = cls.INPUT_TYPES()
        for group in spec.values():
            for name, (_, options) in group.items():
                assert options.get("tooltip"), f"{cls.__name__}.{name} has no tooltip"
        assert len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES)


def test_extract_and_render_on_a_driving_clip(face_nodes):
    (analyzer,) = face_nodes.LoadFaceAnalyzer.execute("mediapipe", "auto").result
    images = _images("driving/tbh.mp4", count=6, step=2)
    images[2] = 0.0  # a frame with no face
    motion, preview, missing, crop = face_nodes.ExtractFaceMotion.execute(analyzer, images, "hold", 0.3, 7.5).result
    assert crop.shape == (6, 512, 512, 3)
    assert missing == 1 and len(motion) == 6 and motion.face_found.tolist() == [True, True, False, True, True, True]
    assert preview.shape == images.shape and preview.dtype == torch.float32
    assert not torch.equal(preview, images)  # overlays drawn
    (ref_analyzer,) = face_nodes.LoadFaceAnalyzer.execute("mediapipe", "cpu").result
    reference, _, _, _ = face_nodes.ExtractFaceMotion.execute(ref_analyzer, _images("reference/civitai1.jpg"), "hold", 0.0, 25.0).result
    condition, ref_condition = face_nodes.RenderPoseCondition.execute(motion, 0.5, True, reference).result
    assert condition.shape == (6, 512, 512, 3) and ref_condition.shape == (1, 512, 512, 3)
    assert set(torch.unique(condition).tolist()) == {0.0, 1.0}
    plain, _ = face_nodes.RenderPoseCondition.execute(motion, 0.0, False).result
    assert plain.shape == condition.shape


def test_extract_reports_dropped_frames(face_nodes, caplog):
    (analyzer,) = face_nodes.LoadFaceAnalyzer.execute("mediapipe", "auto").result
    images = _images("driving/tbh.mp4", count=6, step=2)
    images[[1, 4]] = 0.0  # two frames with no face
    with caplog.at_level("WARNING", logger="hellomeme"):
        motion, preview, missing, crop = face_nodes.ExtractFaceMotion.execute(analyzer, images, "drop", 0.0, 7.5).result
    assert missing == 2 and len(motion) == 4 and motion.frame_indices.tolist() == [0, 2, 3, 5]
    assert preview.shape[0] == 4 and crop.shape[0] == 4
    assert "2 of 6 frames had no face (frames 1, 4; dropped from the motion)" in caplog.text


def test_extract_error_policy_and_relative_without_reference(face_nodes):
    from hellomeme_core.errors import HelloMemeError, NoFaceError

    (analyzer,) = face_nodes.LoadFaceAnalyzer.execute("mediapipe", "auto").result
    blank = torch.zeros(2, 128, 128, 3)
    with pytest.raises(NoFaceError, match="no face"):
        face_nodes.ExtractFaceMotion.execute(analyzer, blank, "hold", 0.0, 25.0)
    motion, _, _, _ = face_nodes.ExtractFaceMotion.execute(analyzer, _images("reference/zzj.jpg"), "error", 0.0, 25.0).result
    with pytest.raises(HelloMemeError, match="reference_motion"):
        face_nodes.RenderPoseCondition.execute(motion, 0.0, True, None)


def test_official_backend_without_files_says_where_they_go(face_nodes):
    from hellomeme_core.errors import MissingModelFileError

    with pytest.raises(MissingModelFileError, match="models/hellomeme/hello_group_facemodel"):
        face_nodes.LoadFaceAnalyzer.execute("official", "cpu")


class _FakeClipVision:
    """Stands in for ComfyUI's CLIP vision wrapper: records the images, returns (N, 8) embeddings."""

    def __init__(self):
        self.seen = None

    def encode_image(self, image, crop=True):
        self.seen = image
        return {"image_embeds": image.mean(dim=(1, 2)).repeat(1, 3)[:, :8]}


def test_face_parts_through_clip_vision(face_nodes):
    (analyzer,) = face_nodes.LoadFaceAnalyzer.execute("mediapipe", "auto").result
    fake = _FakeClipVision()
    motion, _, _, _ = face_nodes.ExtractFaceMotion.execute(analyzer, _images("driving/qie.mp4", count=3), "hold", 0.0, 15.0, fake).result
    assert fake.seen.shape == (9, 256, 256, 3) and 0.0 <= float(fake.seen.min()) and float(fake.seen.max()) <= 1.0
    assert motion.face_parts.shape == (3, 3, 8)
