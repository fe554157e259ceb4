"""Strict state-dict loading shared by the knitting, temporal and adapter modules.

Every module here is built from the shapes of the tensors it is given (never from assumed configs) and
then loaded strictly: a missing, unexpected or wrongly shaped tensor is a :class:`WeightFileError` that
names the file, the first offending tensor and the version the file looks like. Sinusoidal position
tables (keys ending in ``pe``) are buffers the module computes itself, so they may be absent; when a file
has them they are loaded (and must have the computed shape).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

import torch
from torch import nn

from ..errors import WeightFileError
from ..nn.embeddings import interleaved_sinusoid_table

M = TypeVar("M", bound=nn.Module)

StateDict = Mapping[str, torch.Tensor]


def computed_buffer(key: str) -> bool:
    """True for buffers a module recomputes when a file lacks them (sinusoidal ``pe`` tables)."""
    return key == "pe" or key.endswith(".pe")


def sub_state_dict(sd: StateDict, prefix: str) -> dict[str, torch.Tensor]:
    """The entries under ``prefix`` (e.g. ``"reference_modules_up.0."``) with the prefix stripped."""
    n = len(prefix)
    return {k[n:]: v for k, v in sd.items() if k.startswith(prefix)}


def require(sd: StateDict, key: str, source: str, what: str, ndim: int | None = None) -> torch.Tensor:
    """The tensor ``key`` of ``sd``; a :class:`WeightFileError` naming ``source`` when it is absent."""
    if key not in sd:
        raise WeightFileError(
            f"{source}: tensor {key!r} is missing, so this is not a {what} weight set "
            f"(the file is truncated or belongs to another model). Download the right file again."
        )
    t = sd[key]
    if ndim is not None and t.dim() != ndim:
        raise WeightFileError(f"{source}: tensor {key!r} has shape {tuple(t.shape)}, expected {ndim} dims for a {what}.")
    return t


def build_empty(factory: Callable[[], M]) -> M:
    """Run a module constructor on the meta device: no memory, no random init (``load_strict`` fills it)."""
    with torch.device("meta"):
        return factory()


def load_strict(
    module: M, sd: StateDict, source: str, what: str, prefix: str = "", dtype: torch.dtype = torch.float32
) -> M:
    """Load ``sd`` into ``module`` strictly; ``pe`` tables may be absent (then computed).

    ``what`` names the version/class the file looks like; ``prefix`` is prepended to key names in
    messages so they match the file's own names. A module built with :func:`build_empty` takes the
    tensors themselves (cast to ``dtype``; no copy for contiguous float32 input, so the module shares
    memory with ``sd``), else they are copied in.
    Returns ``module`` in eval mode.
    """
    own = module.state_dict()
    missing = [k for k in own if k not in sd and not computed_buffer(k)]
    unexpected = [k for k in sd if k not in own]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s), first {prefix + missing[0]!r}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensor(s), first {prefix + unexpected[0]!r}")
        raise WeightFileError(
            f"{source} does not match the {what} layout: {'; '.join(parts)}. "
            "The file is truncated, damaged or belongs to another HelloMeme version; download it again "
            "or pick the loader for its version."
        )
    for k, t in sd.items():
        if tuple(t.shape) != tuple(own[k].shape):
            raise WeightFileError(
                f"{source}: tensor {prefix + k!r} has shape {tuple(t.shape)}, the {what} layout needs "
                f"{tuple(own[k].shape)}. The file belongs to another version or is damaged."
            )
    if any(t.is_meta for t in own.values()):
        # ``contiguous`` gives expanded placeholders (zero strides) memory of their own; a contiguous
        # float32 tensor is taken as is (the module then shares it with ``sd``).
        full = {
            k: sd[k].to(dtype).contiguous() if k in sd else interleaved_sinusoid_table(own[k].shape[1], own[k].shape[2]).to(dtype)
            for k in own
        }
        module.load_state_dict(full, strict=True, assign=True)
        return module.eval()
    with torch.no_grad():
        for k, param in own.items():
            if k in sd:
                param.copy_(sd[k].to(dtype=param.dtype))
    return module.eval()
