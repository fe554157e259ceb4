"""HelloMeme for ComfyUI: entry point ComfyUI imports from custom_nodes/<this folder>."""
from __future__ import annotations

import os
import sys

# ``hellomeme_core`` is imported absolutely by the nodes; append (never prepend) our folder so that
# ComfyUI's own top-level modules (its ``nodes.py`` above all) are never shadowed by ours.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.append(_HERE)

try:
    import folder_paths  # noqa: F401  (always importable when ComfyUI loads us)
except ImportError:
    # Imported outside ComfyUI (pytest resolving the package tree, a script): there are no nodes to offer.
    NODE_CLASS_MAPPINGS: dict = {}
    NODE_DISPLAY_NAME_MAPPINGS: dict = {}
else:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = None
__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
