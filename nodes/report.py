"""Node "Motion Fidelity Report": how closely a generated video follows its driving clip."""
from __future__ import annotations

from comfy_api.latest import io, ui

from .comfy_glue.errors import named_errors
from .comfy_glue.report import NODE, fidelity_report
from .comfy_glue.socket_types import FaceMotion

MAX_LAG = 60


class HelloMemeMotionFidelityReport(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HelloMemeMotionFidelityReport",
            display_name=NODE,
            category="HelloMeme",
            description="Compares the motion of a generated video with its driving clip: head-pose error per axis "
                        "(APD, degrees), expression error over the 51 coefficients (AED), mouth-open correlation, "
                        "landmark distance after alignment, jitter of both, the delay between them, and with a "
                        "reference the identity drift. Shows plots of the curves and errors; the JSON holds every number.",
            inputs=[
                FaceMotion.Input("driving_motion", tooltip=
                                 "Extract Face Motion run on the driving clip (the frames given to HelloMeme)."),
                FaceMotion.Input("result_motion", tooltip=
                                 "Extract Face Motion run on the generated frames (after VAE Decode). Use the same "
                                 "fps on both Extract Face Motion nodes unless the clips really differ in rate."),
                FaceMotion.Input("reference_motion", optional=True, tooltip=
                                 "Optional: Extract Face Motion run on the reference portrait. Adds the identity drift "
                                 "(how far the result's face shape moves from the portrait's)."),
                io.Image.Input("driving_images", optional=True, tooltip=
                               "Optional, with result_images: the driving frames, for PSNR/SSIM. Only meaningful when "
                               "the result re-enacts its own driving clip (same person, same framing)."),
                io.Image.Input("result_images", optional=True, tooltip=
                               "Optional, with driving_images: the generated frames, for PSNR/SSIM (resized to the "
                               "driving frames' size when they differ)."),
                io.Int.Input("max_lag", default=12, min=0, max=MAX_LAG, step=1, optional=True, tooltip=
                             "Largest delay looked for between the two clips, in frames either way (at most half the "
                             "clip). 0 = do not look for a delay."),
            ],
            outputs=[
                io.Image.Output(display_name="plots", tooltip=
                                "Two pictures: driving vs result pose and mouth curves over time, and the error "
                                "histograms with the summary."),
                io.String.Output(display_name="json", tooltip=
                                 "The whole report as JSON (summary, notes, per-frame values) for scripts or Save Text."),
            ],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, max_lag: int | None = None, **kwargs) -> bool | str:
        if max_lag is not None and not 0 <= max_lag <= MAX_LAG:
            return f"max_lag {max_lag} is out of range: use 0 to {MAX_LAG} frames (12 is a good start)."
        return True

    @classmethod
    def execute(cls, driving_motion, result_motion, reference_motion=None, driving_images=None, result_images=None,
                max_lag: int = 12) -> io.NodeOutput:
        with named_errors(NODE):
            plots, text, summary = fidelity_report(driving_motion, result_motion, reference_motion, driving_images,
                                                   result_images, max_lag)
        return io.NodeOutput(plots, text, ui=ui.PreviewImage(plots, cls=cls))


NODES = [HelloMemeMotionFidelityReport]
