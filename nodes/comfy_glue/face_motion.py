"""Face motion for the nodes: the face analyzer from the model folders, motion extraction with progress, pose drawings."""
from __future__ import annotations

import logging

import numpy as np
import torch

from hellomeme_core.errors import HelloMemeError
from hellomeme_core.face.analyzer import extract_face_motion, load_face_analyzer
from hellomeme_core.face.crop import crop_frames
from hellomeme_core.face.preview import draw_preview
from hellomeme_core.face.retarget import condition_images, relative_motion

from .paths import hellomeme_model_dirs
from .progress import node_progress

_log = logging.getLogger("hellomeme")


def _official_toolkit_dir() -> str | None:
    """The first models/hellomeme folder (or its hello_group_facemodel subfolder) holding the ONNX toolkit."""
    from hellomeme_core.face.official_backend import find_toolkit_dir

    found = find_toolkit_dir(hellomeme_model_dirs())
    return str(found) if found else None


def _pd_fgc_file() -> str | None:
    from hellomeme_core.model_files.check import find_repo_file
    from hellomeme_core.model_files.layout import PD_FGC_REPO

    found = find_repo_file(hellomeme_model_dirs(), PD_FGC_REPO)
    return str(found) if found else None


def load_analyzer(backend: str, device: str):
    """A FACE_ANALYZER: mediapipe, or the official toolkit from the HelloMeme model folders (+ PD-FGC when there)."""
    model_dir = _official_toolkit_dir() if backend == "official" else None
    analyzer = load_face_analyzer(backend, device, model_dir)
    if backend == "official" and getattr(analyzer, "pd_fgc", None) is None:
        path = _pd_fgc_file()
        if path:
            analyzer.load_pd_fgc(path)
    return analyzer


def _face_part_embeddings(clip_vision, frames: np.ndarray, motion) -> torch.Tensor:
    """(F, 3, D) CLIP image embeddings of the eye/mouth crops, as the official face-part input."""
    from hellomeme_core.face.face_parts import face_part_crops

    crops = face_part_crops(frames[motion.frame_indices], motion.landmarks)  # (F, 3, S, S, 3)
    count = crops.shape[0]
    images = torch.from_numpy(crops.reshape(count * 3, *crops.shape[2:])).float() / 255.0
    embeds = clip_vision.encode_image(images)["image_embeds"]  # (F*3, D)
    return embeds.reshape(count, 3, -1).float().cpu()


def extract(face_analyzer, images: torch.Tensor, no_face_policy: str, smoothing: float, fps: float, clip_vision=None):
    """``(FACE_MOTION, preview IMAGE, frames without a face, 512 face-crop IMAGE)`` of an IMAGE batch."""
    frames = (images[..., :3].clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()
    motion = extract_face_motion(face_analyzer, frames, fps, None, no_face_policy, smoothing,
                                 progress=node_progress(len(frames)), source="Extract Face Motion images")
    if clip_vision is not None:
        motion.face_parts = _face_part_embeddings(clip_vision, frames, motion)
    if motion.frames_without_face:
        shown = ", ".join(str(i) for i in motion.no_face_indices[:20]) + (" ..." if motion.frames_without_face > 20 else "")
        what = "dropped from the motion" if no_face_policy == "drop" else f"values filled by '{no_face_policy}'"
        _log.warning("HelloMeme Extract Face Motion: %d of %d frames had no face (frames %s; %s)",
                     motion.frames_without_face, len(frames), shown, what)
    preview = torch.from_numpy(draw_preview(frames, motion)).float() / 255.0
    crop = torch.from_numpy(crop_frames(frames[motion.frame_indices], motion.crop_box)).float() / 255.0
    return (motion, preview, motion.frames_without_face, crop)


def render(face_motion, translation_ratio: float, relative: bool, reference_motion=None, size: int = 512):
    """``(condition IMAGE, reference condition IMAGE)``: the official head-pose drawings."""
    if relative and reference_motion is None:
        raise HelloMemeError("Render Pose Condition: 'relative' needs a reference_motion (Extract Face Motion on the "
                             "reference portrait); connect one or turn 'relative' off")
    drive = relative_motion(face_motion, reference_motion, expression=False) if relative else face_motion
    condition, reference = condition_images(drive, reference_motion, translation_ratio, size=size)
    to_image = lambda c: ((c.permute(1, 2, 3, 0) + 1.0) * 0.5).clamp(0, 1)  # noqa: E731  (3,F,S,S)->(F,S,S,3)
    return (to_image(condition), to_image(reference))
