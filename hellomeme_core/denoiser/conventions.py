"""The official classifier-free-guidance conventions of the HelloMeme pipelines.

* The reference pass runs on ``[zeros_like(ref_latent), ref_latent]`` at timestep 0: row 0 of every
  recorded feature is the unconditional reference (a zero latent), row 1 the conditional one.
* Unconditional control inputs: condition image all -1, ``drive_coeff`` 0, ``face_parts`` 0; the
  emotion negative is the FanEncoder output of an all -1 image in v1/v2 and zeros from v3 on.
* Video pipelines compute the negative control once and reuse it for every frame.

ComfyUI batches cond and uncond in chunks of equal size, in the order ``cond_or_uncond`` gives
(0 = positive, 1 = negative); :func:`rows_for_chunks` turns the official two-row tensors into the
rows those chunks need.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

UNCOND_ROW = 0  # official stacking: [unconditional, conditional]
COND_ROW = 1


def reference_pass_latents(latents: torch.Tensor) -> torch.Tensor:
    """``(n, 4, h, w)`` latents -> the reference-pass batch ``[zeros, latent_1 .. latent_n]`` (``n = 1``: the
    official ``[zeros_like(ref), ref]``; more latents share the one zero-latent row, which is the same for all)."""
    return torch.cat([torch.zeros_like(latents[:1]), latents], dim=0)


def chunk_rows(cond_or_uncond: Sequence[int]) -> list[int]:
    """Official row (``UNCOND_ROW``/``COND_ROW``) for every ComfyUI chunk (0 = cond, 1 = uncond)."""
    return [UNCOND_ROW if c == 1 else COND_ROW for c in cond_or_uncond]


def rows_for_chunks(pair: Mapping[str, torch.Tensor], cond_or_uncond: Sequence[int]) -> dict[str, torch.Tensor]:
    """Select the ``[uncond, cond]`` rows of every tensor of ``pair`` in ComfyUI chunk order."""
    index = torch.tensor(chunk_rows(cond_or_uncond), dtype=torch.long)
    return {k: v.index_select(0, index.to(v.device)) for k, v in pair.items()}
