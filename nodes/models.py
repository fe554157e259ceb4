"""Node "Load HelloMeme Models": one version's reference adapter, control networks and temporal modules."""
from __future__ import annotations

from comfy_api.latest import io, ui

from hellomeme_core.versions import VERSIONS

from .comfy_glue.errors import named_errors
from .comfy_glue.loading import AUTO, PRECISIONS, describe, files_fingerprint, load_models
from .comfy_glue.socket_types import HMModels

NAME = "Load HelloMeme Models"


class LoadHelloMemeModels(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HelloMemeLoadModels",
            display_name=NAME,
            category="HelloMeme",
            description="Loads the HelloMeme networks of one version from ComfyUI/models/hellomeme: the reference adapter, "
                        "the control networks and, when present, the temporal (motion) modules. ComfyUI's model manager "
                        "loads them to the GPU with the UNet and offloads them with it.",
            inputs=[
                io.Combo.Input("version", options=[AUTO, *VERSIONS], default=AUTO, tooltip=
                               "HelloMeme release. 'auto' picks the newest version whose files are all in models/hellomeme "
                               "(the node shows which one it loaded, and runs again when files are added or replaced)."),
                io.Combo.Input("precision", options=[AUTO, *PRECISIONS], default=AUTO, tooltip=
                               "dtype of the HelloMeme networks. 'auto' follows ComfyUI's choice for UNets on this device "
                               "(fp16 on most GPUs, fp32 on CPU)."),
            ],
            outputs=[HMModels.Output(display_name="hm_models", tooltip=
                     "The loaded HelloMeme networks; connect to HelloMeme Reference, Apply HelloMeme and Apply HelloMeme Temporal.")],
        )

    @classmethod
    def fingerprint_inputs(cls, version: str = AUTO, precision: str = AUTO):
        return (files_fingerprint(version), precision)

    @classmethod
    def execute(cls, version: str = AUTO, precision: str = AUTO) -> io.NodeOutput:
        with named_errors(NAME):
            models = load_models(version, precision)
        return io.NodeOutput(models, ui=ui.PreviewText(describe(models)))


NODES = [LoadHelloMemeModels]
