"""Nodes "Extract Body Motion", "Render Skeleton Condition": body and hands as an OpenPose condition for a stock
ControlNet, next to HelloMeme in the same graph."""
from __future__ import annotations

from comfy_api.latest import io

from hellomeme_core.face.no_face import POLICIES

from .comfy_glue.body_motion import extract, render
from .comfy_glue.errors import named_errors
from .comfy_glue.socket_types import BodyMotion, FaceMotion

MIN_SIZE, SIZE_STEP, MAX_SIZE = 64, 8, 4096


class ExtractBodyMotion(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HelloMemeExtractBodyMotion",
            display_name="Extract Body Motion",
            category="HelloMeme",
            description="Finds one person in every frame with mediapipe pose (33 body points) and hands (21 points "
                        "each), built in, CPU, nothing to download. Feed the BODY_MOTION to Render Skeleton Condition "
                        "for a stock ControlNet OpenPose model. Also returns the frames with the skeleton drawn on "
                        "(red border = no person found, values filled by the policy).",
            inputs=[
                io.Image.Input("images", tooltip="The frames of the driving video (e.g. from Load Driving Video), or "
                                                 "one picture (the reference, for retargeting)."),
                io.Boolean.Input("hands", default=True, tooltip=
                                 "Also track both hands (21 points each). Off is faster and draws no hands. A hand "
                                 "counts only where it sits at the body's wrist (an ear or a pattern taken for a hand "
                                 "is ignored)."),
                io.Float.Input("smoothing", default=0.3, min=0.0, max=1.0, step=0.05, tooltip=
                               "Temporal smoothing (One Euro filter) of the keypoints: 0 = raw, 1 = strongest. "
                               "Removes jitter while fast moves still pass."),
                io.Combo.Input("no_person_policy", options=list(POLICIES), default="hold", tooltip=
                               "Frames without a person: hold the last good frame, interpolate between good frames, "
                               "drop them from the motion, or stop with an error."),
                io.Float.Input("min_confidence", default=0.5, min=0.05, max=0.95, step=0.05, tooltip=
                               "How sure mediapipe must be: to find the person and hands, and for a body point to "
                               "be drawn (points below it, e.g. hips outside an upper-body shot, are left out)."),
                io.Float.Input("fps", default=8.0, min=1.0, max=240.0, step=0.01, tooltip=
                               "Frame rate of the frames (for smoothing); connect Load Driving Video's fps."),
            ],
            outputs=[
                BodyMotion.Output(display_name="body_motion", tooltip=
                                  "Per-frame body (33) and hand (2 x 21) keypoints with their confidence."),
                io.Image.Output(display_name="preview", tooltip="The frames with the skeleton and hands drawn on."),
                io.Int.Output(display_name="frames_without_person", tooltip=
                              "How many input frames had no person, under every policy."),
            ],
        )

    @classmethod
    def execute(cls, images, hands: bool, smoothing: float, no_person_policy: str, min_confidence: float,
                fps: float = 8.0) -> io.NodeOutput:
        with named_errors("Extract Body Motion"):
            return io.NodeOutput(*extract(images, hands, smoothing, no_person_policy, min_confidence, fps))


class RenderSkeletonCondition(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HelloMemeRenderSkeletonCondition",
            display_name="Render Skeleton Condition",
            category="HelloMeme",
            description="Draws the body motion in the OpenPose convention (18 body points, 21 per hand, white face "
                        "dots, on black) so a stock ControlNet OpenPose model (control_v11p_sd15_openpose) adds body "
                        "and hand control next to HelloMeme. With a reference motion the limbs take the reference "
                        "person's lengths and keep the driving angles.",
            inputs=[
                BodyMotion.Input("body_motion", tooltip="The driving body motion (from Extract Body Motion)."),
                io.Int.Input("width", default=512, min=MIN_SIZE, max=MAX_SIZE, step=SIZE_STEP, tooltip=
                             "Width of the condition frames: your generation width (the driving frames are fitted "
                             "in whole, centred, without distortion)."),
                io.Int.Input("height", default=512, min=MIN_SIZE, max=MAX_SIZE, step=SIZE_STEP, tooltip=
                             "Height of the condition frames: your generation height."),
                io.Boolean.Input("draw_hands", default=True, tooltip="Draw the hands (where they were found)."),
                io.Boolean.Input("draw_face", default=True, tooltip=
                                 "Draw the 70 OpenPose face points from face_motion (mediapipe face analyzer) as white "
                                 "dots; nothing without a face_motion."),
                FaceMotion.Input("face_motion", optional=True, tooltip=
                                 "Optional: the driving face motion (Extract Face Motion with the mediapipe analyzer "
                                 "on the same frames), for the face points."),
                BodyMotion.Input("reference_motion", optional=True, tooltip=
                                 "Optional: Extract Body Motion of the reference picture. The skeleton then has the "
                                 "reference person's proportions and starts where the reference body is."),
            ],
            outputs=[io.Image.Output(display_name="condition", tooltip=
                                     "One skeleton image per frame (width x height): the ControlNet's image input.")],
        )

    @classmethod
    def validate_inputs(cls, width: int | None = None, height: int | None = None, **kwargs) -> bool | str:
        # Checked when the prompt is queued: the API does not enforce the widgets' limits and step.
        for name, value in (("width", width), ("height", height)):
            if value is not None and not (MIN_SIZE <= value <= MAX_SIZE and value % SIZE_STEP == 0):
                return (f"{name} {value} must be a multiple of {SIZE_STEP} from {MIN_SIZE} to {MAX_SIZE}: use your "
                        "generation size, e.g. 512.")
        return True

    @classmethod
    def execute(cls, body_motion, width: int, height: int, draw_hands: bool, draw_face: bool, face_motion=None,
                reference_motion=None) -> io.NodeOutput:
        with named_errors("Render Skeleton Condition"):
            return io.NodeOutput(render(body_motion, width, height, face_motion, reference_motion, draw_hands, draw_face))


NODES = [ExtractBodyMotion, RenderSkeletonCondition]
