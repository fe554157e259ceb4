"""Adapters from a fixture's official module spec to our implementation.

Each adapter module under ``tests/parity/adapters/`` registers builders with ``@adapter(name, ...)``
where ``name`` is the short official class (``SKReferenceAttention``, ``HM3Denoising3D``) or official
function (``gen_control_heatmaps``). A builder gets the case context and the module id and returns a
callable that takes the official call's keyword arguments and returns the official return value.
Weights must go through the same loaders as real files.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.parity.fixture import FixtureSet

Builder = Callable[["CaseContext", str], Callable[..., Any]]
_BUILDERS: dict[str, Builder] = {}
_IMPORT_ERRORS: dict[str, str] = {}
_loaded = False


@dataclass
class CaseContext:
    fixtures: FixtureSet
    case: dict
    built: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def spec(self, module_key: str) -> dict:
        return self.case["modules"][module_key]


def adapter(*names: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        for name in names:
            _BUILDERS[name] = fn
        return fn

    return register


def official_name(spec: dict) -> str:
    full = spec.get("official_class") or spec.get("official_function") or ""
    return full.rsplit(".", 1)[-1]


def _load_adapters() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from tests.parity import adapters

    for info in pkgutil.iter_modules(adapters.__path__):
        try:
            importlib.import_module(f"tests.parity.adapters.{info.name}")
        except Exception as exc:  # reported per case, so one broken area does not hide the others
            _IMPORT_ERRORS[info.name] = f"{type(exc).__name__}: {exc}"


def build(ctx: CaseContext, module_key: str) -> Callable[..., Any]:
    """Build (once per case) the callable for ``module_key``."""
    _load_adapters()
    if module_key not in ctx.built:
        name = official_name(ctx.spec(module_key))
        builder = _BUILDERS.get(name)
        if builder is None:
            errors = "; ".join(f"{m}: {e}" for m, e in _IMPORT_ERRORS.items())
            raise LookupError(f"no parity adapter for {name!r}" + (f" (adapter import errors: {errors})" if errors else ""))
        ctx.built[module_key] = builder(ctx, module_key)
    return ctx.built[module_key]
