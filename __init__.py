"""HelloMeme for ComfyUI: the entry point ComfyUI imports from custom_nodes/<this folder>.

ComfyUI's V3 extension API: ``comfy_entrypoint`` returns the extension, whose node list is every node
of ``nodes/`` plus the deprecated aliases of ids shipped earlier. (ComfyUI reads the V1
``NODE_CLASS_MAPPINGS`` first when a module has it, so this module deliberately defines none.)
"""
from __future__ import annotations

import os
import sys

# ``hellomeme_core`` is imported absolutely by the nodes; append (never prepend) our folder so that
# ComfyUI's own top-level modules (its ``nodes.py`` above all) are never shadowed by ours.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.append(_HERE)

try:
    from comfy_api.latest import ComfyExtension
except ImportError:  # outside ComfyUI (pytest resolving the package tree, a script), or a ComfyUI too old
    ComfyExtension = None
    try:
        import folder_paths  # noqa: F401  (present: this is ComfyUI, but one without the V3 node API)
    except ImportError:
        pass
    else:
        import logging

        logging.getLogger("hellomeme").error(
            "HelloMeme needs ComfyUI 0.3.75 or newer (its V3 node API, comfy_api.latest); this ComfyUI has none, "
            "so the HelloMeme nodes are not loaded. Update ComfyUI (git pull, or the Manager's 'Update ComfyUI').")

if ComfyExtension is not None:

    class HelloMemeExtension(ComfyExtension):
        async def get_node_list(self):
            from .nodes import all_nodes
            from .nodes.comfy_glue import paths

            paths.register()
            return all_nodes()

    async def comfy_entrypoint() -> HelloMemeExtension:
        return HelloMemeExtension()

WEB_DIRECTORY = None
