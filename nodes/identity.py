"""Node "Identity Similarity": does the generated face stay the reference's person (ArcFace CSIM)?"""
from __future__ import annotations

from comfy_api.latest import io, ui

from hellomeme_core.face.insightface.identity import DEFAULT_THRESHOLD

from .comfy_glue.errors import named_errors
from .comfy_glue.face_motion import insightface_pack_choices
from .comfy_glue.identity import NODE, identity_report


class HelloMemeIdentitySimilarity(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        packs, default_pack = insightface_pack_choices()
        return io.Schema(
            node_id="HelloMemeIdentitySimilarity",
            display_name=NODE,
            category="HelloMeme",
            description="How much every generated frame still looks like the reference person: the ArcFace cosine "
                        "similarity (CSIM, the identity measure of portrait-animation papers) between the reference "
                        "portrait's face and each frame's face, with an insightface pack from ComfyUI/models/insightface. "
                        "Shows mean and min, warns when a frame falls below the threshold, and plots the values.",
            inputs=[
                io.Image.Input("reference", tooltip="The reference portrait (its first image; its largest face is the person)."),
                io.Image.Input("frames", tooltip="The generated frames (after VAE Decode or Paste Back)."),
                io.Combo.Input("insightface_pack", options=packs, default=default_pack, tooltip=
                               "The insightface model pack in ComfyUI/models/insightface (antelopev2 or buffalo_l, as "
                               "IPAdapter FaceID and InstantID use). Never downloaded: non-commercial research licence."),
                io.Float.Input("threshold", default=DEFAULT_THRESHOLD, min=0.0, max=1.0, step=0.01, tooltip=
                               "Warn when a frame's similarity falls below this. ArcFace cosine similarity: 1 = the same "
                               "picture, about 0.5-0.8 the same person in other pictures, under 0.3 usually someone else. "
                               "0.5 flags clear identity drift."),
            ],
            outputs=[
                io.Float.Output(display_name="mean", tooltip="Mean similarity over the frames with a face (0 if none)."),
                io.Float.Output(display_name="min", tooltip="Lowest similarity of a frame with a face (0 if none)."),
                io.String.Output(display_name="json", tooltip=
                                 "Per-frame values (null: no face), mean, min, frames below the threshold, as JSON."),
                io.Image.Output(display_name="plot", tooltip="The per-frame similarity with the threshold line."),
            ],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, threshold: float | None = None, **kwargs) -> bool | str:
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            return f"threshold {threshold} is out of range: use 0 to 1 (0.5 is a good start)."
        return True

    @classmethod
    def execute(cls, reference, frames, insightface_pack: str, threshold: float = DEFAULT_THRESHOLD) -> io.NodeOutput:
        with named_errors(NODE):
            mean, low, text_json, plot, text = identity_report(reference, frames, insightface_pack, threshold)
        return io.NodeOutput(mean, low, text_json, plot, ui=ui.PreviewText(text))


NODES = [HelloMemeIdentitySimilarity]
