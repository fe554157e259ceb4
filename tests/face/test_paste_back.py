"""Paste Back core (hellomeme_core/face/paste_back.py) on the shared reference portraits.

Two kinds of picture: each portrait as it is (512 or 1024 px; the official crop box covers nearly all of it,
so only its right/bottom sides are seams) and the same portrait inside a larger canvas (edge pixels
replicated outward: the box then lies inside the picture and all four sides are seams).
Run with ``-s`` to see the measured PSNR table.
"""
from __future__ import annotations

import tracemalloc
from functools import cache

import cv2
import numpy as np
import pytest
import torch

from hellomeme_core.errors import HelloMemeError, ShapeMismatchError
from hellomeme_core.face.crop import CROP_SIZE, crop_frames
from hellomeme_core.face.paste_back import PasteBack, fit_to_max_side, paste_back, resize_crop
from hellomeme_core.media import fitted_size
from tests.face.media_cache import analyzer, clip

PORTRAITS = ("chillout.jpg", "civitai1.jpg", "majicmix2.jpg", "show1.jpg", "toon.png", "zzj.jpg")
PAD = (160, 96, 300, 140)  # top, bottom, left, right


@cache
def picture(name: str, padded: bool) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 picture, crop box from the mediapipe analyzer + extract_face_motion)."""
    from hellomeme_core.face.analyzer import extract_face_motion

    image = clip(f"reference/{name}").frames[0]
    if padded:
        image = cv2.copyMakeBorder(image, *PAD, cv2.BORDER_REPLICATE)
    motion = extract_face_motion(analyzer(), image[None])
    assert motion.source_size == (image.shape[1], image.shape[0])
    return image, motion.crop_box


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    error = float(((a.astype(np.float64) - b) ** 2)[mask].mean())
    return float("inf") if error == 0 else 10 * np.log10(1.0 / error)


def regions(paster: PasteBack, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Boolean masks: inside the box with full alpha, the feather (seam) band, outside the box."""
    inside = np.zeros(shape[:2], bool)
    alpha = np.zeros(shape[:2], np.float32)
    inside[paster.y.start:paster.y.stop, paster.x.start:paster.x.stop] = True
    alpha[paster.y.start:paster.y.stop, paster.x.start:paster.x.stop] = paster.alpha[..., 0]
    return {"inner": inside & (alpha >= 1.0), "seam": inside & (alpha < 1.0), "outside": ~inside}


@pytest.mark.parametrize("padded", [False, True], ids=["as-is", "in-canvas"])
@pytest.mark.parametrize("name", PORTRAITS)
def test_untouched_crop_pastes_back_onto_the_picture(name: str, padded: bool) -> None:
    image, box = picture(name, padded)
    original = image.astype(np.float32) / 255.0
    crop = crop_frames(image[None], box)[0].astype(np.float32) / 255.0  # the official 512 crop, unchanged
    paster = PasteBack(original, box, feather=0.08, color_match=True)
    out = paster.frame(crop)
    assert out.shape == original.shape and out.dtype == np.float32
    masks = regions(paster, original.shape)
    figures = {key: psnr(out, original, mask) for key, mask in masks.items() if mask.any()}
    side = box[2] - box[0]
    print(f"\n{name:14s} {'canvas' if padded else 'as-is':6s} {image.shape[1]}x{image.shape[0]} box side {side}: "
          + ", ".join(f"{k} {v:.2f} dB" for k, v in figures.items()))
    # Outside the box the picture is untouched, bit for bit.
    if masks["outside"].any():
        assert np.array_equal(out[masks["outside"]], original[masks["outside"]])
    if padded:
        assert masks["outside"].sum() > 0.3 * masks["outside"].size
    # The seam band blends two near-identical pictures: well above 40 dB on all twelve cases (min 42.1 dB).
    assert figures["seam"] > 40.0
    # Inside the box nothing is lost but what the resampling through the 512 crop must lose: equal to the plain
    # crop -> box resize to within 0.05 dB (colour match does not touch an untouched crop) ...
    plain = resize_crop(crop, box[2] - box[0], box[3] - box[1])[paster.y.crop_slice, paster.x.crop_slice]
    bound = np.zeros_like(original)
    bound[paster.y.start:paster.y.stop, paster.x.start:paster.x.stop] = plain
    assert figures["inner"] >= psnr(bound, original, masks["inner"]) - 0.05
    # ... which is above 40 dB where the box is about the crop's size (the 512 portraits); a box of ~1000 px
    # (show1, the canvases) has been through a 2x smaller crop: 33 dB and more.
    if side <= 1.1 * CROP_SIZE:
        assert figures["inner"] > 40.0
    else:
        assert figures["inner"] > 32.0


def _ring(paster: PasteBack, shape, lo: float, hi: float) -> np.ndarray:
    """Pixels whose distance (in box pixels) to the nearest box side lies in [lo, hi); negative = outside."""
    x0, y0, x1, y1 = paster.box
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]] + 0.5
    distance = np.minimum.reduce([xs - x0, x1 - xs, ys - y0, y1 - ys])
    return (distance >= lo) & (distance < hi)


@pytest.mark.parametrize("shift", ["red+0.08", "exposure*0.85"])
def test_color_match_hides_a_colour_shift_at_the_seam_and_keeps_the_face(shift: str) -> None:
    image, box = picture("civitai1.jpg", True)  # box inside the picture: four seams
    original = image.astype(np.float32) / 255.0
    crop = crop_frames(image[None], box)[0].astype(np.float32) / 255.0
    edited = crop.copy()
    if shift == "red+0.08":
        edited[..., 0] += 0.08
    else:
        edited *= 0.85
    edited = np.clip(edited, 0.0, 1.0)
    outs = {on: PasteBack(original, box, 0.08, on).frame(edited) for on in (False, True)}
    paster = PasteBack(original, box, 0.08, True)
    side = box[2] - box[0]
    band = 0.08 * side
    just_inside = _ring(paster, original.shape, band, band + 0.02 * side)  # first pixels at full alpha
    just_outside = _ring(paster, original.shape, -0.02 * side, 0.0)  # the picture beyond the box

    def seam_error(out: np.ndarray) -> float:
        """Largest per-channel jump of the mean change (out - picture) across the feather band."""
        change = out - original
        return float(np.abs(change[just_inside].mean(axis=0) - change[just_outside].mean(axis=0)).max())

    without, with_match = seam_error(outs[False]), seam_error(outs[True])
    print(f"\n{shift}: seam error without colour match {without:.4f}, with {with_match:.4f} "
          f"(ratio {without / max(with_match, 1e-9):.1f})")
    assert without > 0.025
    assert with_match < without / 8
    # The middle of the face keeps the generated values exactly (no correction there) ...
    x0, y0, x1, y1 = paster.box
    cx, cy = (x0 + x1) // 2, int((y0 + y1) / 2 + 0.115 * side)  # the face centre (the crop lifts the box 0.115)
    r = int(0.08 * side)
    middle = (slice(cy - r, cy + r), slice(cx - r, cx + r))
    assert np.abs(outs[True][middle] - outs[False][middle]).max() < 1e-6
    # Nor does the rest of the face box (a third of the side, where the official crop puts the face).
    r = int(side / 6)
    face = (slice(cy - r, cy + r), slice(cx - r, cx + r))
    assert np.abs(outs[True][face] - outs[False][face]).max() < 1e-6
    # ... so the edit survives there: the red shift (clipped at 1) and the exposure change.
    change = (outs[True][middle] - original[middle]).reshape(-1, 3).mean(axis=0)
    if shift == "red+0.08":
        assert change[0] > 0.06 and np.abs(change[1:]).max() < 0.01
    else:
        assert (change < -0.04).all()


def test_colour_correction_stops_at_the_given_face_box() -> None:
    """With the reference face's landmark box (what the node passes), no correction reaches any of its pixels."""
    from hellomeme_core.face.analyzer import extract_face_motion

    image, box = picture("majicmix2.jpg", True)
    face_box = extract_face_motion(analyzer(), image[None]).face_boxes[0]
    paster = PasteBack(image.astype(np.float32) / 255.0, box, 0.08, True, face_box=face_box)
    weight = np.zeros(image.shape[:2], np.float32)
    weight[paster.y.start:paster.y.stop, paster.x.start:paster.x.stop] = paster.weight[..., 0]
    fx0, fy0 = (int(np.ceil(v)) for v in face_box[:2])
    fx1, fy1 = (int(v) for v in face_box[2:])
    assert weight[fy0:fy1, fx0:fx1].max() == 0.0
    assert weight[paster.y.start:paster.y.stop, paster.x.start:paster.x.stop][:5].min() == 1.0  # top band: full


@pytest.mark.parametrize("size", [256, 768])
def test_other_generation_sizes_paste_back_at_the_picture_size(size: int) -> None:
    image, box = picture("zzj.jpg", True)
    original = image.astype(np.float32) / 255.0
    crops = crop_frames(image[None].repeat(2, axis=0), box, size).astype(np.float32) / 255.0
    out = paste_back(crops, original, box)
    assert out.shape == (2, *original.shape) and out.dtype == np.float32
    masks = regions(PasteBack(original, box), original.shape)
    figure = psnr(out[1], original, masks["inner"])
    print(f"\ngenerated at {size}: inner {figure:.2f} dB, box side {box[2] - box[0]}")
    assert figure > (35.0 if size == 256 else 45.0)  # measured 39.7 dB (256, 2.6x enlargement) and 56.7 dB (768)
    assert np.array_equal(out[0], out[1])


def test_box_partly_outside_the_picture_is_clipped() -> None:
    image, _ = picture("show1.jpg", False)
    original = image.astype(np.float32) / 255.0
    world = cv2.copyMakeBorder(original, 200, 200, 200, 200, cv2.BORDER_REFLECT)  # the picture inside a larger world
    # A 512 box sticking out of the picture's top-left corner by 100 and 150 px: cut from the world, exact size.
    box = np.array([-100, -150, 412, 362])
    crop = world[200 + box[1]:200 + box[3], 200 + box[0]:200 + box[2]]
    assert crop.shape == (512, 512, 3)
    out = PasteBack(original, box, 0.08, True).frame(crop)
    assert out.shape == original.shape
    assert np.abs(out - original).max() < 1e-5  # identical content: only the visible part, at its place
    # Left and top sides lie beyond the picture edge: no seam there, the crop reaches the edge unblended;
    # right and bottom are seams: alpha nearly 0 on the box's last column/row.
    grey = np.full((512, 512, 3), 0.5, np.float32)
    out = PasteBack(original, box, 0.08, False).frame(grey)
    assert np.abs(out[0, :300] - 0.5).max() < 1e-6 and np.abs(out[:200, 0] - 0.5).max() < 1e-6
    last_column = out[50:150, box[2] - 1]
    assert np.abs(last_column - original[50:150, box[2] - 1]).max() < 0.01
    assert np.array_equal(out[:, box[2]:], original[:, box[2]:])


def test_feather_ramps_from_the_picture_to_the_crop_and_zero_feather_is_a_hard_edge() -> None:
    original = np.zeros((400, 400, 3), np.float32)
    box = (100, 100, 300, 300)
    white = np.ones((64, 64, 3), np.float32)
    row = PasteBack(original, box, 0.1, False).frame(white)[200, :, 0]
    ramp = row[100:120]  # 0.1 x 200 px
    assert ramp[0] < 0.01 and np.all(np.diff(ramp) > 0) and row[120:180].min() > 1 - 1e-6
    assert row[:100].max() == 0.0 and row[300:].max() == 0.0
    hard = PasteBack(original, box, 0.0, False).frame(white)
    outside = np.ones(hard.shape[:2], bool)
    outside[100:300, 100:300] = False
    assert hard[100:300, 100:300].min() > 1 - 1e-6 and hard[outside].max() == 0.0


def test_torch_frames_and_numpy_frames_give_the_same_pictures() -> None:
    image, box = picture("toon.png", True)
    original = image.astype(np.float32) / 255.0
    crops = crop_frames(image[None], box).astype(np.float32) / 255.0
    crops = np.concatenate([crops, crops[:, ::-1]])  # a second, different frame
    calls = []
    from_numpy = paste_back(crops, original, box, progress=calls.append)
    from_torch = paste_back(torch.from_numpy(crops.copy()), original, box)
    assert np.array_equal(from_numpy, from_torch) and calls == [1, 2]
    assert not np.array_equal(from_numpy[0], from_numpy[1])


def test_memory_stays_bounded_as_the_clip_grows() -> None:
    """Peak memory besides the output does not grow with the frame count (no F x H x W temporaries)."""
    image, box = picture("show1.jpg", True)  # 1464 x 1280 picture, 1003 px box
    original = image.astype(np.float32) / 255.0
    frame_bytes = original.nbytes
    peaks = {}
    for count in (2, 8):
        crops = np.repeat(crop_frames(image[None], box).astype(np.float32) / 255.0, count, axis=0)
        out = np.empty((count, *original.shape), np.float32)
        tracemalloc.start()
        paste_back(crops, original, box, out=out)
        peaks[count] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print(f"\npeak temporaries: {peaks[2] / 2**20:.1f} MiB (2 frames), {peaks[8] / 2**20:.1f} MiB (8 frames); "
          f"one frame is {frame_bytes / 2**20:.1f} MiB")
    assert abs(peaks[8] - peaks[2]) < 0.25 * frame_bytes
    assert peaks[8] < 8 * frame_bytes


def test_errors_say_what_is_wrong() -> None:
    picture_ = np.zeros((300, 400, 3), np.float32)
    with pytest.raises(ShapeMismatchError, match="not square"):
        paste_back(np.zeros((1, 64, 32, 3), np.float32), picture_, (0, 0, 100, 100))
    with pytest.raises(HelloMemeError, match="is empty"):
        PasteBack(picture_, (50, 50, 50, 80))
    with pytest.raises(HelloMemeError, match="lies outside the 400x300 picture"):
        PasteBack(picture_, (400, 0, 600, 200))
    with pytest.raises(HelloMemeError, match="feather 0.6"):
        PasteBack(picture_, (0, 0, 100, 100), feather=0.6)


def benchmark(frames: int = 24, size: int = 512, width: int = 1920, height: int = 1080) -> dict[str, float]:
    """Milliseconds per frame pasting ``size`` crops into a ``width`` x ``height`` picture (box 3/4 of the height),
    with and without colour match: ``python -m tests.face.test_paste_back``."""
    import time

    rng = np.random.default_rng(0)
    picture_ = cv2.GaussianBlur(rng.random((height, width, 3), dtype=np.float32), (0, 0), 3)
    side = int(0.75 * height)
    box = ((width - side) // 2, (height - side) // 2, (width + side) // 2, (height + side) // 2)
    crops = rng.random((frames, size, size, 3), dtype=np.float32)
    out = np.empty((frames, height, width, 3), np.float32)
    out.fill(0.0)  # touch the output's pages before timing
    timings = {}
    for color_match in (False, True):
        start = time.perf_counter()
        paste_back(crops, picture_, box, color_match=color_match, out=out)
        timings[f"color_match={color_match}"] = 1000 * (time.perf_counter() - start) / frames
    return timings


if __name__ == "__main__":
    print(benchmark())


def test_fit_to_max_side_scales_picture_and_boxes_together() -> None:
    assert fitted_size(4032, 3024, 1920) == (1920, 1440)
    assert fitted_size(3024, 4032, 1920) == (1440, 1920)
    assert fitted_size(800, 600, 0) == (800, 600) and fitted_size(800, 600, 1920) == (800, 600)  # never enlarged
    with pytest.raises(HelloMemeError, match="max_side -1 is negative"):
        fitted_size(800, 600, -1)
    picture = np.random.default_rng(0).random((600, 800, 3), dtype=np.float32)
    small, box, face = fit_to_max_side(picture, [100, 50, 500, 450], [200.0, 150.0, 400.0, 350.0], 400)
    assert small.shape == (300, 400, 3) and small.dtype == np.float32
    assert box == (50.0, 25.0, 250.0, 225.0) and face == (100.0, 75.0, 200.0, 175.0)
    assert np.allclose(small, picture.reshape(300, 2, 400, 2, 3).mean(axis=(1, 3)), atol=1e-6)  # area filter
    same, box, face = fit_to_max_side(picture, np.array([100, 50, 500, 450]), None, 0)
    assert same is picture and box == (100.0, 50.0, 500.0, 450.0) and face is None
