"""Paste generated face crops back into the full-resolution reference picture.

HelloMeme generates the official face crop of the reference portrait (the square ``FaceMotion.crop_box``
resized to the generation size, see ``crop.py``). This module puts every generated crop back where it
was cut from, so the result is the whole picture at its own size. Per frame:

1. **Resize** the crop to the box size, with the filter chosen by the magnification m = box / crop
   (measured on the untouched round trip of the six shared reference portraits and on a step edge):
   - enlarging by more than 1.1x (a 512 crop into a 700-1500 pixel box of a high-resolution picture):
     bicubic, the filter the official crop was cut with. Lanczos-4 scores the same PSNR there (within
     0.2 dB at 1.3x and 2x) but its halo around hard edges (hair against a bright background) is twice
     as wide (26 vs 12 output pixels beyond 0.3 % on a 2x step edge, overshoot 7.6 % vs 6.6 %), and an
     enlargement magnifies it;
   - near identity and shrinking (m <= 1.1; e.g. a 512 crop back into the 511 box of a 512 portrait, or
     a crop generated at 768): Lanczos-4, the flattest passband OpenCV has, so the most generated detail
     survives (+0.9 to 1.3 dB over bicubic on the round trip) while its ringing stays a pixel wide.
     When shrinking, a Gaussian anti-alias blur of sigma (1/m - 1)/2 pixels per axis comes first (the
     usual choice, as in scikit-image), so texture finer than the box can hold does not alias into
     moire; area averaging would blur more (11 to 18 dB lower on the round trip of 768 and 1024 crops).
   Filter overshoot is clipped back to [0, 1].
2. **Colour-match** (optional): the diffusion model rarely reproduces the picture's exact colours
   (white balance, exposure, a colour cast of the checkpoint). Where the crop meets the picture that
   shows as a coloured frame around the face even under a feather. The correction is an *additive,
   per-channel, low-frequency* field ``D``: the difference picture - generated, measured only in the
   seam band (the feather zone) and smoothed with a normalised Gaussian convolution (a masked blur
   divided by the blurred mask, with sigma = the band width), so it holds only colour/brightness
   changes slower than the band and never copies edges or texture of the original. It is applied with
   a weight that is 1 in the band and fades smoothly (smoothstep) to 0 at the face box: the
   reference motion's landmark box when given, else where the official crop puts the face (its middle
   third, lifted: the box is 3x the face with its centre raised by 0.115 of the side). Each seam side
   fades over its own distance to the face (the chin is nearer the bottom than the brow is to the top),
   at least 6 % of the side. So the whole face keeps exactly the generated values (the expression, and
   also an intended colour edit), while the band and the hair, neck and background around it take the
   picture's colours.
   An additive field was chosen over a gain (or mean/std matching) because it cannot amplify noise or
   texture and stays stable where the band is dark; over Poisson blending because it needs no solver,
   is bounded in memory and cannot bleed the picture's edges into the face.
3. **Feather**: blend ``alpha * crop + (1 - alpha) * picture`` with ``alpha`` a smoothstep of the distance
   to the box border over ``feather * side`` pixels, 0 at the border (no hard seam). ``alpha`` is the
   product of one such ramp per border side, so its corners are rounded and smooth. Only box sides that
   lie inside the picture are seams: a side on or beyond the picture edge has no picture pixels beyond
   it, so the crop runs to the edge unblended there (this is the common case: the official crop is slid
   inside the frame and often touches its edges). A box partly outside the picture is clipped: only its
   visible part is pasted.

Everything is done one frame at a time into a preallocated float32 output (temporaries are the size of
the box, never frames x height x width), and the result is float32 in [0, 1].
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from hellomeme_core.errors import HelloMemeError, ShapeMismatchError
from hellomeme_core.face.crop import CROP_LIFT, FACE_TO_CROP  # the crop geometry, one source of truth
from hellomeme_core.media import fitted_size

Progress = Callable[[int], None]

DEFAULT_FEATHER = 0.08
MAX_FEATHER = 0.25
_MIN_FADE = 0.06  # the colour correction fades out over at least this fraction of the box side past the band
_MIN_BAND = 0.02  # the colour estimate needs a band of at least this fraction of the side, even with feather 0
_GRID = 128  # the low-frequency colour field is estimated on a grid this many cells across the box
_NEAR_IDENTITY = 1.1  # up to this magnification Lanczos-4 resamples the crop, above it bicubic
_MIN_PREFILTER = 0.25  # anti-alias blur sigmas (pixels) below this change nothing visible and are skipped


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def resize_crop(crop: np.ndarray, width: int, height: int) -> np.ndarray:
    """A (h, w, 3) float32 crop resized to ``width`` x ``height`` (the filter choice is explained in the module
    docstring), clipped to [0, 1]."""
    h, w = crop.shape[:2]
    if (w, h) == (width, height):
        return np.clip(crop, 0.0, 1.0, dtype=np.float32)
    magnification = min(width / w, height / h)
    if magnification > _NEAR_IDENTITY:
        interpolation = cv2.INTER_CUBIC
    else:
        interpolation = cv2.INTER_LANCZOS4
        sigma_x, sigma_y = (max(0.0, (1.0 / m - 1.0) / 2.0) for m in (width / w, height / h))
        if max(sigma_x, sigma_y) >= _MIN_PREFILTER:  # anti-alias before shrinking
            crop = cv2.GaussianBlur(crop, (0, 0), sigmaX=max(sigma_x, 1e-3), sigmaY=max(sigma_y, 1e-3))
    resized = cv2.resize(crop, (width, height), interpolation=interpolation)
    return np.clip(resized, 0.0, 1.0, out=resized)


@dataclass(frozen=True)
class _Axis:
    """One axis of the box: where it lies, its visible part, and the 1-D ramps of the visible part."""

    start: int  # visible range in picture pixels
    stop: int
    alpha: np.ndarray  # (n,) feather ramp product over this axis's seam sides
    keep: np.ndarray  # (n,) 1 - colour-correction weight along this axis (0 near a seam, 1 far from it)
    band: np.ndarray  # (n,) bool, inside the colour-estimate band of a seam side
    crop_slice: slice  # visible part in box pixels


def _axis(lo: int, hi: int, size: int, feather_px: float, band_px: float, face: tuple[float, float],
          min_fade_px: float) -> _Axis:
    length = hi - lo
    start, stop = max(lo, 0), min(hi, size)
    centres = np.arange(length, dtype=np.float64) + 0.5  # pixel centres, box coordinates
    alpha = np.ones(length)
    keep = np.ones(length)
    band = np.zeros(length, dtype=bool)
    # A side is a seam only when picture pixels lie beyond it. Its colour correction ends at the face.
    for distance, is_seam, to_face in ((centres, lo > 0, face[0] - lo), (length - centres, hi < size, hi - face[1])):
        if not is_seam:
            continue
        if feather_px > 0:
            alpha *= _smoothstep(distance / feather_px)
        fade_px = max(to_face, band_px + min_fade_px)
        keep *= _smoothstep((distance - band_px) / (fade_px - band_px))
        band |= distance < band_px
    part = slice(start - lo, stop - lo)
    return _Axis(start, stop, alpha[part].astype(np.float32), keep[part].astype(np.float32), band[part], part)


def default_face_box(box: Sequence[int]) -> tuple[float, float, float, float]:
    """Where the official crop puts the face in ``box``: the middle third, its centre 0.115 of the side below
    the box centre (``crop.clip_crop_box`` in reverse)."""
    x0, y0, x1, y1 = box
    side = 0.5 * ((x1 - x0) + (y1 - y0))
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1) + CROP_LIFT * side
    half = 0.5 * side / FACE_TO_CROP
    return (cx - half, cy - half, cx + half, cy + half)


class PasteBack:
    """Pastes crops of one picture's box back into it; what depends only on picture and box is computed once."""

    def __init__(self, picture: np.ndarray, box: Sequence[int] | np.ndarray, feather: float = DEFAULT_FEATHER,
                 color_match: bool = True, face_box: Sequence[float] | np.ndarray | None = None) -> None:
        """``face_box`` (x0, y0, x1, y1, source pixels): where colour correction must not reach; by default the
        face's place in the official crop."""
        picture = np.asarray(picture)
        if picture.ndim != 3 or picture.shape[2] < 3:
            raise ShapeMismatchError(f"paste back: the picture must be (height, width, 3), got shape {tuple(picture.shape)}")
        self.picture = np.clip(np.ascontiguousarray(picture[..., :3], dtype=np.float32), 0.0, 1.0)
        height, width = self.picture.shape[:2]
        x0, y0, x1, y1 = (int(round(float(v))) for v in np.asarray(box).reshape(-1)[:4])
        if x1 <= x0 or y1 <= y0:
            raise HelloMemeError(f"paste back: the crop box {[x0, y0, x1, y1]} is empty (x1 <= x0 or y1 <= y0)")
        if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
            raise HelloMemeError(f"paste back: the crop box {[x0, y0, x1, y1]} lies outside the {width}x{height} "
                                 "picture; it must come from this picture")
        if not 0.0 <= feather <= MAX_FEATHER:
            raise HelloMemeError(f"paste back: feather {feather} is outside 0..{MAX_FEATHER} (a fraction of the box side)")
        self.box = (x0, y0, x1, y1)
        self.box_size = (x1 - x0, y1 - y0)  # (width, height); the official box is square up to a pixel
        side = 0.5 * (self.box_size[0] + self.box_size[1])
        feather_px = feather * side
        band_px = max(feather_px, _MIN_BAND * side)
        fx0, fy0, fx1, fy1 = self.face_box = default_face_box(self.box) if face_box is None else \
            tuple(float(v) for v in np.asarray(face_box).reshape(-1)[:4])
        self.x = _axis(x0, x1, width, feather_px, band_px, (fx0, fx1), _MIN_FADE * side)
        self.y = _axis(y0, y1, height, feather_px, band_px, (fy0, fy1), _MIN_FADE * side)
        self.alpha = (self.y.alpha[:, None] * self.x.alpha[None, :])[..., None]  # (vh, vw, 1)
        region = self.picture[self.y.start:self.y.stop, self.x.start:self.x.stop]
        band = self.y.band[:, None] | self.x.band[None, :]
        self.color_match = bool(color_match and band.any())
        if self.color_match:
            self.weight = (1.0 - self.y.keep[:, None] * self.x.keep[None, :])[..., None]  # (vh, vw, 1)
            self.band = band.astype(np.float32)[..., None]
            vh, vw = region.shape[:2]
            scale = min(1.0, _GRID / side)
            self.grid = (max(4, round(vw * scale)), max(4, round(vh * scale)))  # (width, height)
            self.sigma = max(1.0, band_px * scale)
            self.band_grid = self._blur(self._shrink(self.band))
            self.band_sum = float(self.band.sum())
            self.region_band = region * self.band  # the picture's side of the band difference, once

    def _shrink(self, image: np.ndarray) -> np.ndarray:
        out = cv2.resize(image, self.grid, interpolation=cv2.INTER_AREA)
        return out[..., None] if out.ndim == 2 else out

    def _blur(self, image: np.ndarray) -> np.ndarray:
        out = cv2.GaussianBlur(image, (0, 0), self.sigma, borderType=cv2.BORDER_REPLICATE)
        return out[..., None] if out.ndim == 2 else out

    def correction(self, crop_region: np.ndarray) -> np.ndarray:
        """(vh, vw, 3) low-frequency picture - crop colour difference of the seam band, full strength everywhere
        (the caller weights it)."""
        difference = self.region_band - crop_region * self.band  # band-masked picture - crop
        numerator = self._blur(self._shrink(difference))
        # Normalised convolution; where the band's blur has (almost) no weight, fall back to the band's mean.
        mean = difference.reshape(-1, 3).sum(axis=0) / self.band_sum
        eps = 1e-3 * float(self.band_grid.max())
        field = (numerator + eps * mean) / (self.band_grid + eps)
        vh, vw = crop_region.shape[:2]
        return cv2.resize(field.astype(np.float32), (vw, vh), interpolation=cv2.INTER_LINEAR)

    def region(self, crop: np.ndarray) -> np.ndarray:
        """(vh, vw, 3) float32: the visible part of the box after resizing, colour match and feathering."""
        crop = np.asarray(crop, dtype=np.float32)[..., :3]
        resized = resize_crop(np.ascontiguousarray(crop), *self.box_size)
        generated = np.ascontiguousarray(resized[self.y.crop_slice, self.x.crop_slice])
        if self.color_match:
            generated += self.weight * self.correction(generated)
        picture = self.picture[self.y.start:self.y.stop, self.x.start:self.x.stop]
        # alpha * generated + (1 - alpha) * picture, in place on the box-sized temporary
        generated -= picture
        generated *= self.alpha
        generated += picture
        return np.clip(generated, 0.0, 1.0, out=generated)

    def frame(self, crop: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """(H, W, 3) float32: the picture with ``crop`` pasted at the box (written into ``out`` when given)."""
        if out is None:
            out = np.empty_like(self.picture)
        out[...] = self.picture
        out[self.y.start:self.y.stop, self.x.start:self.x.stop] = self.region(crop)
        return out


def _as_numpy_frame(frames, index: int) -> np.ndarray:
    """One frame of a numpy array or a torch tensor (on any device) as float32 numpy."""
    frame = frames[index]
    if hasattr(frame, "detach"):  # a torch tensor; the core stays free of a hard torch dependency here
        frame = frame.detach().to("cpu").float().numpy()
    return np.asarray(frame, dtype=np.float32)


def check_crops(frames) -> tuple[int, int]:
    """(count, size) of (F, size, size, 3+) crops; a clear error otherwise."""
    shape = tuple(frames.shape)
    if len(shape) != 4 or shape[3] < 3:
        raise ShapeMismatchError(f"paste back: the generated frames must be (frames, height, width, 3), got shape {shape}")
    if shape[1] != shape[2]:
        raise ShapeMismatchError(f"paste back: the generated frames are {shape[2]}x{shape[1]} (width x height), not "
                                 "square; they must be the square face crop HelloMeme generates (e.g. 512x512)")
    if shape[0] == 0:
        raise ShapeMismatchError("paste back: there are no generated frames")
    return shape[0], shape[1]


def fit_to_max_side(picture: np.ndarray, box: Sequence[float] | np.ndarray,
                    face_box: Sequence[float] | np.ndarray | None, max_side: int,
                    ) -> tuple[np.ndarray, tuple[float, ...], tuple[float, ...] | None]:
    """``picture`` (H, W, 3) scaled down to :func:`fitted_size` (area filter) with ``box`` and ``face_box``
    (x0, y0, x1, y1, picture pixels) in the scaled picture's pixels; unchanged when no scaling is needed.

    Pasting into the smaller picture keeps every output frame (frames x H x W x 3 float32 in ComfyUI) small: a
    4032 x 3024 phone photo is 146 MB a frame at its own size, 33 MB with ``max_side`` 1920."""
    height, width = picture.shape[:2]
    new_width, new_height = fitted_size(width, height, max_side)
    coords = np.asarray(box, dtype=np.float64).reshape(-1)[:4]
    if (new_width, new_height) == (width, height):
        return picture, tuple(float(v) for v in coords), None if face_box is None else \
            tuple(float(v) for v in np.asarray(face_box, dtype=np.float64).reshape(-1)[:4])
    scale = np.array([new_width / width, new_height / height] * 2)
    small = cv2.resize(np.ascontiguousarray(picture[..., :3], dtype=np.float32), (new_width, new_height),
                       interpolation=cv2.INTER_AREA)
    scaled_face = None if face_box is None else \
        tuple(float(v) for v in np.asarray(face_box, dtype=np.float64).reshape(-1)[:4] * scale)
    return small, tuple(float(v) for v in coords * scale), scaled_face


def paste_back(frames, picture: np.ndarray, box: Sequence[int] | np.ndarray, feather: float = DEFAULT_FEATHER,
               color_match: bool = True, face_box: Sequence[float] | np.ndarray | None = None,
               out: np.ndarray | None = None, progress: Progress | None = None) -> np.ndarray:
    """(F, H, W, 3) float32: every square crop of ``frames`` (F, S, S, 3) in [0, 1] (numpy or torch) pasted into
    ``picture`` (H, W, 3) at ``box`` (x0, y0, x1, y1, source pixels). One frame at a time; ``out`` (F, H, W, 3)
    float32 may be given to write into (e.g. the numpy view of a torch tensor)."""
    count, _ = check_crops(frames)
    paster = PasteBack(picture, box, feather, color_match, face_box)
    height, width = paster.picture.shape[:2]
    if out is None:
        out = np.empty((count, height, width, 3), dtype=np.float32)
    elif out.shape != (count, height, width, 3) or out.dtype != np.float32:
        raise ShapeMismatchError(f"paste back: out must be float32 {(count, height, width, 3)}, got "
                                 f"{out.dtype} {tuple(out.shape)}")
    for index in range(count):
        paster.frame(_as_numpy_frame(frames, index), out=out[index])
        if progress is not None:
            progress(index + 1)
    return out
