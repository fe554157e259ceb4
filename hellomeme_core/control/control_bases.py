"""The v4 / v5 control bases (official ``HMControlNetBase`` / ``HM5ControlNetBase``), key-compatible.

The head-pose condition is resized by 8 (bilinear, no antialias) and run through the small control U-Net,
whose attention blocks attend to 16 drive tokens of 2048 values:

- *expression* path: every blendshape (x500) and every value is embedded with a 1024-d sinusoid; an MLP
  over the coefficient axis (``exp_pre_proj`` 51 -> 16, ``face_pre_proj`` 3 -> 16) folds them into 16
  tokens, lifted by ``exp_proj`` / ``face_proj`` and summed;
- *emotion* path: the 548 PD-FGC values (x20) the same way through ``emo_pre_proj`` / ``emo_proj``.

Output: ``feat_0`` (deepest, condition / 64) ... ``feat_3`` (condition / 8, the latent size), laid out
``(batch, channels, frames, h, w)``; the SD1.5 projections turn them into ``up3_*`` / ``down3_*``.
"""
from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..errors import ShapeMismatchError
from ..nn.embeddings import TimestepEmbedding
from .checks import check_condition, check_per_frame
from .coefficients import BLENDSHAPE_SCALE, PD_FPG_SCALE, scalar_tokens
from .sk_control_nets import DEEPEST_STRIDE, ControlDict
from .small_unet import SmallControlUNet
from ..nn.state_dicts import StateDict, count_indexed, load_strict, positions_from, require
from ..model_files.layout import describe_official_class
from .file_kinds import describe_state_dict


class ControlBase(nn.Module):
    """Shared body of ``HMControlNetBase`` (v4, stored position tables) and ``HM5ControlNetBase`` (v5)."""

    official_class: ClassVar[str]
    linear_positions: ClassVar[bool]

    def __init__(
        self,
        in_channels: int = 3,
        mid_channels: tuple[int, ...] = (320, 640, 1280),
        out_channels: int = 320,
        cross_attention_dim: int = 2048,
        coefficient_dim: int = 1024,
        tokens: int = 16,
        blendshapes: int = 51,
        face_parts: int = 3,
        face_embed_dim: int = 1024,
        pd_fpg_dim: int = 548,
        positions: int = 512,
        hidden_positions: int = 1024,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.coefficient_dim = coefficient_dim
        self.blendshapes, self.face_parts, self.face_embed_dim, self.pd_fpg_dim = blendshapes, face_parts, face_embed_dim, pd_fpg_dim
        self.emo_pre_proj = TimestepEmbedding(pd_fpg_dim, tokens)
        self.emo_proj = TimestepEmbedding(coefficient_dim, cross_attention_dim)
        self.exp_pre_proj = TimestepEmbedding(blendshapes, tokens)
        self.face_pre_proj = TimestepEmbedding(face_parts, tokens)
        self.exp_proj = TimestepEmbedding(coefficient_dim, cross_attention_dim)
        self.face_proj = TimestepEmbedding(face_embed_dim, cross_attention_dim)
        self.ctrl_attn = SmallControlUNet(
            in_channels, out_channels, mid_channels, cross_attention_dim,
            linear_positions=self.linear_positions, positions=positions, hidden_positions=hidden_positions,
        )
        self.scale_factor = DEEPEST_STRIDE // 2 ** self.ctrl_attn.levels

    # ----------------------------------------------------------------------------------------- loading
    @classmethod
    def describe(cls) -> str:
        return describe_official_class(cls.official_class)

    @classmethod
    def config_from_state_dict(cls, sd: StateDict, source: str) -> dict:
        what = cls.describe()

        def shape(key: str, ndim: int) -> torch.Size:
            return require(sd, key, source, what, ndim, describe=describe_state_dict).shape

        levels = count_indexed(sd, "ctrl_attn.down_blocks.")
        mid = tuple(int(shape(f"ctrl_attn.down_blocks.{i}.conv1.weight", 4)[0]) for i in range(levels))
        config = dict(
            in_channels=int(shape("ctrl_attn.down_blocks.0.conv1.weight", 4)[1]),
            mid_channels=mid,
            out_channels=int(shape(f"ctrl_attn.up_blocks.{levels - 1}.0.weight", 4)[0]),
            cross_attention_dim=int(shape("exp_proj.linear_2.weight", 2)[0]),
            coefficient_dim=int(shape("exp_proj.linear_1.weight", 2)[1]),
            tokens=int(shape("exp_pre_proj.linear_2.weight", 2)[0]),
            blendshapes=int(shape("exp_pre_proj.linear_1.weight", 2)[1]),
            face_parts=int(shape("face_pre_proj.linear_1.weight", 2)[1]),
            face_embed_dim=int(shape("face_proj.linear_1.weight", 2)[1]),
            pd_fpg_dim=int(shape("emo_pre_proj.linear_1.weight", 2)[1]),
        )
        if not cls.linear_positions:
            config["positions"] = positions_from(sd, "ctrl_attn.attn_blocks.0.pos_embed.pe", 512)
            config["hidden_positions"] = positions_from(sd, "ctrl_attn.attn_blocks.0.pos_embed_hidden.pe", 1024)
        return config

    @classmethod
    def from_state_dict(cls, sd: StateDict, source: str = "<state dict>", dtype: torch.dtype | None = None):
        """Strict load of an official file's state dict; ``pe`` tables computed when absent."""
        config = cls.config_from_state_dict(sd, source)
        return load_strict(lambda: cls(**config), sd, source, cls.describe(), dtype=dtype, describe=describe_state_dict)

    # ------------------------------------------------------------------------------------------ checks
    def _valid_size(self, h: int, w: int) -> bool:
        # Skips are added after x2 upsampling: the resized map must halve evenly at every level, and
        # InstanceNorm needs more than one element at the deepest level.
        unit = 2 ** self.ctrl_attn.levels
        lh, lw = h // self.scale_factor, w // self.scale_factor
        return lh > 0 and lw > 0 and lh % unit == 0 and lw % unit == 0 and (lh // unit) * (lw // unit) > 1

    # ---------------------------------------------------------------------------------------- tokens
    def _fold(self, values: torch.Tensor, scale: float, pre_proj: TimestepEmbedding, proj: TimestepEmbedding) -> torch.Tensor:
        """``(b, f, n)`` scalars -> ``((b f), tokens, cross_dim)``: sinusoid per scalar, MLP over n, lift."""
        emb = scalar_tokens(values, scale, self.coefficient_dim, self.emo_proj.linear_1.weight.dtype)
        folded = pre_proj(rearrange(emb, "b f n d -> (b f) d n"))
        return proj(rearrange(folded, "bf d t -> bf t d"))

    def expression_tokens(self, drive_coeff: torch.Tensor, face_parts: torch.Tensor, batch: int, frames: int) -> torch.Tensor:
        name = self.official_class
        check_per_frame(name, "drive_coeff", drive_coeff, batch, frames, (self.blendshapes,), f"{self.blendshapes} ARKit blendshape coefficients per frame")
        check_per_frame(
            name, "face_parts", face_parts, batch, frames, (self.face_parts, self.face_embed_dim),
            f"{self.face_parts} face-part CLIP image embeddings of {self.face_embed_dim} values per frame",
        )
        exp = self._fold(drive_coeff, BLENDSHAPE_SCALE, self.exp_pre_proj, self.exp_proj)
        face = self.face_pre_proj(rearrange(face_parts.to(self.face_pre_proj.linear_1.weight.dtype), "b f n d -> (b f) d n"))
        return exp + self.face_proj(rearrange(face, "bf d t -> bf t d"))

    def emotion_tokens(self, emo_embedding: torch.Tensor, batch: int, frames: int) -> torch.Tensor:
        check_per_frame(self.official_class, "emo_embedding", emo_embedding, batch, frames, (self.pd_fpg_dim,), f"{self.pd_fpg_dim} PD-FGC values per frame")
        return self._fold(emo_embedding, PD_FPG_SCALE, self.emo_pre_proj, self.emo_proj)

    # ---------------------------------------------------------------------------------------- forward
    def forward(
        self,
        condition: torch.Tensor,
        drive_coeff: torch.Tensor | None = None,
        face_parts: torch.Tensor | None = None,
        emo_embedding: torch.Tensor | None = None,
    ) -> ControlDict:
        """condition ``(B, 3, F, H, W)`` (H, W multiples of 64) and either ``drive_coeff`` ``(B, F, 51)`` +
        ``face_parts`` ``(B, F, 3, 1024)`` or ``emo_embedding`` ``(B, F, 548)`` ->
        ``feat_0`` ``(B, 1280, F, H/64, W/64)``, ``feat_1`` (640, /32), ``feat_2`` (320, /16), ``feat_3`` (320, /8).
        """
        name = self.official_class
        check_condition(
            name, condition, self.in_channels, self._valid_size,
            f"the control U-Net needs height and width that are multiples of {self.scale_factor * 2 ** self.ctrl_attn.levels} "
            "(its skips are added after x2 upsampling) with more than one element at the deepest level (InstanceNorm)",
        )
        batch, frames = int(condition.shape[0]), int(condition.shape[2])
        if drive_coeff is not None:
            if face_parts is None:
                raise ShapeMismatchError(f"{name}: drive_coeff was given without face_parts; the expression path needs both.")
            tokens = self.expression_tokens(drive_coeff, face_parts, batch, frames)
        elif emo_embedding is not None:
            tokens = self.emotion_tokens(emo_embedding, batch, frames)
        else:
            raise ShapeMismatchError(f"{name}: give drive_coeff and face_parts (expression path) or emo_embedding (PD-FGC path).")

        x = rearrange(condition.to(self.exp_proj.linear_1.weight.dtype), "b c f h w -> (b f) c h w")
        h, w = x.shape[-2:]
        x = F.interpolate(x, size=(h // self.scale_factor, w // self.scale_factor), mode="bilinear", align_corners=False)
        feats = self.ctrl_attn(x, tokens)
        return {f"feat_{i}": rearrange(f, "(b f) c h w -> b c f h w", f=frames) for i, f in enumerate(feats)}


class HMControlNetBase(ControlBase):
    """v4 control base (``songkey/hm_control_base``): ``SmallUnet`` with stored sinusoid tables."""

    official_class = "HMControlNetBase"
    linear_positions = False


class HM5ControlNetBase(ControlBase):
    """v5 / v5b / v5c control base (``songkey/hm5_control_base``): ``SmallUnetV5`` (positions on the fly)."""

    official_class = "HM5ControlNetBase"
    linear_positions = True
