"""ComfyUI node classes. Every submodule may export NODE_CLASS_MAPPINGS / NODE_DISPLAY_NAME_MAPPINGS;
they are merged here, so adding a node module touches no other file. A submodule that fails to import
is logged with its error and skipped, so one broken area never hides the other nodes."""
from __future__ import annotations

import importlib
import logging
import pkgutil

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}

_log = logging.getLogger("hellomeme")

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    if _info.name.startswith("_"):
        continue
    try:
        _module = importlib.import_module(f"{__name__}.{_info.name}")
    except Exception:
        _log.exception("HelloMeme: node module %s failed to import; its nodes are unavailable", _info.name)
        continue
    NODE_CLASS_MAPPINGS.update(getattr(_module, "NODE_CLASS_MAPPINGS", {}))
    NODE_DISPLAY_NAME_MAPPINGS.update(getattr(_module, "NODE_DISPLAY_NAME_MAPPINGS", {}))
