"""Node "HelloMeme Paste Back" called in-process with ComfyUI's own modules (CPU), fed by the real face nodes."""
from __future__ import annotations

from functools import cache

import cv2
import numpy as np
import pytest
import torch

from tests.face.media_cache import clip
from tests.nodes._comfy import comfy_root

PAD = (120, 80, 200, 100)  # top, bottom, left, right: the portrait inside a larger picture


@pytest.fixture(scope="module")
def node():
    comfy_root()
    import nodes.paste_back as paste_back

    return paste_back.HelloMemePasteBack


@cache
def reference():
    """(full picture IMAGE, its FACE_MOTION, the official 512 face crop IMAGE): what Load Image, Extract Face Motion
    and its face_crop output give (made with the core here, so this test does not follow the face nodes' options)."""
    from hellomeme_core.face.analyzer import extract_face_motion
    from hellomeme_core.face.crop import crop_frames
    from tests.face.media_cache import analyzer

    image = cv2.copyMakeBorder(clip("reference/majicmix2.jpg").frames[0], *PAD, cv2.BORDER_REPLICATE)
    motion = extract_face_motion(analyzer(), image[None])
    crop = crop_frames(image[None], motion.crop_box)
    as_image = lambda a: torch.from_numpy(a.astype(np.float32) / 255.0)  # noqa: E731
    return as_image(image[None]), motion, as_image(crop)


def test_schema_names_and_tooltips(node):
    import nodes

    schema = node.GET_SCHEMA()
    assert schema.node_id == "HelloMemePasteBack"
    assert (schema.display_name, schema.category) == ("HelloMeme Paste Back", "HelloMeme")
    assert node in nodes.node_classes()
    spec = node.INPUT_TYPES()
    assert list(spec["required"]) == ["images", "reference_image", "reference_motion", "feather", "color_match"]
    assert spec["required"]["reference_motion"][0] == "FACE_MOTION"
    assert spec["required"]["feather"][1]["default"] == pytest.approx(0.08)
    assert spec["required"]["color_match"][1]["default"] is True
    # Optional so graphs saved before it existed load with the default (the picture's own size).
    assert list(spec["optional"]) == ["max_side"] and spec["optional"]["max_side"][1]["default"] == 0
    for name, (_, options) in {**spec["required"], **spec["optional"]}.items():
        assert options.get("tooltip"), f"{name} has no tooltip"
    assert list(node.RETURN_TYPES) == ["IMAGE"] and node.OUTPUT_TOOLTIPS[0]


def test_generated_frames_come_back_at_the_picture_size(node):
    import comfy.utils

    picture, motion, crop = reference()
    height, width = picture.shape[1:3]
    frames = torch.cat([crop, crop.flip(2)])  # two frames at 512, one at 768 (another generation size)
    at_768 = torch.nn.functional.interpolate(crop.permute(0, 3, 1, 2), size=(768, 768), mode="bicubic")
    at_768 = at_768.permute(0, 2, 3, 1).clamp(0, 1)
    calls = []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: calls.append((value, total)))
    try:
        (out,) = node.execute(frames, picture, motion, 0.08, True).result
        (big,) = node.execute(at_768, picture, motion, 0.08, True).result
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
    assert out.shape == (2, height, width, 3) and out.dtype == torch.float32
    assert big.shape == (1, height, width, 3)
    assert (1, 2) in calls and (2, 2) in calls  # one step per frame
    # The untouched crop reproduces the picture: outside the box exactly, everywhere within 35 dB.
    x0, y0, x1, y1 = (int(v) for v in motion.crop_box)
    outside = torch.ones(height, width, dtype=torch.bool)
    outside[y0:y1, x0:x1] = False
    assert torch.equal(out[0][outside], picture[0][outside])
    mse = float(((out[0] - picture[0]) ** 2).mean())
    assert 10 * np.log10(1 / mse) > 35.0
    assert not torch.equal(out[0], out[1])  # the mirrored frame lands in the box
    mse = float(((big[0] - picture[0]) ** 2).mean())
    assert 10 * np.log10(1 / mse) > 35.0


def test_size_mismatch_and_other_bad_inputs_say_how_to_fix_them(node):
    from hellomeme_core.errors import HelloMemeError, ShapeMismatchError

    picture, motion, crop = reference()
    height, width = picture.shape[1:3]
    half = torch.nn.functional.interpolate(picture.permute(0, 3, 1, 2), scale_factor=0.5).permute(0, 2, 3, 1)
    with pytest.raises(HelloMemeError) as caught:
        node.execute(crop, half, motion, 0.08, True)
    message = str(caught.value)
    assert message.startswith("HelloMeme Paste Back: ")
    assert f"'reference_image' is {width // 2}x{height // 2}" in message
    assert f"measured on a {width}x{height} picture" in message
    assert "must come from Extract Face Motion on this same picture, unscaled" in message
    with pytest.raises(ShapeMismatchError, match=r"'images' are 512x400 \(width x height\), not square"):
        node.execute(crop[:, :400], picture, motion, 0.08, True)
    with pytest.raises(HelloMemeError, match="'reference_image' holds 2 pictures"):
        node.execute(crop, picture.repeat(2, 1, 1, 1), motion, 0.08, True)


def test_cancel_stops_between_frames(node):
    import comfy.model_management

    picture, motion, crop = reference()
    comfy.model_management.interrupt_current_processing(True)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            node.execute(crop.repeat(3, 1, 1, 1), picture, motion, 0.08, True)
    finally:
        comfy.model_management.interrupt_current_processing(False)


def test_max_side_pastes_into_the_picture_scaled_down(node):
    picture, motion, crop = reference()
    height, width = picture.shape[1:3]  # 812 x 712 (the portrait with its border)
    (full,) = node.execute(crop, picture, motion, 0.08, True, 0).result
    (small,) = node.execute(crop, picture, motion, 0.08, True, 640).result
    scale = 640 / max(width, height)
    assert small.shape == (1, round(height * scale), round(width * scale), 3)
    # The full-size paste scaled down (the box scaled with it), within the 35 dB the full-size round trip keeps
    # (measured 39.2 dB; 34.1 at max_side 416, where the 512 crop itself is shrunk by a third).
    expected = cv2.resize(full[0].numpy(), (small.shape[2], small.shape[1]), interpolation=cv2.INTER_AREA)
    mse = float(((small[0].numpy() - expected) ** 2).mean())
    assert 10 * np.log10(1 / mse) > 35.0
    # Left of the box (and its feather) it is exactly the picture scaled down.
    left = int(motion.crop_box[0] * scale) - 2
    scaled_picture = cv2.resize(picture[0].numpy(), (small.shape[2], small.shape[1]), interpolation=cv2.INTER_AREA)
    assert left > 0 and np.array_equal(small[0, :, :left].numpy(), scaled_picture[:, :left])
    (tiny,) = node.execute(crop, picture, motion, 0.08, True, 256).result
    assert max(tiny.shape[1:3]) == 256
    # Never enlarged: a max_side above the picture's long side changes nothing.
    (same,) = node.execute(crop, picture, motion, 0.08, True, 4096).result
    assert torch.equal(same, full)


def test_output_that_cannot_fit_in_memory_is_refused_with_a_max_side_that_fits(node, monkeypatch):
    import comfy.model_management

    from hellomeme_core.errors import HelloMemeError

    picture, motion, crop = reference()
    height, width = picture.shape[1:3]
    free = 3 * height * width * 3 * 4  # room for three full pictures
    monkeypatch.setattr(comfy.model_management, "get_free_memory", lambda *args, **kwargs: free)
    frames = crop.expand(4, -1, -1, -1)  # four frames: one too many
    with pytest.raises(HelloMemeError) as caught:
        node.execute(frames, picture, motion, 0.08, True, 0)
    message = str(caught.value)
    assert f"4 full pictures at {width}x{height} need" in message
    side = int(message.split("set max_side to ")[1].split()[0])
    assert side % 64 == 0 and 0 < side < max(width, height)
    (out,) = node.execute(frames, picture, motion, 0.08, True, side).result  # the suggested size fits
    assert out.shape[0] == 4 and max(out.shape[1:3]) <= side
    assert out.numel() * 4 <= free
