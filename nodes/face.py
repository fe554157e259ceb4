"""Nodes "Load Face Analyzer", "Extract Face Motion", "Render Pose Condition": the driving motion."""
from __future__ import annotations

from comfy_api.latest import io

from hellomeme_core.face.analyzer import BACKENDS, DETECTORS
from hellomeme_core.face.face_choice import LARGEST, MAX_FACES
from hellomeme_core.face.no_face import POLICIES

from .comfy_glue.errors import named_errors
from .comfy_glue.face_motion import extract, insightface_pack_choices, load_analyzer, render
from .comfy_glue.socket_types import FaceAnalyzer, FaceMotion

MIN_SIZE, SIZE_STEP = 128, 64


class LoadFaceAnalyzer(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        packs, default_pack = insightface_pack_choices()
        return io.Schema(
            node_id="HelloMemeLoadFaceAnalyzer",
            display_name="Load Face Analyzer",
            category="HelloMeme",
            description="Chooses how faces are analysed. 'mediapipe' is built in and needs no download; 'official' uses the "
                        "HelloMeme face toolkit (four ONNX files of hello_group_facemodel) placed in ComfyUI/models/hellomeme. "
                        "With pd_fgc on (either backend) it also computes the PD-FGC expression embedding, the official "
                        "default expression input, from pd_fgc_motion in the same folder.",
            inputs=[
                io.Combo.Input("backend", options=list(BACKENDS), default="mediapipe", tooltip=
                               "mediapipe: built in, CPU, nothing to download. official: the HelloMeme ONNX face toolkit (the "
                               "pose and expression the official weights were trained on); needs its files in models/hellomeme."),
                io.Combo.Input("device", options=["auto", "cpu", "cuda"], default="auto", tooltip=
                               "Where the official toolkit runs (auto: the GPU when onnxruntime has CUDA, else CPU) and the "
                               "PD-FGC encoder runs (auto: ComfyUI's device). mediapipe always runs on the CPU."),
                # Optional so saved workflows and API prompts made before it existed load, with the default.
                io.Boolean.Input("pd_fgc", default=True, optional=True, tooltip=
                                 "The PD-FGC expression embedding, the official default expression input (Load HelloMeme "
                                 "Models' expression_mode pd_fgc). Needs pd_fgc_motion in ComfyUI/models/hellomeme "
                                 "(python -m hellomeme_core download --id pd_fgc_motion). Off: only the ARKit coefficients "
                                 "(expression_mode arkit)."),
                io.Combo.Input("detector", options=list(DETECTORS), default="built-in", optional=True, tooltip=
                               "Who finds the faces. built-in: the backend's own detector. insightface: the SCRFD detector "
                               "of an insightface pack (insightface_pack), which finds faces mediapipe misses (stylised or "
                               "cartoon portraits, strong profiles, small faces); its boxes feed the same landmarks, pose "
                               "and crop."),
                io.Combo.Input("insightface_pack", options=packs, default=default_pack, optional=True, tooltip=
                               "The insightface model pack in ComfyUI/models/insightface (models/<pack>/ or <pack>/, as "
                               "IPAdapter FaceID and InstantID keep them): antelopev2 or buffalo_l. Used by the insightface "
                               "detector and by Extract Face Motion's identity_image. Never downloaded (non-commercial "
                               "research licence): place the files yourself."),
            ],
            outputs=[FaceAnalyzer.Output(display_name="face_analyzer", tooltip="The face analyzer to give to Extract Face Motion.")],
        )

    @classmethod
    def execute(cls, backend: str, device: str, pd_fgc: bool = True, detector: str = "built-in",
                insightface_pack: str = "antelopev2") -> io.NodeOutput:
        with named_errors("Load Face Analyzer"):
            return io.NodeOutput(load_analyzer(backend, device, pd_fgc, detector, insightface_pack))


class ExtractFaceMotion(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HelloMemeExtractFaceMotion",
            display_name="Extract Face Motion",
            category="HelloMeme",
            description="Finds the face in every frame and measures its head pose (rotation, translation) and 51 ARKit "
                        "expression coefficients: the FACE_MOTION that drives HelloMeme. Also returns the frames with the "
                        "tracked landmarks and pose axes drawn (red border = no face found, value filled by the policy).",
            inputs=[
                FaceAnalyzer.Input("face_analyzer", tooltip="From Load Face Analyzer."),
                io.Image.Input("images", tooltip="One portrait or the frames of a driving video (e.g. from Load Video)."),
                io.Combo.Input("no_face_policy", options=list(POLICIES), default="hold", tooltip=
                               "Frames without a face: hold the last good frame, interpolate between good frames, "
                               "drop them from the motion, or stop with an error."),
                io.Float.Input("smoothing", default=0.0, min=0.0, max=1.0, step=0.05, tooltip=
                               "Temporal smoothing (One Euro filter) of pose and expression, beyond the official pipeline "
                               "(which smooths nothing: 0, the default): 0 = raw, 1 = strongest; 0.3 is a good start. "
                               "Removes jitter while fast moves still pass."),
                io.Float.Input("fps", default=25.0, min=1.0, max=240.0, step=0.01, tooltip=
                               "Frame rate of the frames (for smoothing and the saved motion); use the video's own."),
                io.ClipVision.Input("clip_vision", optional=True, tooltip=
                                    "Optional CLIP vision encoder (the one of your HelloMeme version): adds the eye/mouth "
                                    "face-part embeddings that v1/v2 and v5 expression use."),
                # Optional so saved workflows and API prompts made before these two existed load, with the defaults.
                io.Int.Input("face_index", default=LARGEST, min=LARGEST, max=MAX_FACES - 1, step=1, optional=True, tooltip=
                             "Which face to follow when a frame shows several: -1 = the largest (as the official "
                             f"pipeline), 0 = the leftmost, 1 = the next to its right, ... (up to {MAX_FACES} faces are "
                             "looked for). A frame with fewer faces counts as a frame without a face."),
                io.Int.Input("crop_size", default=512, min=MIN_SIZE, max=2048, step=SIZE_STEP, optional=True, tooltip=
                             "Size of the face_crop output (width = height, a multiple of 64): your generation size, the "
                             "same as Render Pose Condition's size. The pose is measured in the official 512 crop whatever "
                             "this is."),
                io.Image.Input("identity_image", optional=True, tooltip=
                               "Optional picture of the person to follow when the frames show several people: in every "
                               "frame the face most like it (ArcFace identity, insightface pack of Load Face Analyzer) is "
                               "followed, across crossings and swaps; face_index is then ignored. Frames where the person "
                               "is not found count as frames without a face."),
            ],
            outputs=[
                FaceMotion.Output(display_name="face_motion", tooltip=
                                  "Per-frame head pose and expression (plus face-part embeddings when a CLIP vision model is connected)."),
                io.Image.Output(display_name="preview", tooltip=
                                "The frames with landmarks (yellow) and head axes (red x, green y, blue facing) drawn on."),
                io.Int.Output(display_name="frames_without_face", tooltip=
                              "How many input frames had no face, under every policy (with 'drop' they are left out of the "
                              "motion; otherwise their values come from the policy)."),
                io.Image.Output(display_name="face_crop", tooltip=
                                "The official reference crop: feed this to HelloMeme Reference. The frames cut to the "
                                "official face crop (the square the pose was measured in), crop_size x crop_size."),
            ],
        )

    @classmethod
    def validate_inputs(cls, crop_size: int | None = None, face_index: int | None = None, **kwargs) -> bool | str:
        # Checked when the prompt is queued: the API does not enforce the widgets' limits and step.
        if crop_size is not None and (crop_size < MIN_SIZE or crop_size % SIZE_STEP):
            return (f"crop_size {crop_size} is not a multiple of {SIZE_STEP} (from {MIN_SIZE}); use your generation "
                    f"size, e.g. 512 (the size the official weights were trained at).")
        if face_index is not None and not LARGEST <= face_index < MAX_FACES:
            return (f"face_index {face_index} is out of range: -1 for the largest face, or 0 to {MAX_FACES - 1} for a "
                    f"face counted from the left.")
        return True

    @classmethod
    def execute(cls, face_analyzer, images, no_face_policy: str, smoothing: float, fps: float, clip_vision=None,
                face_index: int = LARGEST, crop_size: int = 512, identity_image=None) -> io.NodeOutput:
        with named_errors("Extract Face Motion"):
            return io.NodeOutput(*extract(face_analyzer, images, no_face_policy, smoothing, fps, clip_vision,
                                          face_index, crop_size, identity_image))


class RenderPoseCondition(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HelloMemeRenderPoseCondition",
            display_name="Render Pose Condition",
            category="HelloMeme",
            description="Draws the head-pose condition frames exactly as the official HelloMeme code does: a projected "
                        "face square in four colours per frame. With a reference motion, the square sits where the "
                        "reference head is; 'relative' applies the driving head's turns on top of the reference's own pose.",
            inputs=[
                FaceMotion.Input("face_motion", tooltip="The driving motion (from Extract Face Motion)."),
                io.Float.Input("translation_ratio", default=0.5, min=0.0, max=1.0, step=0.05, tooltip=
                               "How much of the driving head's movement across the image is applied, relative to its "
                               "first frame (0 = the head stays where the reference is). 0.5 as the official video "
                               "script (inference_video.py; the official web app's slider starts at 0)."),
                io.Boolean.Input("relative", default=False, tooltip=
                                 "Apply the driving head's rotation relative to its first frame on top of the reference's "
                                 "own pose (needs reference_motion). Off = the driving rotation as is (official)."),
                io.Int.Input("size", default=512, min=MIN_SIZE, max=2048, step=SIZE_STEP, tooltip=
                             "The generation size (width = height, in pixels, a multiple of 64); the pose square scales "
                             "with it. The reference image must have the same size."),
                FaceMotion.Input("reference_motion", optional=True, tooltip=
                                 "Motion of the reference portrait (Extract Face Motion on it). Without it the "
                                 "driving clip's first frame stands in."),
            ],
            outputs=[
                io.Image.Output(display_name="condition", tooltip="One condition image per driving frame (size x size)."),
                io.Image.Output(display_name="reference_condition", tooltip="The reference portrait's own condition image."),
            ],
        )

    @classmethod
    def validate_inputs(cls, size: int | None = None, **kwargs) -> bool | str:
        # Checked when the prompt is queued, not minutes into the run: the API does not enforce the widget's step.
        if size is not None and (size < MIN_SIZE or size % SIZE_STEP):
            return (f"size {size} is not a multiple of {SIZE_STEP} (from {MIN_SIZE}); the control networks need "
                    f"multiples of 64, e.g. 512 (the size the official weights were trained at).")
        return True

    @classmethod
    def execute(cls, face_motion, translation_ratio: float, relative: bool, reference_motion=None, size: int = 512) -> io.NodeOutput:
        with named_errors("Render Pose Condition"):
            return io.NodeOutput(*render(face_motion, translation_ratio, relative, reference_motion, size))


NODES = [LoadFaceAnalyzer, ExtractFaceMotion, RenderPoseCondition]
