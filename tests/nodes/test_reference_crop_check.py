"""HelloMeme Reference warns when the image it is fed is not the face crop the reference pose was measured in
(the mistake of the old shipped workflow: the whole portrait centre-cropped). Apply HelloMeme repeating the
warning is tested in test_expression_mode.py (it needs a real reference pass)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.face.media_cache import clip
from tests.nodes._comfy import comfy_root

PORTRAITS = ["chillout.jpg", "civitai1.jpg", "majicmix2.jpg", "show1.jpg", "toon.png", "zzj.jpg"]


@pytest.fixture(scope="module")
def glue():
    comfy_root()
    from hellomeme_core.face.analyzer import load_face_analyzer
    from nodes.comfy_glue import face_motion, reference_pass

    return load_face_analyzer("mediapipe"), face_motion, reference_pass


def _wide_portrait(name: str) -> torch.Tensor:
    """The shared portraits are already official crops; set each in a wider grey picture (face off-centre), as
    a photo an artist uploads would be, so the official crop and a centre crop differ."""
    face = torch.from_numpy(clip(f"reference/{name}").frames.astype(np.float32) / 255.0)
    face = torch.nn.functional.interpolate(face.permute(0, 3, 1, 2), size=(400, 400), mode="area").permute(0, 2, 3, 1)
    canvas = torch.full((1, 900, 1200, 3), 0.5)
    canvas[:, 120:520, 150:550] = face
    return canvas


def _centre_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    """What ImageScale (crop: center) made of the portrait: the central square scaled to ``size``."""
    _, height, width, _ = image.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = image[:, top:top + side, left:left + side].permute(0, 3, 1, 2)
    return torch.nn.functional.interpolate(square, size=(size, size), mode="bicubic", align_corners=False).permute(0, 2, 3, 1).clamp(0, 1)


@pytest.mark.parametrize("name", PORTRAITS)
def test_face_crop_passes_and_centre_crop_warns(glue, name):
    analyzer, face_motion, reference_pass = glue
    portrait = _wide_portrait(name)
    motion, _, _, crop = face_motion.extract(analyzer, portrait, "error", 0.0, 25.0, None, -1, 512)
    assert reference_pass.reference_crop_mismatch(crop, motion) is None
    # The same crop made at another generation size and scaled back still passes (resampling is not a mismatch).
    _, _, _, crop_768 = face_motion.extract(analyzer, portrait, "error", 0.0, 25.0, None, -1, 768)
    assert reference_pass.reference_crop_mismatch(crop_768, motion) is None
    warning = reference_pass.reference_crop_mismatch(_centre_crop(portrait, 512), motion)
    assert warning is not None and "face_crop output of Extract Face Motion" in warning


def test_thresholds_leave_a_margin(glue):
    """Measured: the crop against itself (resampled) and against the centre crop, over all portraits."""
    analyzer, face_motion, reference_pass = glue
    same, other = [], []
    for name in PORTRAITS:
        portrait = _wide_portrait(name)
        motion, _, _, _ = face_motion.extract(analyzer, portrait, "error", 0.0, 25.0, None, -1, 512)
        thumb = motion.extras["face_crop_thumbnail"]
        _, _, _, crop_768 = face_motion.extract(analyzer, portrait, "error", 0.0, 25.0, None, -1, 768)
        same.append(float((face_motion.crop_thumbnail(crop_768[0]) - thumb).abs().mean()))
        other.append(float((face_motion.crop_thumbnail(_centre_crop(portrait, 512)[0]) - thumb).abs().mean()))
    print(f"thumbnail difference: same crop max {max(same):.4f}, centre crop min {min(other):.4f}")
    assert max(same) < reference_pass.CROP_MISMATCH / 3 < reference_pass.CROP_MISMATCH < min(other)
