"""The extension's nodes (ComfyUI V3 schemas), gathered for the one entry point in the extension's ``__init__``.

Each node module exports ``NODES``; modules are found by name, so adding one touches no other file.
A module that fails to import is logged with its error and skipped, so one broken area never hides
the other nodes. Node ids carry one prefix, ``HelloMeme``; ids shipped before that keep working as
deprecated aliases (hidden from the node menu), so saved workflows and API prompts load unchanged.
"""
from __future__ import annotations

import importlib
import logging
import pkgutil

from comfy_api.latest import io

_log = logging.getLogger("hellomeme")

ID_PREFIX = "HelloMeme"
# Ids shipped before the prefix rule -> the id that replaces them.
LEGACY_IDS = {
    "LoadHelloMemeModels": "HelloMemeLoadModels",
    "ApplyHelloMeme": "HelloMemeApply",
    "ApplyHelloMemeTemporal": "HelloMemeApplyTemporal",
}


def node_classes() -> list[type[io.ComfyNode]]:
    """Every node class of the ``nodes`` modules (the ``comfy_glue`` layer holds none)."""
    found: list[type[io.ComfyNode]] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.ispkg:
            continue
        try:
            module = importlib.import_module(f"{__name__}.{info.name}")
        except Exception:
            _log.exception("HelloMeme: node module %s failed to import; its nodes are unavailable", info.name)
            continue
        found.extend(getattr(module, "NODES", []))
    return found


def legacy_alias(node: type[io.ComfyNode], legacy_id: str) -> type[io.ComfyNode]:
    """The same node under an old id, flagged deprecated (the editor hides it from search, old graphs still run)."""

    class Alias(node):
        # ComfyUI caches schema facts on the class the first time it reads them; an alias must not inherit
        # the cache of the node it copies (it would not read as deprecated).
        SCHEMA = _DESCRIPTION = _CATEGORY = _EXPERIMENTAL = _DEPRECATED = _API_NODE = _OUTPUT_NODE = None
        _INPUT_IS_LIST = _NOT_IDEMPOTENT = _RETURN_TYPES = _RETURN_NAMES = _OUTPUT_IS_LIST = _OUTPUT_TOOLTIPS = None

        @classmethod
        def define_schema(cls) -> io.Schema:
            schema = node.define_schema()
            current_id = schema.node_id
            schema.node_id = legacy_id
            schema.is_deprecated = True
            schema.description = (f"Old id of '{schema.display_name}' (now {current_id}); kept so saved workflows load. "
                                  + schema.description)
            return schema

    Alias.__name__ = Alias.__qualname__ = f"{node.__name__}Legacy"
    return Alias


def all_nodes() -> list[type[io.ComfyNode]]:
    """The nodes to register: current ids first, then the deprecated aliases of legacy ids."""
    nodes = node_classes()
    by_id = {n.define_schema().node_id: n for n in nodes}
    aliases = [legacy_alias(by_id[new], old) for old, new in LEGACY_IDS.items() if new in by_id]
    return nodes + aliases
