"""Drive signals as attention tokens: every scalar becomes its own sinusoid token.

The official control networks scale ARKit blendshape coefficients by 500 and PD-FGC embeddings by 20,
then embed each scalar like a diffusion timestep (diffusers ``Timesteps(dim, flip_sin_to_cos=True, 0)``,
``[cos | sin]`` halves). The product is formed in float32 whatever the network dtype: arguments reach
~500 rad, where fp16 would lose the phase entirely.
"""
from __future__ import annotations

import torch

from ..nn.embeddings import timestep_sinusoid

# Multipliers applied by the official networks before the sinusoid.
BLENDSHAPE_SCALE = 500.0
PD_FPG_SCALE = 20.0
# Lengths of the official drive signals.
ARKIT_BLENDSHAPES = 51
FACE_PARTS = 3
PD_FPG_DIM = 548


def scalar_tokens(values: torch.Tensor, scale: float, dim: int, dtype: torch.dtype) -> torch.Tensor:
    """``(..., n)`` scalars -> ``(..., n, dim)``: each ``scale * value`` embedded like a timestep, cast to ``dtype``."""
    flat = values.reshape(-1).float() * scale
    return timestep_sinusoid(flat, dim).reshape(*values.shape, dim).to(dtype)
