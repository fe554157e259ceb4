"""The v1-v3 control networks (official ``HMControlNet``, ``HMControlNet2``, ``HMV2ControlNet``,
``HMV2ControlNet2``, ``HMV3ControlNet``), key-compatible with the official files.

All five share one body: the head-pose condition is resized (bilinear, no antialias) by the network's
scale factor, ``conv_in`` lifts it to 128 channels, and a chain of :class:`SKCrossAttention` down blocks
(each halving the map) attends to drive tokens. The outputs are the maps after each block, laid out
``(batch, channels, frames, h, w)`` under the key names the official denoisers read.

Drive tokens:
- *expression* path (``exp_proj`` + ``face_proj``): 3 face-part tokens (``face_proj`` of the 1024-d
  CLIP embeddings) then 51 blendshape tokens (500 x coefficient, sinusoid), all through ``exp_proj``.
- *emotion* path (``emo_proj``): 548 PD-FGC tokens (20 x value, sinusoid) through ``emo_proj``.

The scale factor is not stored in the files; it follows from the block count: the deepest output must
sit at condition / 64 (latent / 8, the UNet's deepest level), so 3 blocks (v1) resize by 8 and 4 blocks
(v2/v3) by 4.
"""
from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..errors import ShapeMismatchError, WeightFileError
from ..nn.embeddings import TimestepEmbedding
from .checks import check_condition, check_per_frame, halved
from .coefficients import (
    ARKIT_BLENDSHAPES,
    BLENDSHAPE_SCALE,
    FACE_PARTS,
    PD_FPG_DIM,
    PD_FPG_SCALE,
    scalar_tokens,
)
from .cross_attention import SKCrossAttention
from ..nn.state_dicts import FIX, StateDict, count_indexed, load_strict, positions_from, require
from ..model_files.layout import describe_official_class
from .file_kinds import describe_state_dict

DEEPEST_STRIDE = 64  # condition pixels per deepest-level element, for every official control network

ControlDict = dict[str, torch.Tensor]


class SKControlNet(nn.Module):
    """Shared body of the v1-v3 control networks; subclasses fix the paths and output names."""

    official_class: ClassVar[str]
    official_block_channels: ClassVar[tuple[int, ...]]  # conv_in output, then every block's output
    has_expression_path: ClassVar[bool]
    has_emotion_path: ClassVar[bool]
    official_hidden_positions: ClassVar[int]  # pos_embed_hidden length of the official class

    def __init__(
        self,
        block_channels: tuple[int, ...] | None = None,
        input_channels: int = 3,
        cross_attention_dim: int = 320,
        face_embed_dim: int = 1024,
        positions: int = 64,
        hidden_positions: int | None = None,
    ):
        super().__init__()
        channels = tuple(block_channels or self.official_block_channels)
        hidden_positions = hidden_positions or self.official_hidden_positions
        self.input_channels = input_channels
        self.cross_attention_dim = cross_attention_dim
        self.face_embed_dim = face_embed_dim
        self.scale_factor = DEEPEST_STRIDE // 2 ** (len(channels) - 1)
        self.conv_in = nn.Conv2d(input_channels, channels[0], kernel_size=3, padding=1, bias=False)
        if self.has_expression_path:
            self.exp_proj = TimestepEmbedding(cross_attention_dim, cross_attention_dim)
            self.face_proj = TimestepEmbedding(face_embed_dim, cross_attention_dim)
        if self.has_emotion_path:
            self.emo_proj = TimestepEmbedding(cross_attention_dim, cross_attention_dim)
        self.blocks_down = nn.ModuleList(
            SKCrossAttention(
                channels[i - 1], channels[i], cross_attention_dim=cross_attention_dim,
                num_positional_embeddings=positions, num_positional_embeddings_hidden=hidden_positions,
            )
            for i in range(1, len(channels))
        )

    # ----------------------------------------------------------------------------------------- loading
    @classmethod
    def describe(cls) -> str:
        return describe_official_class(cls.official_class)

    @classmethod
    def config_from_state_dict(cls, sd: StateDict, source: str) -> dict:
        """Constructor arguments from tensor shapes; the block chain must be the official one."""
        what = cls.describe()

        def tensor(key: str, ndim: int) -> torch.Tensor:
            return require(sd, key, source, what, ndim, describe=describe_state_dict)

        conv_in = tensor("conv_in.weight", 4)
        n_blocks = count_indexed(sd, "blocks_down.")
        channels = [int(conv_in.shape[0])]
        for i in range(n_blocks):
            channels.append(int(tensor(f"blocks_down.{i}.conv.conv1.weight", 4).shape[0]))
        official = len(cls.official_block_channels) - 1
        if n_blocks != official:
            if n_blocks < official:
                first = f"first missing tensor {f'blocks_down.{n_blocks}.conv.conv1.weight'!r}"
            else:
                first = f"first unexpected tensor {next(k for k in sd if k.startswith(f'blocks_down.{official}.'))!r}"
            raise WeightFileError(
                f"{source} does not match the {what} layout: it has {n_blocks} down blocks, the official network "
                f"has {official} ({first}). {describe_state_dict(sd)} {FIX}"
            )
        to_k = tensor("blocks_down.0.attn1.to_k.weight", 2)
        face = sd.get("face_proj.linear_1.weight")
        return dict(
            block_channels=tuple(channels),
            input_channels=int(conv_in.shape[1]),
            cross_attention_dim=int(to_k.shape[1]),
            face_embed_dim=int(face.shape[1]) if face is not None and face.dim() == 2 else 1024,
            positions=positions_from(sd, "blocks_down.0.pos_embed.pe", 64),
            hidden_positions=positions_from(sd, "blocks_down.0.pos_embed_hidden.pe", cls.official_hidden_positions),
        )

    @classmethod
    def from_state_dict(cls, sd: StateDict, source: str = "<state dict>", dtype: torch.dtype | None = None):
        """Strict load of an official file's state dict; ``pe`` tables computed when absent."""
        config = cls.config_from_state_dict(sd, source)
        return load_strict(lambda: cls(**config), sd, source, cls.describe(), dtype=dtype, describe=describe_state_dict)

    # ------------------------------------------------------------------------------------------ checks
    def _valid_size(self, h: int, w: int) -> bool:
        # InstanceNorm needs more than one element per channel at the deepest level.
        n = len(self.blocks_down)
        return h >= self.scale_factor and w >= self.scale_factor and (
            halved(h // self.scale_factor, n) * halved(w // self.scale_factor, n) > 1
        )

    def _check_condition(self, condition: torch.Tensor) -> tuple[int, int]:
        check_condition(
            self.official_class, condition, self.input_channels, self._valid_size,
            f"after the /{self.scale_factor} resize and {len(self.blocks_down)} stride-2 blocks the deepest map "
            "would have a single element, where InstanceNorm is undefined",
        )
        return int(condition.shape[0]), int(condition.shape[2])

    # ---------------------------------------------------------------------------------------- tokens
    def expression_tokens(self, drive_coeff: torch.Tensor, face_parts: torch.Tensor, batch: int, frames: int) -> torch.Tensor:
        """``((b f), 3 + 51, cross_dim)``: face-part tokens then blendshape tokens, through ``exp_proj``."""
        name = self.official_class
        check_per_frame(name, "drive_coeff", drive_coeff, batch, frames, (ARKIT_BLENDSHAPES,), "51 ARKit blendshape coefficients per frame")
        check_per_frame(
            name, "face_parts", face_parts, batch, frames, (FACE_PARTS, self.face_embed_dim),
            f"{FACE_PARTS} face-part CLIP image embeddings of {self.face_embed_dim} values per frame",
        )
        dtype = self.conv_in.weight.dtype
        coeff = scalar_tokens(drive_coeff, BLENDSHAPE_SCALE, self.cross_attention_dim, dtype)
        face = self.face_proj(face_parts.to(dtype))
        return self.exp_proj(rearrange(torch.cat([face, coeff], dim=2), "b f t d -> (b f) t d"))

    def emotion_tokens(self, emo_embedding: torch.Tensor, batch: int, frames: int) -> torch.Tensor:
        """``((b f), 548, cross_dim)``: one token per PD-FGC value, through ``emo_proj``."""
        check_per_frame(self.official_class, "emo_embedding", emo_embedding, batch, frames, (PD_FPG_DIM,), "548 PD-FGC values per frame")
        tokens = scalar_tokens(emo_embedding, PD_FPG_SCALE, self.cross_attention_dim, self.conv_in.weight.dtype)
        return self.emo_proj(rearrange(tokens, "b f t d -> (b f) t d"))

    # ----------------------------------------------------------------------------------------- body
    def run_blocks(self, condition: torch.Tensor, tokens: torch.Tensor) -> list[torch.Tensor]:
        """Maps after each down block, ``((b f), C, h, w)``."""
        x = rearrange(condition.to(self.conv_in.weight.dtype), "b c f h w -> (b f) c h w")
        h, w = x.shape[-2:]
        x = F.interpolate(x, size=(h // self.scale_factor, w // self.scale_factor), mode="bilinear", align_corners=False)
        x = self.conv_in(x)
        outputs = []
        for block in self.blocks_down:
            x = block(x, tokens)
            outputs.append(x)
        return outputs

    @staticmethod
    def unfold_frames(x: torch.Tensor, frames: int) -> torch.Tensor:
        return rearrange(x, "(b f) c h w -> b c f h w", f=frames)


class HMControlNet(SKControlNet):
    """v1 expression control (``songkey/hm_control``): blendshapes + face parts -> ``down_0..2``."""

    official_class = "HMControlNet"
    official_block_channels = (128, 320, 640, 1280)
    has_expression_path = True
    has_emotion_path = False
    official_hidden_positions = 64

    def forward(self, condition: torch.Tensor, drive_coeff: torch.Tensor, face_parts: torch.Tensor) -> ControlDict:
        """condition ``(B, 3, F, H, W)``, drive_coeff ``(B, F, 51)``, face_parts ``(B, F, 3, 1024)`` ->
        ``down_i`` ``(B, C_i, F, H/16/2**i, W/16/2**i)`` with C = 320, 640, 1280."""
        batch, frames = self._check_condition(condition)
        tokens = self.expression_tokens(drive_coeff, face_parts, batch, frames)
        maps = self.run_blocks(condition, tokens)
        return {f"down_{i}": self.unfold_frames(x, frames) for i, x in enumerate(maps)}


class HMControlNet2(SKControlNet):
    """v1 PD-FGC control (``songkey/hm_control2``): ``pd_fpg`` -> ``down2_0..2``."""

    official_class = "HMControlNet2"
    official_block_channels = (128, 320, 640, 1280)
    has_expression_path = False
    has_emotion_path = True
    official_hidden_positions = 1024

    def forward(self, condition: torch.Tensor, emo_embedding: torch.Tensor) -> ControlDict:
        """condition ``(B, 3, F, H, W)``, emo_embedding ``(B, F, 548)`` -> ``down2_i`` as ``HMControlNet``."""
        batch, frames = self._check_condition(condition)
        maps = self.run_blocks(condition, self.emotion_tokens(emo_embedding, batch, frames))
        return {f"down2_{i}": self.unfold_frames(x, frames) for i, x in enumerate(maps)}


def _decoder_keys(prefix: str, maps: list[torch.Tensor], frames: int) -> ControlDict:
    """Official v2/v3 naming: the block at depth i feeds decoder block ``len - 1 - i``."""
    n = len(maps)
    return {f"{prefix}{n - 1 - i}": SKControlNet.unfold_frames(x, frames) for i, x in enumerate(maps)}


class HMV2ControlNet(SKControlNet):
    """v2 expression control (``songkey/hm2_control``) -> ``up_v2_3..0`` (decoder inputs)."""

    official_class = "HMV2ControlNet"
    official_block_channels = (128, 640, 1280, 1280, 1280)
    has_expression_path = True
    has_emotion_path = False
    official_hidden_positions = 1024

    def forward(self, condition: torch.Tensor, drive_coeff: torch.Tensor, face_parts: torch.Tensor) -> ControlDict:
        """condition ``(B, 3, F, H, W)`` -> ``up_v2_3`` ``(B, 640, F, H/8, W/8)``, ``up_v2_2`` (1280, /16),
        ``up_v2_1`` (1280, /32), ``up_v2_0`` (1280, /64)."""
        batch, frames = self._check_condition(condition)
        maps = self.run_blocks(condition, self.expression_tokens(drive_coeff, face_parts, batch, frames))
        return _decoder_keys("up_v2_", maps, frames)


class HMV2ControlNet2(SKControlNet):
    """v2 PD-FGC control (``songkey/hm2_control2``) -> ``up2_v2_3..0``."""

    official_class = "HMV2ControlNet2"
    official_block_channels = (128, 640, 1280, 1280, 1280)
    has_expression_path = False
    has_emotion_path = True
    official_hidden_positions = 1024

    def forward(self, condition: torch.Tensor, emo_embedding: torch.Tensor) -> ControlDict:
        """condition ``(B, 3, F, H, W)``, emo_embedding ``(B, F, 548)`` -> ``up2_v2_i`` as ``HMV2ControlNet``."""
        batch, frames = self._check_condition(condition)
        maps = self.run_blocks(condition, self.emotion_tokens(emo_embedding, batch, frames))
        return _decoder_keys("up2_v2_", maps, frames)


class HMV3ControlNet(SKControlNet):
    """v3 control (``songkey/hm3_control_mix``): either path -> ``up3_0..3`` and ``down3_0..3``."""

    official_class = "HMV3ControlNet"
    official_block_channels = (128, 640, 1280, 1280, 1280)
    has_expression_path = True
    has_emotion_path = True
    official_hidden_positions = 1024

    def __init__(self, *args, encoder_channels: tuple[int, int] = (320, 640), **kwargs):
        super().__init__(*args, **kwargs)
        n = len(self.blocks_down)
        # 1x1 maps from the features feeding decoder blocks 2 and 1 to SD1.5 encoder blocks 0 and 1.
        self.conv_up2_down0 = nn.Conv2d(self.blocks_down[n - 3].proj.out_channels, encoder_channels[0], kernel_size=1, bias=False)
        self.conv_up1_down1 = nn.Conv2d(self.blocks_down[n - 2].proj.out_channels, encoder_channels[1], kernel_size=1, bias=False)

    @classmethod
    def config_from_state_dict(cls, sd: StateDict, source: str) -> dict:
        config = super().config_from_state_dict(sd, source)
        config["encoder_channels"] = tuple(
            int(require(sd, key, source, cls.describe(), ndim=4, describe=describe_state_dict).shape[0])
            for key in ("conv_up2_down0.weight", "conv_up1_down1.weight")
        )
        return config

    def forward(
        self,
        condition: torch.Tensor,
        drive_coeff: torch.Tensor | None = None,
        face_parts: torch.Tensor | None = None,
        emo_embedding: torch.Tensor | None = None,
    ) -> ControlDict:
        """Expression path when both ``drive_coeff`` and ``face_parts`` are given, else the PD-FGC path.

        Returns ``up3_3`` ``(B, 640, F, H/8, W/8)``, ``up3_2`` (1280, /16), ``down3_0`` (320, /16),
        ``up3_1`` (1280, /32), ``down3_1`` (640, /32), ``up3_0`` (1280, /64) and ``down3_2`` /
        ``down3_3``, which are the very tensor object of ``up3_0`` (as in the official code).
        """
        batch, frames = self._check_condition(condition)
        if drive_coeff is not None and face_parts is not None:
            tokens = self.expression_tokens(drive_coeff, face_parts, batch, frames)
        elif emo_embedding is not None:
            tokens = self.emotion_tokens(emo_embedding, batch, frames)
        else:
            raise ShapeMismatchError(
                "HMV3ControlNet: give drive_coeff and face_parts (expression path) or emo_embedding (PD-FGC path); "
                f"got drive_coeff={'set' if drive_coeff is not None else None}, "
                f"face_parts={'set' if face_parts is not None else None}, emo_embedding=None."
            )
        maps = self.run_blocks(condition, tokens)
        n = len(maps)
        out: ControlDict = {}
        for i, x in enumerate(maps):
            level = n - 1 - i
            out[f"up3_{level}"] = self.unfold_frames(x, frames)
            if level == 2:
                out["down3_0"] = self.unfold_frames(self.conv_up2_down0(x), frames)
            elif level == 1:
                out["down3_1"] = self.unfold_frames(self.conv_up1_down1(x), frames)
        out["down3_2"] = out["down3_3"] = out["up3_0"]
        return out
