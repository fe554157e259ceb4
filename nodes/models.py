"""Node "Load HelloMeme Models": one version's reference adapter, control networks and temporal modules."""
from __future__ import annotations

from comfy_api.latest import io, ui

from hellomeme_core.versions import EXPRESSION_MODES, VERSIONS

from .comfy_glue.errors import named_errors
from .comfy_glue.loading import AUTO, AUTO_IMAGE, PRECISIONS, describe, files_fingerprint, load_models
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
                io.Combo.Input("version", options=[AUTO, AUTO_IMAGE, *VERSIONS], default=AUTO, tooltip=
                               "HelloMeme release. 'auto' (videos) picks the first version whose files are all in "
                               "models/hellomeme in the order v5, v4, v3, v2, v1 (the official video versions), then v5b, v5c; "
                               "'auto (single image)' picks v5c first, the official default for one image. The node shows "
                               "which one it loaded, and runs again when files are added or replaced."),
                io.Combo.Input("precision", options=[AUTO, *PRECISIONS], default=AUTO, tooltip=
                               "dtype of the HelloMeme networks. 'auto' follows ComfyUI's choice for UNets on this device "
                               "(fp16 on most GPUs, fp32 on CPU)."),
                # Optional so saved workflows and API prompts made before it existed load, with the default.
                io.Combo.Input("expression_mode", options=list(EXPRESSION_MODES), default="pd_fgc", optional=True, tooltip=
                               "Which expression input drives the control networks, as the official 'Control Version': "
                               "pd_fgc (official default, HMControlNet2): the PD-FGC embedding of each face (Load Face "
                               "Analyzer with pd_fgc on); arkit (HMControlNet1): the 51 ARKit coefficients + CLIP eye/mouth "
                               "embeddings (connect a CLIP vision model to Extract Face Motion). v1/v2 run only that one net."),
            ],
            outputs=[HMModels.Output(display_name="hm_models", tooltip=
                     "The loaded HelloMeme networks; connect to HelloMeme Reference, Apply HelloMeme and Apply HelloMeme Temporal.")],
        )

    @classmethod
    def fingerprint_inputs(cls, version: str = AUTO, precision: str = AUTO, expression_mode: str = "pd_fgc"):
        return (files_fingerprint(version), precision, expression_mode)

    @classmethod
    def execute(cls, version: str = AUTO, precision: str = AUTO, expression_mode: str = "pd_fgc") -> io.NodeOutput:
        with named_errors(NAME):
            models = load_models(version, precision, expression_mode)
        return io.NodeOutput(models, ui=ui.PreviewText(describe(models)))


NODES = [LoadHelloMemeModels]
