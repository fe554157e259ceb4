"""Node "HelloMeme Reference": the reference portrait's UNet features at timestep 0, computed once."""
from __future__ import annotations

from comfy_api.latest import io

from .comfy_glue.errors import named_errors
from .comfy_glue.reference_pass import NODE, encode_reference
from .comfy_glue.socket_types import FaceMotion, HMModels, HMReference


class HelloMemeReference(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HelloMemeReference",
            display_name=NODE,
            category="HelloMeme",
            description="Encodes the reference portrait once: runs the MODEL's UNet on its latent at timestep 0 (and on a "
                        "zero latent for the negative side, as the official pipelines do) and keeps the features "
                        "HelloMeme's reference attention reads at every step.",
            inputs=[
                io.Model.Input("model", tooltip="SD1.5 MODEL for the reference pass. Official (stylize x1): plain SD1.5 here, "
                                                "your stylised checkpoint only as the denoiser (Apply HelloMeme); any SD1.5 "
                                                "MODEL works."),
                io.Vae.Input("vae", tooltip="VAE that encodes the reference image (the SD1.5 VAE of your checkpoint)."),
                io.Image.Input("image", tooltip="The reference portrait cut to the official face crop (the face_crop output "
                                                "of Extract Face Motion on the portrait); its size must equal the generation "
                                                "size (multiples of 64, e.g. 512x512). Only the first image is used."),
                io.Conditioning.Input("positive", tooltip="Prompt for the reference pass (the official pipelines use the main prompt)."),
                io.Conditioning.Input("negative", tooltip="Negative prompt, used with the zero-latent unconditional reference."),
                HMModels.Input("hm_models", optional=True, tooltip="Only for v5c: its reference pass also takes the reference face's control features."),
                io.Image.Input("reference_condition", optional=True, tooltip="v5c only: pose condition image of the reference face (Render Pose Condition)."),
                FaceMotion.Input("reference_motion", optional=True, tooltip=
                                 "Face motion of the reference portrait (Extract Face Motion). Every version: checks that "
                                 "image is the face crop the reference pose was measured in (a warning if not). v5c: its "
                                 "expression also goes into the reference pass."),
            ],
            outputs=[HMReference.Output(display_name="hm_reference", tooltip="Reference features for Apply HelloMeme (valid for this image size only).")],
        )

    @classmethod
    def execute(cls, model, vae, image, positive, negative, hm_models=None, reference_condition=None,
                reference_motion=None) -> io.NodeOutput:
        with named_errors(NODE):
            return io.NodeOutput(encode_reference(model, vae, image, positive, negative, hm_models,
                                                  reference_condition, reference_motion))


NODES = [HelloMemeReference]
