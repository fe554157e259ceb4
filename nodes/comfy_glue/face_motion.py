"""Face motion for the nodes: the face analyzer from the model folders, motion extraction with progress, pose drawings."""
from __future__ import annotations

import logging

import numpy as np
import torch

from hellomeme_core.errors import HelloMemeError
from hellomeme_core.face.analyzer import extract_face_motion, load_face_analyzer
from hellomeme_core.face.crop import CROP_SIZE, crop_frames
from hellomeme_core.face.preview import draw_preview
from hellomeme_core.face.retarget import condition_images, relative_motion

from .paths import hellomeme_model_dirs, insightface_model_dirs
from .progress import node_progress

_log = logging.getLogger("hellomeme")


def _official_toolkit_dir() -> str | None:
    """The first models/hellomeme folder (or its hello_group_facemodel subfolder) holding the ONNX toolkit."""
    from hellomeme_core.face.official_backend import find_toolkit_dir

    found = find_toolkit_dir(hellomeme_model_dirs())
    return str(found) if found else None


def _pd_fgc_file() -> str | None:
    """The PD-FGC encoder (songkey/pd_fgc_motion) in the HelloMeme model folders: its folder or single file."""
    from hellomeme_core.model_files.check import find_repo_file
    from hellomeme_core.model_files.layout import PD_FGC_REPO

    found = find_repo_file(hellomeme_model_dirs(), PD_FGC_REPO)
    return str(found) if found else None


def _missing_pd_fgc_message() -> str:
    """Where the PD-FGC file goes, how to fetch it, and how to do without it."""
    from hellomeme_core.model_files.check import candidate_paths, download_args
    from hellomeme_core.model_files.layout import PD_FGC_REPO

    searched = hellomeme_model_dirs()
    expected = candidate_paths(searched[0], PD_FGC_REPO) if searched else []
    where = (f"{expected[0]} (or the single file {expected[-1].name} there)" if expected
             else "ComfyUI/models/hellomeme/pd_fgc_motion/diffusion_pytorch_model.safetensors")
    folders = ", ".join(str(d) for d in searched) or "no folder is registered as 'hellomeme'"
    return (f"pd_fgc is on but the PD-FGC expression encoder ({PD_FGC_REPO}) is not in the HelloMeme model folders "
            f"({folders}). Put it at {where}: from the HelloMeme extension folder run "
            f"python -m hellomeme_core download {download_args(PD_FGC_REPO)} (add --models-dir <your ComfyUI/models/hellomeme> "
            f"if ComfyUI keeps its models elsewhere). Or turn pd_fgc off here and set expression_mode to 'arkit' in "
            "Load HelloMeme Models.")


def _encoder_device(device: str):
    """Where the PD-FGC encoder runs: 'auto' follows ComfyUI (its GPU, or the CPU under --cpu)."""
    if device == "auto":
        import comfy.model_management

        return comfy.model_management.get_torch_device()
    return device


def insightface_pack_choices() -> tuple[list[str], str]:
    """(options, default) of the insightface pack combo: the known pack names and any other pack found in
    models/insightface. The known names are always offered, so a shipped workflow (antelopev2) validates
    whichever packs a user has; using a missing one says where its files go."""
    from hellomeme_core.face.insightface.packs import DEFAULT_PACK, KNOWN_PACKS, list_packs

    found = list_packs(insightface_model_dirs())
    return list(KNOWN_PACKS) + [name for name in found if name not in KNOWN_PACKS], DEFAULT_PACK


def _insightface_pack(name: str, device: str, required: bool):
    """(InsightFacePack or None, why it is missing): the pack ``name`` from the insightface folders, loaded lazily."""
    from hellomeme_core.errors import MissingModelFileError
    from hellomeme_core.face.insightface.packs import InsightFacePack, find_pack

    try:
        return InsightFacePack(find_pack(insightface_model_dirs(), name), device=device), ""
    except MissingModelFileError as exc:
        if required:
            raise
        return None, str(exc)


def load_analyzer(backend: str, device: str, pd_fgc: bool = True, detector: str = "built-in",
                  insightface_pack: str = "antelopev2"):
    """A FACE_ANALYZER: mediapipe, or the official toolkit from the HelloMeme model folders; with ``pd_fgc`` also
    the PD-FGC encoder (songkey/pd_fgc_motion), so the motion carries ``pd_fpg`` (the official default expression).
    The insightface pack serves the ``insightface`` detector and following a face by identity (a missing pack is
    an error only when the detector needs it; following by identity then says why)."""
    from hellomeme_core.errors import MissingModelFileError

    model_dir = _official_toolkit_dir() if backend == "official" else None
    pack, missing = _insightface_pack(insightface_pack, device, detector == "insightface")
    # the toolkit's own missing files are named first
    analyzer = load_face_analyzer(backend, device, model_dir, detector=detector, insightface=pack)
    analyzer.insightface_missing = missing
    if pd_fgc:
        path = _pd_fgc_file()
        if path is None:
            raise MissingModelFileError(_missing_pd_fgc_message())
        analyzer.load_pd_fgc(path, _encoder_device(device))
    return analyzer


def _face_part_embeddings(clip_vision, frames: np.ndarray, motion) -> torch.Tensor:
    """(F, 3, D) CLIP image embeddings of the eye/mouth crops, as the official face-part input."""
    from hellomeme_core.face.face_parts import face_part_crops

    crops = face_part_crops(frames[motion.frame_indices], motion.landmarks)  # (F, 3, S, S, 3)
    count = crops.shape[0]
    images = torch.from_numpy(crops.reshape(count * 3, *crops.shape[2:])).float() / 255.0
    embeds = clip_vision.encode_image(images)["image_embeds"]  # (F*3, D)
    return embeds.reshape(count, 3, -1).float().cpu()


def extract(face_analyzer, images: torch.Tensor, no_face_policy: str, smoothing: float, fps: float, clip_vision=None,
            face_index: int = -1, crop_size: int = CROP_SIZE, identity_image: torch.Tensor | None = None):
    """``(FACE_MOTION, preview IMAGE, frames without a face, face-crop IMAGE)`` of an IMAGE batch: the face
    ``face_index`` (-1 = the largest), or the person of ``identity_image`` (its first image) when given, and the
    official crop resized to ``crop_size`` (the pose is measured in the 512 crop whatever the size, as officially)."""
    to_uint8 = lambda t: (t[..., :3].clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()  # noqa: E731
    frames = to_uint8(images)
    identity = None if identity_image is None else to_uint8(identity_image[:1])[0]
    motion = extract_face_motion(face_analyzer, frames, fps, None, no_face_policy, smoothing,
                                 progress=node_progress(len(frames)), source="Extract Face Motion images",
                                 face_index=face_index, identity=identity)
    if clip_vision is not None:
        motion.face_parts = _face_part_embeddings(clip_vision, frames, motion)
    if motion.frames_without_face:
        shown = ", ".join(str(i) for i in motion.no_face_indices[:20]) + (" ..." if motion.frames_without_face > 20 else "")
        what = "dropped from the motion" if no_face_policy == "drop" else f"values filled by '{no_face_policy}'"
        _log.warning("HelloMeme Extract Face Motion: %d of %d frames had no face (frames %s; %s)",
                     motion.frames_without_face, len(frames), shown, what)
    preview = torch.from_numpy(draw_preview(frames, motion)).float() / 255.0
    crop = torch.from_numpy(crop_frames(frames[motion.frame_indices], motion.crop_box, int(crop_size))).float() / 255.0
    # A small picture of the crop the pose was measured in, so a later node can tell whether the image it is
    # given as the reference is that crop (3 KB; area averaging is what torch offers for any IMAGE too).
    motion.extras["face_crop_thumbnail"] = crop_thumbnail(crop[0])
    return (motion, preview, motion.frames_without_face, crop)


THUMBNAIL_SIZE = 32


def crop_thumbnail(image: torch.Tensor) -> torch.Tensor:
    """(H, W, 3) IMAGE in [0, 1] -> (3, 32, 32) float32 area-averaged thumbnail."""
    planes = image[..., :3].permute(2, 0, 1)[None].float()
    return torch.nn.functional.interpolate(planes, size=(THUMBNAIL_SIZE, THUMBNAIL_SIZE), mode="area")[0].clamp(0, 1)


def render(face_motion, translation_ratio: float, relative: bool, reference_motion=None, size: int = 512):
    """``(condition IMAGE, reference condition IMAGE)``: the official head-pose drawings."""
    if relative and reference_motion is None:
        raise HelloMemeError("Render Pose Condition: 'relative' needs a reference_motion (Extract Face Motion on the "
                             "reference portrait); connect one or turn 'relative' off")
    drive = relative_motion(face_motion, reference_motion, expression=False) if relative else face_motion
    condition, reference = condition_images(drive, reference_motion, translation_ratio, size=size)
    to_image = lambda c: ((c.permute(1, 2, 3, 0) + 1.0) * 0.5).clamp(0, 1)  # noqa: E731  (3,F,S,S)->(F,S,S,3)
    return (to_image(condition), to_image(reference))
