"""The ComfyUI glue layer: everything between the node schemas (``nodes/*.py``) and the pure-torch core.

Here live the UNet patches, the step sources that feed them, the HelloMeme networks as ComfyUI models,
the reference pass, input checks and progress reporting. Modules here import ComfyUI and
``hellomeme_core``; they never import a node module, and node modules never import each other.
"""
