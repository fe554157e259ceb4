"""Command line of the HelloMeme extension: ``python -m hellomeme_core <command>``.

It uses only ``hellomeme_core`` and its third-party requirements, never ComfyUI, so it runs without a
ComfyUI process (model files, motion extraction, the demo).
"""
