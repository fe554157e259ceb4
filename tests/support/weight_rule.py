"""The parity fixtures' deterministic weight rule: a tensor from its state-dict key alone.

Defined in ``shared/parity/README.md``; every parameter of a fixture module gets
``rule_tensor(weight_prefix + local_key, shape)``. Buffers are never rule-generated.
"""
from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping

import torch


def rule_tensor(key: str, shape: Iterable[int]) -> torch.Tensor:
    """The fixture rule, reproduced exactly (CPU generator, float32)."""
    shape = tuple(int(s) for s in shape)
    g = torch.Generator().manual_seed(zlib.crc32(key.encode("utf-8")))
    t = torch.randn(shape, generator=g, dtype=torch.float32)
    if len(shape) >= 2:
        t = t / math.sqrt(math.prod(shape[1:]))
    elif key.endswith("weight"):
        t = 1 + 0.1 * t
    else:
        t = 0.1 * t
    return t


def rule_state_dict(
    layout: Mapping[str, Iterable[int]],
    *,
    prefix: str = "",
    skip: Iterable[str] = (),
    strip_prefix: bool = True,
) -> dict[str, torch.Tensor]:
    """Rule tensors for every key of ``layout`` that starts with ``prefix`` and is not in ``skip``.

    ``skip`` names buffers (sinusoid tables, BatchNorm statistics) that keep module-computed values.
    Keys are returned relative to ``prefix`` unless ``strip_prefix`` is false.
    """
    skipped = set(skip)
    out: dict[str, torch.Tensor] = {}
    for key, shape in layout.items():
        if not key.startswith(prefix) or key in skipped:
            continue
        out[key[len(prefix):] if strip_prefix else key] = rule_tensor(key, shape)
    return out
