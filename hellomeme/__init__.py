"""Command line of the HelloMeme extension: ``python -m hellomeme <command>``."""
