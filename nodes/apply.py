"""Node "Apply HelloMeme": the user's MODEL patched for the per-frame image stage."""
from __future__ import annotations

from comfy_api.latest import io

from .comfy_glue.errors import named_errors
from .comfy_glue.image_stage import NODE, apply_image_stage
from .comfy_glue.socket_types import FaceMotion, HMModels, HMReference


class ApplyHelloMeme(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HelloMemeApply",
            display_name=NODE,
            category="HelloMeme",
            description="Patches a clone of the MODEL with HelloMeme: reference attention on the reference features and the "
                        "head-pose / expression control of every driving frame. Sample with a stock KSampler whose latent "
                        "batch has one latent per driving frame. Your MODEL itself is not changed.",
            inputs=[
                io.Model.Input("model", tooltip="Any SD1.5 MODEL (checkpoint, with LoRAs if you like). It is cloned, never modified."),
                HMModels.Input("hm_models", tooltip="From Load HelloMeme Models."),
                HMReference.Input("hm_reference", tooltip="From HelloMeme Reference, made at the same size as the generation."),
                io.Image.Input("condition", tooltip="Pose condition images, one per frame (Render Pose Condition); their size "
                                                    "is the generation size (multiples of 64)."),
                FaceMotion.Input("face_motion", tooltip="Driving face motion (Extract Face Motion): expression coefficients "
                                                        "and, with the official backend, face-part / PD-FGC embeddings."),
            ],
            outputs=[io.Model.Output(display_name="model", tooltip="The patched MODEL for KSampler (image stage), or for Apply HelloMeme Temporal.")],
        )

    @classmethod
    def execute(cls, model, hm_models, hm_reference, condition, face_motion) -> io.NodeOutput:
        with named_errors(NODE):
            return io.NodeOutput(apply_image_stage(model, hm_models, hm_reference, condition, face_motion))


NODES = [ApplyHelloMeme]
