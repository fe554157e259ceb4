"""Strict, copy-free loading of a module from a state dict (the one loader of every HelloMeme network).

A module is built on the ``meta`` device from a configuration its caller inferred from tensor shapes,
checked key by key against the given state dict, and then takes the state dict's tensors themselves (no
second copy of a 1 GB network in memory). Buffers the official modules compute for themselves (the
sinusoid ``pe`` tables, BatchNorm statistics) may be absent, since the parity rule weights carry
parameters only: ``buffer_default`` supplies their computed values. Every mismatch is a
:class:`WeightFileError` naming the file, the first offending tensor with its shapes, what the file
looks like (``describe``) and how to fix it.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

import torch
from torch import nn

from ..errors import WeightFileError
from .embeddings import interleaved_sinusoid_table

M = TypeVar("M", bound=nn.Module)

StateDict = Mapping[str, torch.Tensor]
# (key, empty meta tensor of the module) -> the computed value, or None when the file must hold the key.
BufferDefault = Callable[[str, torch.Tensor], "torch.Tensor | None"]
# state dict -> one sentence naming what it looks like ("It looks like HMV2ControlNet (...).").
Describe = Callable[[StateDict], str]

FIX = "Download the file again, or load it with the loader of the network or version it belongs to."


def position_table_default(key: str, like: torch.Tensor) -> torch.Tensor | None:
    """The diffusers sinusoid table for a missing ``pe`` buffer of shape ``(1, length, dim)``."""
    if key == "pe" or key.endswith(".pe"):
        return interleaved_sinusoid_table(like.shape[1], like.shape[2])
    return None


def batch_norm_default(key: str, like: torch.Tensor) -> torch.Tensor | None:
    """Fresh BatchNorm statistics (mean 0, variance 1, 0 batches) for a missing running-stat buffer."""
    if key.endswith(".running_mean"):
        return torch.zeros(like.shape)
    if key.endswith(".running_var"):
        return torch.ones(like.shape)
    if key.endswith(".num_batches_tracked"):
        return torch.zeros((), dtype=torch.long)
    return None


def sub_state_dict(sd: StateDict, prefix: str) -> dict[str, torch.Tensor]:
    """The entries under ``prefix`` (e.g. ``"reference_modules_up.0."``) with the prefix stripped."""
    n = len(prefix)
    return {k[n:]: v for k, v in sd.items() if k.startswith(prefix)}


def count_indexed(sd: StateDict, prefix: str) -> int:
    """Number of consecutive submodules ``prefix0.``, ``prefix1.``... present in ``sd``."""
    n = 0
    while any(k.startswith(f"{prefix}{n}.") for k in sd):
        n += 1
    return n


def positions_from(sd: StateDict, key: str, default: int) -> int:
    """Length of the position table ``key`` when the file has it, else the official default."""
    table = sd.get(key)
    if table is None:
        return default
    if table.dim() != 3:
        raise WeightFileError(f"tensor {key!r} has shape {tuple(table.shape)}; a position table is (1, length, dim).")
    return int(table.shape[1])


def table_length(
    sd: StateDict, key: str, requested: int | None, default: int, source: str, prefix: str = "", what: str = "module"
) -> int:
    """Length of position table ``key``: the stored table's when ``sd`` has it (it must agree with
    ``requested`` when both are given), else ``requested``, else the official ``default``."""
    table = sd.get(key)
    if table is None or table.dim() != 3:
        return default if requested is None else int(requested)
    stored = int(table.shape[1])
    if requested is not None and stored != int(requested):
        raise WeightFileError(
            f"{source}: {what} position table {prefix + key!r} holds {stored} positions, but {requested} were requested."
        )
    return stored


def _looks_like(sd: StateDict, describe: Describe | None) -> str:
    return f" {describe(sd)}" if describe is not None else ""


def require(
    sd: StateDict, key: str, source: str, what: str, ndim: int | None = None, *, describe: Describe | None = None
) -> torch.Tensor:
    """Tensor ``key`` (with ``ndim`` dims when given) of ``sd``, else a :class:`WeightFileError` naming ``source``."""
    t = sd.get(key)
    if t is None or (ndim is not None and t.dim() != ndim):
        found = "is missing" if t is None else f"has shape {tuple(t.shape)} (expected {ndim} dims)"
        raise WeightFileError(
            f"{source} is not a {what} weight file: tensor {key!r} {found}; the file is truncated or belongs "
            f"to another model.{_looks_like(sd, describe)} {FIX}"
        )
    return t


def build_empty(factory: Callable[[], M]) -> M:
    """Run a module constructor on the meta device: no memory, no random init (:func:`load_strict` fills it)."""
    with torch.device("meta"):
        return factory()


def _first(keys: list[str], shapes: Mapping[str, torch.Tensor], prefix: str) -> str:
    return f"first {prefix + keys[0]!r} {tuple(shapes[keys[0]].shape)}"


def load_strict(
    module_or_factory: M | Callable[[], M],
    sd: StateDict,
    source: str,
    what: str,
    *,
    prefix: str = "",
    buffer_default: BufferDefault = position_table_default,
    dtype: torch.dtype | None = None,
    describe: Describe | None = None,
) -> M:
    """Check ``sd`` strictly against a module and give the module the tensors of ``sd``.

    ``module_or_factory`` is a module built with :func:`build_empty` (or a container of such modules) or
    a constructor, run here on the meta device. ``what`` names the expected network (class, version)
    and ``prefix`` is prepended to key names in messages so they match the file's own names; keys the
    module has but ``sd`` lacks are taken from ``buffer_default`` when it knows them. Floating tensors
    are cast to ``dtype`` (float32 when None): a contiguous tensor of that dtype is taken as is, so the
    module shares memory with ``sd``. Returns the module in eval mode.
    """
    module = module_or_factory if isinstance(module_or_factory, nn.Module) else build_empty(module_or_factory)
    expected = module.state_dict()
    full: dict[str, torch.Tensor] = {}
    missing: list[str] = []
    for key, like in expected.items():
        value = sd[key] if key in sd else buffer_default(key, like)
        if value is None:
            missing.append(key)
        else:
            full[key] = value
    unexpected = [k for k in sd if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} tensor(s) missing, {_first(missing, expected, prefix)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensor(s), {_first(unexpected, sd, prefix)}")
        raise WeightFileError(
            f"{source} does not match the {what} layout: {'; '.join(parts)}. The file is truncated, damaged or "
            f"belongs to another network or version.{_looks_like(sd, describe)} {FIX}"
        )
    for key, like in expected.items():
        got = full[key]
        if tuple(got.shape) != tuple(like.shape):
            raise WeightFileError(
                f"{source}: tensor {prefix + key!r} has shape {tuple(got.shape)} but the {what} layout built from "
                f"this file's other tensors needs {tuple(like.shape)}.{_looks_like(sd, describe)} {FIX}"
            )
        if got.is_floating_point() != like.is_floating_point():
            raise WeightFileError(
                f"{source}: tensor {prefix + key!r} has dtype {got.dtype}, the {what} layout needs a {like.dtype} tensor. {FIX}"
            )
    target = dtype or torch.float32
    # ``contiguous`` gives expanded placeholders (zero strides, shape-only loading) memory of their own.
    full = {k: (t.to(target) if t.is_floating_point() else t).contiguous() for k, t in full.items()}
    module.load_state_dict(full, strict=True, assign=True)
    return module.eval()
