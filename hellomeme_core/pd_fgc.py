"""PD-FGC motion encoder (official ``FanEncoder``, ``songkey/pd_fgc_motion``), key-compatible.

A face-alignment network (FAN: stem, one 4-level hourglass, 68 landmark heat-maps) reduced to a 512-d
feature, then three heads: eye (6), emotion (30) and mouth (512) features. Their concatenation, 548
values per face, is the ``pd_fpg`` expression embedding the v1/v2 ``*control2`` and the v3-v5 PD-FGC
paths consume. Input: ``(N, 3, 224, 224)`` RGB in [-1, 1] (the aligned face crop).

Inference only: BatchNorm always uses its running statistics and the hourglass dropout is omitted.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from .control.file_kinds import describe_state_dict
from .errors import ShapeMismatchError
from .model_files import load_state_dict, resolve_weight_file
from .nn.state_dicts import StateDict, batch_norm_default, load_strict, require

SOURCE_REPO = "songkey/pd_fgc_motion"


class PreActivationBlock(nn.Module):
    """FAN ``ConvBlock``: three BN-ReLU-conv3x3 stages (widths out/2, out/4, out/4) concatenated, plus
    the input (through BN-ReLU-conv1x1 when the width changes)."""

    def __init__(self, in_planes: int, out_planes: int):
        super().__init__()
        half, quarter = out_planes // 2, out_planes // 4
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, half, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, quarter, kernel_size=3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(quarter)
        self.conv3 = nn.Conv2d(quarter, quarter, kernel_size=3, padding=1, bias=False)
        if in_planes != out_planes:
            self.downsample = nn.Sequential(
                nn.BatchNorm2d(in_planes), nn.ReLU(), nn.Conv2d(in_planes, out_planes, kernel_size=1, bias=False)
            )
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = self.conv1(F.relu(self.bn1(x)))
        out2 = self.conv2(F.relu(self.bn2(out1)))
        out3 = self.conv3(F.relu(self.bn3(out2)))
        residual = x if self.downsample is None else self.downsample(x)
        return torch.cat([out1, out2, out3], dim=1) + residual


class Hourglass(nn.Module):
    """FAN hourglass: at each level an upper branch (``b1_L``) at full size and a lower branch
    (max-pool, ``b2_L``, the next level or ``b2_plus_1``, ``b3_L``) upsampled back and added."""

    def __init__(self, depth: int = 4, features: int = 256):
        super().__init__()
        self.depth = depth
        for level in range(depth, 0, -1):
            self.add_module(f"b1_{level}", PreActivationBlock(features, features))
            self.add_module(f"b2_{level}", PreActivationBlock(features, features))
            if level == 1:
                self.add_module("b2_plus_1", PreActivationBlock(features, features))
            self.add_module(f"b3_{level}", PreActivationBlock(features, features))

    def level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        upper = self._modules[f"b1_{level}"](x)
        lower = self._modules[f"b2_{level}"](F.max_pool2d(x, 2, stride=2))
        lower = self.level(level - 1, lower) if level > 1 else self._modules["b2_plus_1"](lower)
        lower = self._modules[f"b3_{level}"](lower)
        return upper + F.interpolate(lower, size=upper.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.level(self.depth, x)


class FaceAlignmentFeatures(nn.Module):
    """Official ``FAN_use``: FAN landmark heat-maps reduced to a ``feature_dim`` vector per face."""

    def __init__(self, depth: int = 4, landmarks: int = 68, feature_dim: int = 512, pooled_side: int = 28):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = PreActivationBlock(64, 128)
        self.conv3 = PreActivationBlock(128, 128)
        self.conv4 = PreActivationBlock(128, 256)
        self.m0 = Hourglass(depth, 256)
        self.top_m_0 = PreActivationBlock(256, 256)
        self.conv_last0 = nn.Conv2d(256, 256, kernel_size=1)
        self.l0 = nn.Conv2d(256, landmarks, kernel_size=1)
        self.bn_end0 = nn.BatchNorm2d(256)
        self.conv6 = nn.Conv2d(landmarks, 1, kernel_size=3, stride=2, padding=1)
        self.fc = nn.Linear(pooled_side * pooled_side, feature_dim)
        self.bn5 = nn.BatchNorm2d(landmarks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.conv4(self.conv3(F.max_pool2d(self.conv2(x), 2)))
        x = self.top_m_0(self.m0(x))
        heatmaps = self.l0(F.relu(self.bn_end0(self.conv_last0(x))))
        x = self.conv6(F.relu(self.bn5(heatmaps)))
        return self.fc(F.relu(x.flatten(1)))


def feature_head(width: int) -> nn.Sequential:
    """``to_*`` heads: Linear -> ReLU -> BatchNorm1d -> Linear (keys ``.0``, ``.2``, ``.3``)."""
    return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.BatchNorm1d(width), nn.Linear(width, width))


def embedding_head(width: int, out: int) -> nn.Sequential:
    """``*_embed`` heads: ReLU -> Linear (key ``.1``)."""
    return nn.Sequential(nn.ReLU(), nn.Linear(width, out))


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class FanEncoder(nn.Module):
    """PD-FGC motion encoder: ``(N, 3, 224, 224)`` face crops in [-1, 1] -> ``(N, 548)`` ``pd_fpg``.

    Output layout: ``[eye (6) | emotion (30) | mouth (512)]``. ``mouth_embed`` is in the official file
    but unused by the official forward (kept so the file loads strictly).
    """

    def __init__(self, depth: int = 4, landmarks: int = 68, feature_dim: int = 512, pooled_side: int = 28,
                 eye_dim: int = 6, emotion_dim: int = 30, mouth_embed_dim: int = 500):
        super().__init__()
        self.pooled_side = pooled_side
        self.model = FaceAlignmentFeatures(depth, landmarks, feature_dim, pooled_side)
        self.to_mouth = feature_head(feature_dim)
        self.mouth_embed = embedding_head(feature_dim, mouth_embed_dim)
        self.to_eye = feature_head(feature_dim)
        self.eye_embed = embedding_head(feature_dim, eye_dim)
        self.to_emo = feature_head(feature_dim)
        self.emo_embed = embedding_head(feature_dim, emotion_dim)

    @property
    def output_dim(self) -> int:
        return self.eye_embed[1].out_features + self.emo_embed[1].out_features + self.to_mouth[3].out_features

    @classmethod
    def from_state_dict(cls, sd: StateDict, source: str = "<state dict>", dtype: torch.dtype | None = None) -> "FanEncoder":
        """Strict load of the official file; absent BatchNorm statistics default to mean 0 / variance 1."""
        what = f"FanEncoder ({SOURCE_REPO})"

        def tensor(key: str, ndim: int) -> torch.Tensor:
            return require(sd, key, source, what, ndim, describe=describe_state_dict)

        fc = tensor("model.fc.weight", 2)
        side = int(round(fc.shape[1] ** 0.5))
        config = dict(
            depth=_hourglass_depth(sd) or int(tensor("model.m0.b1_1.conv1.weight", 4).dim()),
            landmarks=int(tensor("model.l0.weight", 4).shape[0]),
            feature_dim=int(fc.shape[0]),
            pooled_side=side,
            eye_dim=int(tensor("eye_embed.1.weight", 2).shape[0]),
            emotion_dim=int(tensor("emo_embed.1.weight", 2).shape[0]),
            mouth_embed_dim=int(tensor("mouth_embed.1.weight", 2).shape[0]),
        )
        return load_strict(
            lambda: cls(**config), sd, source, what, buffer_default=batch_norm_default, dtype=dtype, describe=describe_state_dict
        )

    def _check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ShapeMismatchError(f"FanEncoder: input must be (N, 3, 224, 224) RGB face crops in [-1, 1], got {shape}.")
        sides = []
        for side in x.shape[-2:]:
            side = _conv_out(int(side), 7, 2, 3) // 2  # conv1 then the 2x2 max-pool
            sides.append(_conv_out(side, 3, 2, 1))     # conv6
        if sides != [self.pooled_side, self.pooled_side]:
            raise ShapeMismatchError(
                f"FanEncoder: input {tuple(x.shape[-2:])} (height, width) gives a {sides[0]}x{sides[1]} map where the "
                f"fully connected layer needs {self.pooled_side}x{self.pooled_side}; resize the face crop to 224x224."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, 224, 224)`` in [-1, 1] -> ``(N, 548)`` = ``[eye | emotion | mouth]``."""
        self._check(x)
        feat = self.model(x.to(self.model.conv1.weight.dtype))
        eye = self.eye_embed(self.to_eye(feat))
        emotion = self.emo_embed(self.to_emo(feat))
        return torch.cat([eye, emotion, self.to_mouth(feat)], dim=1)


def load_fan_encoder_file(path: str | os.PathLike, dtype: torch.dtype | None = None) -> FanEncoder:
    """FanEncoder from a ``.safetensors`` file or the official folder (``songkey/pd_fgc_motion``)."""
    weight_file = resolve_weight_file(path)
    return FanEncoder.from_state_dict(load_state_dict(weight_file), str(weight_file), dtype=dtype)


def _hourglass_depth(sd: StateDict) -> int:
    """Hourglass levels = number of ``model.m0.b1_<level>`` blocks in the file."""
    return len({k.split(".")[2] for k in sd if k.startswith("model.m0.b1_")})
