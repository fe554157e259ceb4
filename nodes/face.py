"""Nodes "Load Face Analyzer", "Extract Face Motion", "Render Pose Condition": the driving motion."""
from __future__ import annotations

import logging

import numpy as np
import torch

from hellomeme_core.errors import HelloMemeError
from hellomeme_core.face.analyzer import BACKENDS, extract_face_motion, load_face_analyzer
from hellomeme_core.face.crop import crop_frames
from hellomeme_core.face.no_face import POLICIES
from hellomeme_core.face.preview import draw_preview
from hellomeme_core.face.retarget import condition_images, relative_motion

from .paths import hellomeme_model_dirs

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


class LoadFaceAnalyzer:
    DESCRIPTION = ("Chooses how faces are analysed. 'mediapipe' is built in and needs no download; 'official' uses the "
                   "HelloMeme face toolkit (four ONNX files of hello_group_facemodel, and pd_fgc_motion for v3/v4 PD-FGC "
                   "expression) placed in ComfyUI/models/hellomeme.")
    CATEGORY = "HelloMeme"
    FUNCTION = "load"
    RETURN_TYPES = ("FACE_ANALYZER",)
    RETURN_NAMES = ("face_analyzer",)
    OUTPUT_TOOLTIPS = ("The face analyzer to give to Extract Face Motion.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "backend": (list(BACKENDS), {"default": "mediapipe", "tooltip":
                        "mediapipe: built in, CPU, nothing to download. official: the HelloMeme ONNX face toolkit (the "
                        "pose and expression the official weights were trained on); needs its files in models/hellomeme."}),
            "device": (["auto", "cpu", "cuda"], {"default": "auto", "tooltip":
                       "Where the official toolkit runs (auto: the GPU when onnxruntime has CUDA, else CPU). mediapipe always runs on the CPU."}),
        }}

    def load(self, backend: str, device: str):
        model_dir = _official_toolkit_dir() if backend == "official" else None
        analyzer = load_face_analyzer(backend, device, model_dir)
        if backend == "official" and getattr(analyzer, "pd_fgc", None) is None:
            path = _pd_fgc_file()
            if path:
                analyzer.load_pd_fgc(path)
        return (analyzer,)


def _progress(total: int):
    """Per-frame callback: ComfyUI progress bar plus the Cancel button."""
    import comfy.model_management
    import comfy.utils

    bar = comfy.utils.ProgressBar(total)

    def update(done: int) -> None:
        comfy.model_management.throw_exception_if_processing_interrupted()
        bar.update_absolute(done, total)

    return update


def _face_part_embeddings(clip_vision, frames: np.ndarray, motion) -> torch.Tensor:
    """(F, 3, D) CLIP image embeddings of the eye/mouth crops, as the official face-part input."""
    from hellomeme_core.face.face_parts import face_part_crops

    crops = face_part_crops(frames[motion.frame_indices], motion.landmarks)  # (F, 3, S, S, 3)
    count = crops.shape[0]
    images = torch.from_numpy(crops.reshape(count * 3, *crops.shape[2:])).float() / 255.0
    embeds = clip_vision.encode_image(images)["image_embeds"]  # (F*3, D)
    return embeds.reshape(count, 3, -1).float().cpu()


class ExtractFaceMotion:
    DESCRIPTION = ("Finds the face in every frame and measures its head pose (rotation, translation) and 51 ARKit "
                   "expression coefficients: the FACE_MOTION that drives HelloMeme. Also returns the frames with the "
                   "tracked landmarks and pose axes drawn (red border = no face found, value filled by the policy).")
    CATEGORY = "HelloMeme"
    FUNCTION = "extract"
    RETURN_TYPES = ("FACE_MOTION", "IMAGE", "INT", "IMAGE")
    RETURN_NAMES = ("face_motion", "preview", "frames_without_face", "face_crop")
    OUTPUT_TOOLTIPS = (
        "Per-frame head pose and expression (plus face-part embeddings when a CLIP vision model is connected).",
        "The frames with landmarks (yellow) and head axes (red x, green y, blue facing) drawn on.",
        "How many input frames had no face, under every policy (with 'drop' they are left out of the motion; "
        "otherwise their values come from the policy).",
        "The frames cut to the official 512 x 512 face crop (what the official pipeline feeds as the reference image).",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "face_analyzer": ("FACE_ANALYZER", {"tooltip": "From Load Face Analyzer."}),
                "images": ("IMAGE", {"tooltip": "One portrait or the frames of a driving video (e.g. from Load Video)."}),
                "no_face_policy": (list(POLICIES), {"default": "hold", "tooltip":
                                   "Frames without a face: hold the last good frame, interpolate between good frames, "
                                   "drop them from the motion, or stop with an error."}),
                "smoothing": ("FLOAT", {"default": 0.3, "min": 0.0, "max": 1.0, "step": 0.05, "tooltip":
                              "Temporal smoothing (One Euro filter) of pose and expression: 0 = raw, 1 = strongest. "
                              "Removes jitter while fast moves still pass."}),
                "fps": ("FLOAT", {"default": 25.0, "min": 1.0, "max": 240.0, "step": 0.01, "tooltip":
                        "Frame rate of the frames (for smoothing and the saved motion); use the video's own."}),
            },
            "optional": {
                "clip_vision": ("CLIP_VISION", {"tooltip":
                                "Optional CLIP vision encoder (the one of your HelloMeme version): adds the eye/mouth "
                                "face-part embeddings that v1/v2 and v5 expression use."}),
            },
        }

    def extract(self, face_analyzer, images: torch.Tensor, no_face_policy: str, smoothing: float, fps: float, clip_vision=None):
        frames = (images[..., :3].clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()
        motion = extract_face_motion(face_analyzer, frames, fps, None, no_face_policy, smoothing,
                                     progress=_progress(len(frames)), source="Extract Face Motion images")
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


class RenderPoseCondition:
    DESCRIPTION = ("Draws the head-pose condition frames exactly as the official HelloMeme code does: a projected "
                   "face square in four colours per frame. With a reference motion, the square sits where the "
                   "reference head is; 'relative' applies the driving head's turns on top of the reference's own pose.")
    CATEGORY = "HelloMeme"
    FUNCTION = "render"
    RETURN_TYPES = ("IMAGE", "IMAGE")
    RETURN_NAMES = ("condition", "reference_condition")
    OUTPUT_TOOLTIPS = ("One condition image per driving frame (size x size).",
                       "The reference portrait's own condition image.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "face_motion": ("FACE_MOTION", {"tooltip": "The driving motion (from Extract Face Motion)."}),
                "translation_ratio": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.05, "tooltip":
                                      "How much of the driving head's movement across the image is applied "
                                      "(0 = the head stays where the reference is, as the official default)."}),
                "relative": ("BOOLEAN", {"default": False, "tooltip":
                             "Apply the driving head's rotation relative to its first frame on top of the reference's "
                             "own pose (needs reference_motion). Off = the driving rotation as is (official)."}),
                "size": ("INT", {"default": 512, "min": 128, "max": 2048, "step": 64, "tooltip":
                         "The generation size (width = height, in pixels); the pose square scales with it."}),
            },
            "optional": {
                "reference_motion": ("FACE_MOTION", {"tooltip":
                                     "Motion of the reference portrait (Extract Face Motion on it). Without it the "
                                     "driving clip's first frame stands in."}),
            },
        }

    def render(self, face_motion, translation_ratio: float, relative: bool, reference_motion=None, size: int = 512):
        if relative and reference_motion is None:
            raise HelloMemeError("Render Pose Condition: 'relative' needs a reference_motion (Extract Face Motion on the "
                                 "reference portrait); connect one or turn 'relative' off")
        drive = relative_motion(face_motion, reference_motion, expression=False) if relative else face_motion
        condition, reference = condition_images(drive, reference_motion, translation_ratio, size=size)
        to_image = lambda c: ((c.permute(1, 2, 3, 0) + 1.0) * 0.5).clamp(0, 1)  # noqa: E731  (3,F,S,S)->(F,S,S,3)
        return (to_image(condition), to_image(reference))


NODE_CLASS_MAPPINGS = {
    "HelloMemeLoadFaceAnalyzer": LoadFaceAnalyzer,
    "HelloMemeExtractFaceMotion": ExtractFaceMotion,
    "HelloMemeRenderPoseCondition": RenderPoseCondition,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "HelloMemeLoadFaceAnalyzer": "Load Face Analyzer",
    "HelloMemeExtractFaceMotion": "Extract Face Motion",
    "HelloMemeRenderPoseCondition": "Render Pose Condition",
}
