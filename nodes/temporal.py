"""Node "Apply HelloMeme Temporal": motion modules and overlapping context windows on a patched MODEL."""
from __future__ import annotations

from comfy_api.latest import io

from .comfy_glue.errors import named_errors
from .comfy_glue.socket_types import HMModels
from .comfy_glue.temporal import NODE, apply_temporal


class ApplyHelloMemeTemporal(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HelloMemeApplyTemporal",
            display_name=NODE,
            category="HelloMeme",
            description="Adds HelloMeme's temporal stage to a MODEL from Apply HelloMeme: the motion modules of the version, "
                        "run over overlapping windows of frames whose outputs are averaged. Any number of frames works. "
                        "With image_stage_latents (a KSampler run of the Apply HelloMeme MODEL over all frames), the v3-v5 "
                        "motion modules see each window's first and last image-stage frame as their pads. This windowing "
                        "is not the official video schedule (see the README, 'Where the nodes differ').",
            inputs=[
                io.Model.Input("model", tooltip="The MODEL output of Apply HelloMeme (the same HelloMeme version)."),
                HMModels.Input("hm_models", tooltip="From Load HelloMeme Models; needs the version's motion files."),
                io.Int.Input("window_length", default=12, min=2, max=32, tooltip=
                             "Frames per window (the official motion modules were trained on 12). Fewer frames than this run as one window."),
                io.Int.Input("overlap", default=4, min=0, max=31, tooltip=
                             "Frames shared by neighbouring windows; their outputs are averaged."),
                io.Latent.Input("image_stage_latents", optional=True, tooltip=
                                "Optional: the image stage's result (KSampler on the Apply HelloMeme MODEL, one latent per frame). "
                                "v3-v5: each window's motion pads are the reference pass of its first and last frame. Without it "
                                "v3/v4 use the reference portrait's features as pads and v5 runs without pads. v1/v2 have no pads."),
            ],
            outputs=[io.Model.Output(display_name="model", tooltip=
                     "MODEL with the temporal modules and context windows, for KSampler (or KSampler (Advanced) "
                     "to refine v1/v2 image-stage latents).")],
        )

    @classmethod
    def validate_inputs(cls, window_length: int | None = None, overlap: int | None = None, **kwargs) -> bool | str:
        if window_length is not None and overlap is not None and overlap >= window_length:
            return f"overlap ({overlap}) must be smaller than window_length ({window_length})."
        return True

    @classmethod
    def execute(cls, model, hm_models, window_length: int = 12, overlap: int = 4, image_stage_latents=None) -> io.NodeOutput:
        with named_errors(NODE):
            return io.NodeOutput(apply_temporal(model, hm_models, window_length, overlap, image_stage_latents))


NODES = [ApplyHelloMemeTemporal]
