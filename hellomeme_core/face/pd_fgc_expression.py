"""The PD-FGC expression input ``pd_fpg``, the official default expression input of HelloMeme (``cntrl2``), for
every face backend.

Order of operations, as the official pipeline (utils.get_drive_pose -> crop_and_resize, then
utils.get_drive_expression_pd_fgc -> warp_face_pd_fgc): each frame is first cut to the clip's 512 face crop
(``crop.crop_frames``, bicubic) and its landmarks moved into crop pixels; THEN five anchor points of those
crop-space landmarks are fitted by a similarity onto a 224 template and the 512 crop is warped with it
(bicubic); the 224 crop, RGB scaled to [-1, 1], goes through the FanEncoder (``hellomeme_core.pd_fgc``).
The negative (unconditional) input is the encoder's output on an all -1 image.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import cv2
import numpy as np
import torch

from hellomeme_core.errors import HelloMemeError, ShapeMismatchError
from hellomeme_core.face.crop import CROP_SIZE, crop_frames, points_to_crop
from hellomeme_core.face.face_parts import similarity_transform
from hellomeme_core.face.frames import Progress

PD_FGC_SIZE = 224
EMBEDDING_SIZE = 548
# The official five-point template in 224-pixel units, in this order: eye centre (image left), eye centre
# (image right), nose tip, mouth corner (image left), mouth corner (image right).
PD_FGC_TEMPLATE = np.array([[0.3843, 0.27], [0.62, 0.2668], [0.503, 0.4185], [0.406, 0.5273], [0.5977, 0.525]]) * PD_FGC_SIZE
# The five anchors in each landmark scheme, in the template's order.
# - 222 (official toolkit): the indices the official warp uses.
# - 478 (mediapipe face mesh with irises): 468 / 473 are the iris centres (image left / right: 468 is the
#   subject's right eye); 61 / 291 the outer mouth corners (image left / right). For the nose the template
#   itself tells where the official point sits: on frontal faces it lies 0.582 of the way from the eye line
#   to the mouth line. Measured on 9 frontal frames of shared/media (qie, tbh, amns, ysll, stills): mesh
#   point 1 (the lowest tip point) at 0.665 +- 0.05, point 4 (the tip, just above it on the ridge) at
#   0.570 +- 0.04, point 2 (below the tip) at 0.74; the five-point fit residual on those frames is 4.43 px
#   (224 scale) with 4, 4.64 with 1, 5.12 with 2. Outer mouth corners 61 / 291 also match the template's
#   mouth width (0.826 of the eye distance vs the template's 0.813; the inner corners 78 / 308 give 0.756).
ANCHORS = {222: (182, 202, 36, 149, 133), 478: (468, 473, 4, 61, 291)}
DEFAULT_BATCH = 8  # crops per encoder call (about 0.5 s each on a CPU core)


def anchor_points(landmarks: np.ndarray) -> np.ndarray:
    """(..., N, 2) landmarks (N = 222 official or 478 mediapipe) -> (..., 5, 2) anchors in template order."""
    landmarks = np.asarray(landmarks)
    anchors = ANCHORS.get(landmarks.shape[-2]) if landmarks.ndim >= 2 else None
    if anchors is None or landmarks.shape[-1] < 2:
        raise ShapeMismatchError(f"PD-FGC alignment: need (222 or 478, 2) landmarks per face, got {tuple(landmarks.shape)}")
    return landmarks[..., list(anchors), :2].astype(np.float64)


def alignment_matrices(landmarks: np.ndarray) -> np.ndarray:
    """(F, N, 2) landmarks -> (F, 2, 3) least-squares similarities putting their anchors on the 224 template."""
    return np.stack([similarity_transform(a, PD_FGC_TEMPLATE) for a in anchor_points(landmarks).reshape(-1, 5, 2)])


def aligned_crops(crops: np.ndarray, crop_landmarks: np.ndarray) -> np.ndarray:
    """(F, S, S, 3) uint8 face crops + their (F, N, 2) landmarks in crop pixels -> (F, 224, 224, 3) uint8
    aligned PD-FGC crops (bicubic, black outside), channel order kept."""
    if len(crops) != len(crop_landmarks):
        raise ShapeMismatchError(f"PD-FGC alignment: {len(crops)} crops but {len(crop_landmarks)} landmark sets")
    out = np.empty((len(crops), PD_FGC_SIZE, PD_FGC_SIZE, 3), np.uint8)
    for i, (crop, m) in enumerate(zip(crops, alignment_matrices(crop_landmarks))):  # OpenCV warps one image per call
        out[i] = cv2.warpAffine(np.ascontiguousarray(crop), m, (PD_FGC_SIZE, PD_FGC_SIZE), flags=cv2.INTER_CUBIC)
    return out


def clip_aligned_crops(frames: np.ndarray, landmarks: np.ndarray, crop_box: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) frames + (F, N, 2) source-pixel landmarks -> (F, 224, 224, 3) aligned crops, cut the official
    way: first the clip's 512 crop ``crop_box`` with landmarks moved into it, then the five-point warp."""
    return aligned_crops(crop_frames(frames, crop_box), points_to_crop(landmarks, crop_box, CROP_SIZE))


def encoder_input(crops_rgb: np.ndarray) -> torch.Tensor:
    """(F, 224, 224, 3) uint8 RGB -> (F, 3, 224, 224) float32 in [-1, 1], what the FanEncoder takes."""
    x = torch.from_numpy(np.ascontiguousarray(crops_rgb)).permute(0, 3, 1, 2).float()
    return x / 255.0 * 2.0 - 1.0


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" -> CUDA when torch has it, else the CPU; "cpu" / "cuda" / a torch device as given."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise HelloMemeError("PD-FGC encoder: device 'cuda' asked but torch sees no CUDA GPU; choose 'auto' or 'cpu'")
    try:
        return torch.device(device)
    except RuntimeError:
        raise HelloMemeError(f"PD-FGC encoder: unknown device {device!r}; choose 'auto', 'cpu' or 'cuda'") from None


class PdFgcExpression:
    """The PD-FGC motion encoder and the official crops it takes: ``pd_fpg`` (F, 548) of a clip.

    The encoder is kept where it was given (the CPU when loaded from a file) and moved to ``device`` only
    while it runs, as the official pipeline moves it to the GPU and back.
    """

    def __init__(self, encoder: torch.nn.Module, device: str | torch.device = "cpu", batch_size: int = DEFAULT_BATCH):
        self.encoder = encoder.eval()
        self.device = resolve_device(device)
        self.batch_size = max(1, int(batch_size))
        self._negative: np.ndarray | None = None

    @classmethod
    def from_file(cls, path: str | os.PathLike, device: str | torch.device = "auto") -> "PdFgcExpression":
        """From ``songkey/pd_fgc_motion`` (its folder or its ``.safetensors`` file)."""
        from hellomeme_core.pd_fgc import load_fan_encoder_file

        return cls(load_fan_encoder_file(path), device)

    def _run(self, batches: Iterable[np.ndarray], progress: Progress | None = None) -> np.ndarray:
        """Batches of (B, 224, 224, 3) RGB crops -> (sum B, 548) float32, the encoder on ``device`` meanwhile;
        ``progress(done)`` after each batch (an interrupt raised there still puts the encoder back)."""
        home = next(self.encoder.parameters()).device
        dtype = next(self.encoder.parameters()).dtype
        out, done = [], 0
        self.encoder.to(self.device)
        try:
            with torch.no_grad():
                for crops in batches:
                    out.append(self.encoder(encoder_input(crops).to(self.device, dtype)).float().cpu().numpy())
                    done += len(crops)
                    if progress is not None:
                        progress(done)
        finally:
            self.encoder.to(home)
        return np.concatenate(out) if out else np.zeros((0, EMBEDDING_SIZE), np.float32)

    def embed(self, crops_rgb: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        """(F, 224, 224, 3) uint8 aligned RGB crops -> (F, 548) float32 ``pd_fpg``; ``progress(done)`` per batch."""
        return self._run((crops_rgb[s:s + self.batch_size] for s in range(0, len(crops_rgb), self.batch_size)), progress)

    def negative(self) -> np.ndarray:
        """(1, 548) the encoder's output on an all -1 image: the official negative ``neg_pd_fpg``."""
        if self._negative is None:
            black = np.zeros((1, PD_FGC_SIZE, PD_FGC_SIZE, 3), np.uint8)  # 0 -> -1 after the scaling
            self._negative = self._run([black])
        return self._negative

    def clip_embedding(self, frames_rgb: np.ndarray, landmarks: np.ndarray, crop_box: np.ndarray,
                       rows: np.ndarray | None = None, crops_rgb: np.ndarray | None = None,
                       progress: Progress | None = None) -> np.ndarray:
        """(R, 548) ``pd_fpg`` of the frames ``rows`` (default all) of (F, H, W, 3) RGB frames with their (F, N, 2)
        source-pixel landmarks, cut the official way (``clip_aligned_crops``). ``crops_rgb``: the R frames' 512
        crops when the caller has them. Batch by batch, so a long clip never holds all its crops at once."""
        rows = np.arange(len(frames_rgb)) if rows is None else np.asarray(rows)

        def batches() -> Iterator[np.ndarray]:
            for start in range(0, len(rows), self.batch_size):
                part = slice(start, start + self.batch_size)
                points = np.asarray(landmarks)[rows[part]]
                if crops_rgb is None:
                    yield clip_aligned_crops(frames_rgb[rows[part]], points, crop_box)
                else:
                    yield aligned_crops(crops_rgb[part], points_to_crop(points, crop_box, CROP_SIZE))

        return self._run(batches(), progress)


class PdFgcSupport:
    """What a face backend needs to return ``pd_fpg``: an optional PD-FGC encoder (``pd_fgc``) and the
    ``FrameAnalysis`` extras computed from it (``per_frame_extras["pd_fpg"]``, ``constants["neg_pd_fpg"]``)."""

    pd_fgc: PdFgcExpression | None = None

    def load_pd_fgc(self, path: str | os.PathLike, device: str | torch.device = "auto") -> None:
        """Load the PD-FGC motion encoder so ``analyze`` also returns ``pd_fpg``."""
        self.pd_fgc = PdFgcExpression.from_file(path, device)

    def pd_fgc_outputs(self, frames_rgb: np.ndarray, landmarks: np.ndarray, found: np.ndarray, crop_box: np.ndarray,
                       crops_rgb: np.ndarray | None = None,
                       progress: Progress | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """``(per_frame_extras, constants)``: ``pd_fpg`` (F, 548), zeros where no face was found (the no-face
        policy fills those rows), and ``neg_pd_fpg`` (1, 548); both empty without an encoder.
        ``crops_rgb``: the 512 crops of the frames with a face, when the backend already cut them. ``progress``
        counts those frames again from 0 (a second pass after the landmarks)."""
        if self.pd_fgc is None:
            return {}, {}
        good = np.flatnonzero(found)
        pd_fpg = np.zeros((len(found), EMBEDDING_SIZE), np.float32)
        if len(good):
            pd_fpg[good] = self.pd_fgc.clip_embedding(frames_rgb, landmarks, crop_box, good, crops_rgb, progress)
        return {"pd_fpg": pd_fpg}, {"neg_pd_fpg": self.pd_fgc.negative()}
