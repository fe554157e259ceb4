"""Strict, copy-free loading of the control networks and the FanEncoder from official state dicts.

A network is built on the ``meta`` device from a configuration inferred from tensor shapes, checked key
by key against the given state dict, then the file's tensors are assigned in place (no second copy of a
1 GB network in memory). Buffers the official modules compute for themselves may be absent (the parity
rule weights carry parameters only): the caller supplies their computed defaults.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from ..errors import WeightFileError
from ..nn.embeddings import interleaved_sinusoid_table

StateDict = Mapping[str, torch.Tensor]
# key, empty (meta) tensor of the module -> the computed value, or None when the key is required.
BufferDefault = Callable[[str, torch.Tensor], "torch.Tensor | None"]

_FIX = "Download the file again, or load it with the loader of the network it belongs to."


def position_table_default(key: str, like: torch.Tensor) -> torch.Tensor | None:
    """The diffusers sinusoid table for a missing ``*.pe`` buffer of shape ``(1, length, dim)``."""
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


def positions_from(sd: StateDict, key: str, default: int) -> int:
    """Length of the position table ``key`` when the file has it, else the official default."""
    table = sd.get(key)
    if table is None:
        return default
    if table.dim() != 3:
        raise WeightFileError(f"tensor {key!r} has shape {tuple(table.shape)}; a position table is (1, length, dim).")
    return int(table.shape[1])


def require(sd: StateDict, key: str, source: str, what: str, ndim: int) -> torch.Tensor:
    """Tensor ``key`` (with ``ndim`` dims) of ``sd``, else a :class:`WeightFileError` saying what the file looks like."""
    t = sd.get(key)
    if t is None or t.dim() != ndim:
        found = "is missing" if t is None else f"has shape {tuple(t.shape)} (expected {ndim} dims)"
        raise WeightFileError(f"{source} is not a {what} weight file: tensor {key!r} {found}. {looks_like(sd)} {_FIX}")
    return t


def count_indexed(sd: StateDict, prefix: str) -> int:
    """Number of consecutive submodules ``prefix0.``, ``prefix1.``... present in ``sd``."""
    n = 0
    while any(k.startswith(f"{prefix}{n}.") for k in sd):
        n += 1
    return n


def looks_like(sd: StateDict) -> str:
    """One sentence naming the official network a state dict resembles (for error messages)."""
    from .catalogue import describe_state_dict  # late import: the catalogue imports the networks

    return describe_state_dict(sd)


def load_network(
    factory: Callable[[], nn.Module],
    sd: StateDict,
    source: str,
    what: str,
    buffer_default: BufferDefault = position_table_default,
    dtype: torch.dtype | None = None,
) -> nn.Module:
    """Build ``factory()`` without allocating, check ``sd`` against it strictly, assign the tensors.

    ``what`` names the expected network (class, repo, version) in messages. Returns the network in eval
    mode, cast to ``dtype`` (float32 when None). Raises :class:`WeightFileError` naming ``source``, the
    first missing / unexpected / wrongly shaped tensor and the network the file looks like.
    """
    with torch.device("meta"):
        module = factory()
    expected = module.state_dict()
    full: dict[str, torch.Tensor] = {}
    for key, like in expected.items():
        if key in sd:
            full[key] = sd[key]
            continue
        default = buffer_default(key, like)
        if default is None:
            n_missing = sum(1 for k in expected if k not in sd and buffer_default(k, expected[k]) is None)
            raise WeightFileError(
                f"{source} does not match the {what} layout: {n_missing} tensor(s) missing, first {key!r} "
                f"{tuple(like.shape)}. The file is truncated or belongs to another network. {looks_like(sd)} {_FIX}"
            )
        full[key] = default
    unexpected = [k for k in sd if k not in expected]
    if unexpected:
        raise WeightFileError(
            f"{source} does not match the {what} layout: {len(unexpected)} unexpected tensor(s), first "
            f"{unexpected[0]!r} {tuple(sd[unexpected[0]].shape)}. {looks_like(sd)} {_FIX}"
        )
    for key, like in expected.items():
        got = full[key]
        if tuple(got.shape) != tuple(like.shape):
            raise WeightFileError(
                f"{source}: tensor {key!r} has shape {tuple(got.shape)} but the {what} layout built from this "
                f"file's other tensors needs {tuple(like.shape)}. {looks_like(sd)} {_FIX}"
            )
        if like.is_floating_point() != got.is_floating_point():
            raise WeightFileError(f"{source}: tensor {key!r} has dtype {got.dtype}, expected a {like.dtype} tensor. {_FIX}")
    module.load_state_dict(full, strict=True, assign=True)
    return module.to(dtype=dtype or torch.float32).eval()
