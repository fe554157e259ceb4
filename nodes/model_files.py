"""Node "HelloMeme Model Files": which HelloMeme versions the model folders hold, and what is missing."""
from __future__ import annotations

from comfy_api.latest import io, ui

from hellomeme_core.versions import VERSIONS

from .comfy_glue.model_files_report import ALL, build_report


class HelloMemeModelFiles(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HelloMemeModelFiles",
            display_name="HelloMeme Model Files",
            category="HelloMeme",
            description="Checks the HelloMeme model folders (ComfyUI/models/hellomeme and any 'hellomeme:' entries of "
                        "extra_model_paths.yaml) against the official weight layout, reading only file headers. "
                        "Shows per version what is present, missing or wrong.",
            is_output_node=True,
            inputs=[
                io.Combo.Input("version", options=[ALL, *VERSIONS], default=ALL,
                               tooltip="Which HelloMeme version to check; 'all' checks v1 to v5c."),
                io.Boolean.Input("include_toolkit", default=True, tooltip=
                                 "Also list the optional files: the official face toolkit (ONNX + PD-FGC), the CLIP "
                                 "vision encoder for face parts and the suggested SD1.5 checkpoint."),
            ],
            outputs=[
                io.String.Output(display_name="report", tooltip=
                                 "The full report: each version with its files (ok / missing / wrong / corrupt) and where they were found."),
                io.String.Output(display_name="versions_found", tooltip=
                                 "Comma-separated versions whose image stage has every file, e.g. 'v5,v5b'. Empty when none."),
            ],
        )

    @classmethod
    def fingerprint_inputs(cls, **kwargs):
        # Files may appear or change between runs; the check reads headers only, so always re-run it.
        return float("nan")

    @classmethod
    def execute(cls, version: str = ALL, include_toolkit: bool = True) -> io.NodeOutput:
        text, found = build_report(version, include_toolkit)
        return io.NodeOutput(text, ",".join(found), ui=ui.PreviewText(text))


NODES = [HelloMemeModelFiles]
