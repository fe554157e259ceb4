"""``HM_REFERENCE``: the reference-pass features, computed once per video (official ``res_cache``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import HelloMemeError, ShapeMismatchError
from ..versions import version_info


@dataclass
class HMReference:
    """Reference features with rows ``[unconditional (zero latent), conditional (reference latent)]``.

    Keys: ``down_0..3`` (after each encoder block) and ``up_0..3`` (input of each decoder block), plus
    ``mid`` (= ``up_0``: the v1/v2 name of the same tensor). ``control_version`` is set when the pass
    carried control features (v5c), which ties the reference to that version. ``context`` is the
    ``[negative, positive]`` text context of the pass and ``pass_model`` the UNet that ran it (opaque
    here; a ComfyUI MODEL in the nodes): the motion pads of the video stage are made the same way.
    ``warnings``: problems found with the inputs of the pass, repeated where the reference is used.
    """

    features: dict[str, torch.Tensor]
    latent_size: tuple[int, int]  # (h, w) of the reference latent
    control_version: str | None = None
    context: torch.Tensor | None = None
    pass_model: Any = field(default=None, repr=False, compare=False)
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_record(cls, record: dict[str, torch.Tensor], latent_size: tuple[int, int],
                    control_version: str | None = None, context: torch.Tensor | None = None,
                    pass_model: Any = None) -> "HMReference":
        features = dict(record)
        if "up_0" in features and "mid" not in features:
            features["mid"] = features["up_0"]
        return cls(features, latent_size, control_version, context, pass_model)

    def check_for(self, version: str, latent_size: tuple[int, int] | None = None) -> None:
        """Clear errors for a reference used with another version or latent size."""
        if self.control_version is not None and self.control_version != version:
            raise HelloMemeError(
                f"The reference features were made with {self.control_version} control features, but the models are "
                f"{version}. Use the same loaded models for both, or make the reference without control features."
            )
        if version_info(version).reference_with_control and self.control_version is None:
            raise HelloMemeError(
                f"HelloMeme {version} runs its reference pass with the reference face's own control features: make "
                f"the reference with the {version} models, the reference pose condition image and the reference face motion."
            )
        if latent_size is not None and tuple(latent_size) != tuple(self.latent_size):
            h, w = self.latent_size
            raise ShapeMismatchError(
                f"The reference features were made from a {w * 8}x{h * 8} image but the generation is "
                f"{latent_size[1] * 8}x{latent_size[0] * 8}. Resize the reference image (or the latent / condition "
                "images) so both have the same size."
            )
