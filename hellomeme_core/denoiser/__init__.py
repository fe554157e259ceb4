"""HMDenoisingNet as per-block logic on hidden states at the SD1.5 block boundaries.

The official denoisers (``HMDenoising3D``, ``HMDenoisingMotion``, ``HM3Denoising3D``,
``HM3DenoisingMotion``) are SD1.5 UNets whose ``forward`` adds control features, runs reference and
motion modules and records the reference cache between the diffusers blocks. Here that logic stands
alone, so any UNet implementation (ComfyUI's LDM UNet in practice) can call it at its block
boundaries: :class:`BlockProgram` says what happens after encoder block ``i`` and before decoder
block ``i``; :class:`StepInputs` carries one UNet call's reference, control and motion data.
"""
from __future__ import annotations

from .modules import HMUNetModules
from .program import BlockProgram, Family, StepInputs, family_for_version
from .conventions import reference_pass_latents, rows_for_chunks

__all__ = [
    "BlockProgram",
    "Family",
    "HMUNetModules",
    "StepInputs",
    "family_for_version",
    "reference_pass_latents",
    "rows_for_chunks",
]
