"""Extract Body Motion and Render Skeleton Condition called in-process with ComfyUI's own modules (CPU)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hellomeme_core.errors import NoPersonError
from tests.face.media_cache import clip
from tests.nodes._comfy import comfy_root


@pytest.fixture(scope="module")
def body_nodes():
    comfy_root()
    import nodes.body as body

    return body


def _images(relative: str, count: int | None = None) -> torch.Tensor:
    return torch.from_numpy(clip(relative).frames[:count].astype(np.float32) / 255.0)


def test_nodes_are_registered_with_tooltips(body_nodes):
    assert {cls.GET_SCHEMA().node_id for cls in body_nodes.NODES} == {"HelloMemeExtractBodyMotion",
                                                                     "HelloMemeRenderSkeletonCondition"}
    for cls in body_nodes.NODES:
        for group in cls.INPUT_TYPES().values():
            for name, (_, options) in group.items():
                assert options.get("tooltip"), f"{cls.__name__}.{name} has no tooltip"
        assert len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES)
    assert body_nodes.ExtractBodyMotion.RETURN_TYPES[0] == "BODY_MOTION"


@pytest.fixture(scope="module")
def extracted(body_nodes):
    images = _images("driving/qie.mp4", 6)
    images[2] = 0.0  # a frame with no person
    return images, body_nodes.ExtractBodyMotion.execute(images, True, 0.3, "hold", 0.5, 15.0).result


def test_extract_fills_a_frame_without_person_and_marks_it(extracted):
    images, (motion, preview, missing) = extracted
    assert missing == 1 and len(motion) == 6 and motion.body_found.tolist() == [True, True, False, True, True, True]
    assert preview.shape == images.shape and preview.dtype == torch.float32
    assert torch.equal(preview[2, 0, 0], torch.tensor([1.0, 0.0, 0.0]))  # red border on the frame without a person
    assert preview[0, 0, 0].tolist() != [1.0, 0.0, 0.0]
    assert (preview[0] - images[0]).abs().amax(-1).gt(0.2).float().mean() > 0.002  # the skeleton is drawn on


def test_render_draws_the_skeleton_with_face_dots(body_nodes, extracted):
    images, (motion, _, _) = extracted
    import nodes.face as face

    (analyzer,) = face.LoadFaceAnalyzer.execute("mediapipe", "cpu", False).result
    face_motion = face.ExtractFaceMotion.execute(analyzer, images, "hold", 0.0, 15.0).result[0]
    (plain,) = body_nodes.RenderSkeletonCondition.execute(motion, 512, 384, True, False).result
    (with_face,) = body_nodes.RenderSkeletonCondition.execute(motion, 512, 384, True, True, face_motion).result
    assert plain.shape == (6, 384, 512, 3)
    white = (with_face == 1.0).all(-1)
    assert not (plain == 1.0).all(-1).any() and white[0].sum() > 400  # 70 dots of radius 2 (384 px), some overlapping
    # The dots sit on the face: inside the face box of the landmarks, mapped to the canvas like the body.
    scale = 384 / 512
    x0, y0, x1, y1 = face_motion.face_boxes[0] * scale + np.array([64, 0, 64, 0])  # the 512 square centred in 512 x 384
    ys, xs = np.nonzero(white[0].numpy())
    assert x0 - 6 <= xs.min() and xs.max() <= x1 + 6 and y0 - 6 <= ys.min() and ys.max() <= y1 + 6
    # The face frame without a face (row 2) gets no dots; the body there is the held one.
    assert not white[2].any()


def test_render_retargets_to_a_reference(body_nodes, extracted):
    _, (motion, _, _) = extracted
    reference = body_nodes.ExtractBodyMotion.execute(_images("reference/show1.jpg"), False, 0.0, "error", 0.5, 8.0).result[0]
    (plain,) = body_nodes.RenderSkeletonCondition.execute(motion, 512, 512, True, False).result
    (retargeted,) = body_nodes.RenderSkeletonCondition.execute(motion, 512, 512, True, False, None, reference).result
    assert retargeted.shape == plain.shape and not torch.equal(plain, retargeted)


def test_errors_name_the_node_and_bad_sizes_are_refused(body_nodes):
    with pytest.raises(NoPersonError, match=r"^Extract Body Motion: .*no person found in any of the 2 frames"):
        body_nodes.ExtractBodyMotion.execute(torch.zeros(2, 64, 64, 3), True, 0.0, "hold", 0.5, 8.0)
    validate = body_nodes.RenderSkeletonCondition.validate_inputs
    assert validate(width=512, height=768) is True
    assert "width 500 must be a multiple of 8" in validate(width=500, height=512)
    assert "height 32" in validate(width=512, height=32)
