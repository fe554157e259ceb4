"""Node "HelloMeme Paste Back": the generated face crops put back into the full-resolution reference picture."""
from __future__ import annotations

from comfy_api.latest import io

from hellomeme_core.face.paste_back import DEFAULT_FEATHER, MAX_FEATHER

from .comfy_glue.errors import named_errors
from .comfy_glue.paste_back import NODE, paste_back_images
from .comfy_glue.socket_types import FaceMotion


class HelloMemePasteBack(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HelloMemePasteBack",
            display_name=NODE,
            category="HelloMeme",
            description="Puts every generated face crop back into the full reference picture, where the official crop "
                        "was cut from: resized to the crop's size, blended with a soft edge and colour-matched at the "
                        "seam. The result is the whole picture at its own resolution, one image per generated frame.",
            inputs=[
                io.Image.Input("images", tooltip="The generated frames, decoded (VAE Decode of the HelloMeme sampler's "
                                                 "output): square face crops at any generation size (512, 768, ...)."),
                io.Image.Input("reference_image", tooltip="The full reference portrait as loaded (Load Image), before any "
                                                          "crop or resize: the picture the crops go back into."),
                FaceMotion.Input("reference_motion", tooltip="Extract Face Motion run on this same reference_image: its "
                                                             "crop box says where the face crop was cut."),
                io.Float.Input("feather", default=DEFAULT_FEATHER, min=0.0, max=MAX_FEATHER, step=0.01, tooltip=
                               "Width of the soft edge, as a fraction of the crop's side (0.08 = 8 %). 0 = hard edge. "
                               "Wider hides the seam better but shows more of the original picture near the crop's border."),
                io.Boolean.Input("color_match", default=True, tooltip=
                                 "Match the generated crop's colours to the picture near the seam (a smooth correction "
                                 "that fades out toward the face, so the face keeps its generated look). Turn off to "
                                 "keep the generated colours everywhere."),
                # Optional so saved workflows and API prompts made before it existed load, with the default.
                io.Int.Input("max_side", default=0, min=0, max=16384, step=8, optional=True, tooltip=
                             "Longest side of the pasted pictures in pixels; 0 = the reference picture's own size. A "
                             "large photo costs memory for every frame (4032x3024: 146 MB a frame, 35 GB for 30 s at "
                             "8 fps); 1920 or 1280 keeps long clips in memory. Never enlarges."),
            ],
            outputs=[io.Image.Output(display_name="images", tooltip=
                                     "One full picture per generated frame, at the reference picture's size "
                                     "(or scaled to max_side).")],
        )

    @classmethod
    def execute(cls, images, reference_image, reference_motion, feather: float = DEFAULT_FEATHER,
                color_match: bool = True, max_side: int = 0) -> io.NodeOutput:
        with named_errors(NODE):
            return io.NodeOutput(paste_back_images(images, reference_image, reference_motion, feather, color_match,
                                                   max_side))


NODES = [HelloMemePasteBack]
