"""HelloMeme adapter weight files: reference adapters and motion adapters, with the official top-level names.

Each adapter is a container whose state-dict keys are those of the official file, built from the
file's own tensor shapes (channel counts, number of modules, table lengths) and loaded strictly with
:meth:`from_state_dict`. :func:`load_adapter` picks the class from the keys. Before building, the file's
set of submodules and their channel counts are checked against the official files of the class
(:mod:`hellomeme_core.nn.module_sets`, from ``model_files/official_layout.json``): a file missing whole
modules (``reference_modules_up.3``, ``mid_block``...) or holding them at other widths is refused with
a message naming the file, the first missing or mismatching tensor, what the file holds and the
official file it resembles.

How a UNet patch uses them, in the order the official denoisers apply them:

- Reference adapters: ``adapter.module_for(stage, block)`` with ``stage`` in ``"down"``, ``"mid"``,
  ``"up"`` and the UNet block index gives the module to apply there (or None), and
  ``reference_key(stage, block)`` the name of the reference-pass feature it needs (``"down_0"``,
  ``"mid"``, ``"up_1"``). Call ``module(hidden_states, ref_stats, num_frames)`` with
  ``hidden_states (batch*frames, C, h, w)`` and ``ref_stats (batch, C, h, w)`` (one reference image per
  batch item; repeated over frames). v1/v2 (``HMReferenceAdapter``): after down blocks 0-2 (feature
  cached after the block), after the mid block, and before up blocks 1-3. v3-v5: before every up block.
- Motion adapters (v3/v4 ``HM3MotionAdapter``, v5 ``HM5MotionAdapter``): ``module_for("down", i)``
  after down block ``i``, ``module_for("up", i)`` before up block ``i`` (after the reference module);
  call ``module(hidden_states, pad_states, temb, num_frames)`` with ``pad_states (batch, C, 2, h, w)``
  (v5 accepts None) and ``temb (batch*frames, 1280)`` the UNet time embedding (v5 ignores it).
- AnimateDiff ``MotionAdapter`` files: :class:`~hellomeme_core.temporal.AnimateDiffMotionAdapter`,
  ``module(kind, block, index)`` -> ``module(hidden_states, num_frames)``.
"""
from __future__ import annotations

import re

import torch
from torch import nn

from .errors import WeightFileError
from .knitting.reference_attention import (
    ReferenceKnittingAttention,
    ReferenceKnittingAttentionV5,
    ReferenceSTKModule,
    reference_module_class,
)
from .nn.module_sets import ModuleSet, channel_key, check_module_set, group_slots, official_module_sets
from .nn.state_dicts import StateDict, load_strict, sub_state_dict
from .temporal.animatediff import AnimateDiffMotionAdapter
from .temporal.motion_modules import PaddedTemporalAttention, PaddedTemporalTransformer, motion_module_class

STAGES = ("down", "mid", "up")


def _indices(sd: StateDict, name: str) -> list[int]:
    pattern = re.compile(re.escape(name) + r"\.(\d+)\.")
    return sorted({int(m.group(1)) for k in sd if (m := pattern.match(k))})


def _module_list(sd: StateDict, name: str, source: str, expected: type[nn.Module], what: str) -> nn.ModuleList:
    """Build (unloaded) the modules ``name.{i}`` from their own keys; every one must be of ``expected``."""
    modules = []
    indices = _indices(sd, name)
    if indices != list(range(len(indices))):
        raise WeightFileError(f"{source}: {name} modules are numbered {indices}, expected 0..{len(indices) - 1} ({what}).")
    for i in indices:
        local = sub_state_dict(sd, f"{name}.{i}.")
        cls = reference_module_class(local) if name.startswith("reference") else motion_module_class(local)
        if cls is not expected:
            raise WeightFileError(
                f"{source}: {name}.{i} has the layout of {cls.__name__}, but a {what} file holds "
                f"{expected.__name__} modules. The file mixes versions or is damaged."
            )
        modules.append(cls.from_state_dict(local, source, prefix=f"{name}.{i}.", load=False))
    return nn.ModuleList(modules)


def _shapes(sd: StateDict) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items()}


class _Adapter(nn.Module):
    """Common loading: subclasses set ``what`` and build their module lists in ``_build``.

    Before anything is built, the file's submodules and their channel counts are checked against the
    official files of ``official_class`` (:func:`~hellomeme_core.nn.module_sets.check_module_set`), so
    a file missing whole modules, or holding them at other widths, is refused with its name.
    """

    what = ""
    official_class = ""

    @classmethod
    def module_sets(cls) -> tuple[ModuleSet, ...]:
        """The module sets (submodule names + channel counts) a file of this class may have."""
        return official_module_sets(cls.official_class)

    @classmethod
    def from_state_dict(cls, sd: StateDict, source: str = "<state dict>", dtype: torch.dtype | None = None) -> "_Adapter":
        """Check the module set, build from the shapes of ``sd`` (full official keys) and load it strictly.

        Floating tensors become ``dtype`` (float32 when None); tensors already of that dtype are shared.
        """
        try:
            check_module_set(_shapes(sd), source, cls.what, cls.module_sets())
            adapter = cls()
            adapter._build(sd, source)
            return load_strict(adapter, sd, source, cls.what, dtype=dtype)
        except WeightFileError as exc:
            raise WeightFileError(f"{exc}{_looks_like(sd, source, cls)}") from None

    def _build(self, sd: StateDict, source: str) -> None:
        raise NotImplementedError


class ReferenceAdapter(_Adapter):
    """Base of the reference adapters: ``reference_modules_up`` (+ ``_down``/``_mid`` in v1/v2)."""

    module_class: type[nn.Module] = ReferenceKnittingAttention
    # UNet up block ``i`` uses ``reference_modules_up[i - up_offset]`` (v1/v2 have none for up block 0).
    up_offset = 0

    def _build(self, sd: StateDict, source: str) -> None:
        self.reference_modules_up = _module_list(sd, "reference_modules_up", source, self.module_class, self.what)
        if not len(self.reference_modules_up):
            raise WeightFileError(f"{source} has no reference_modules_up tensors: it is not a {self.what} file.")

    def module_for(self, stage: str, block: int = 0) -> nn.Module | None:
        """The module applied at UNet ``stage`` (``down``/``mid``/``up``) block ``block``, or None."""
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        if stage == "up":
            i = block - self.up_offset
            return self.reference_modules_up[i] if 0 <= i < len(self.reference_modules_up) else None
        if stage == "mid":
            return getattr(self, "reference_modules_mid", None)
        down = getattr(self, "reference_modules_down", None)
        # The reference pass caches only down blocks 0-2 (cross-attention blocks): block 3's module is unused.
        return down[block] if down is not None and block < min(len(down), 3) else None

    @staticmethod
    def reference_key(stage: str, block: int = 0) -> str:
        """Name of the reference-pass feature a module at ``stage``/``block`` takes (``down_0``, ``mid``, ``up_1``)."""
        return "mid" if stage == "mid" else f"{stage}_{block}"


class HMReferenceAdapter(ReferenceAdapter):
    """v1/v2 (``hm_reference``, ``hm2_reference``): down 0-3, mid, up for UNet up blocks 1-3.

    Files without down/mid modules (official ``version != 'v1'`` config) load too; then only the up
    modules act, as in the official UNet's ``hasattr`` checks.
    """

    what = "HMReferenceAdapter (v1/v2 hm_reference / hm2_reference)"
    official_class = "HMReferenceAdapter"
    up_offset = 1

    @classmethod
    def module_sets(cls) -> tuple[ModuleSet, ...]:
        """The official down 0-3 / mid / up 0-2 set, and its up modules alone (``version != 'v1'`` config)."""
        full = official_module_sets(cls.official_class)
        return full + tuple(ms.restricted(("reference_modules_up.",), f"{ms.label}, up modules only") for ms in full)

    def _build(self, sd: StateDict, source: str) -> None:
        super()._build(sd, source)
        if any(k.startswith("reference_modules_down.") for k in sd):
            self.reference_modules_down = _module_list(sd, "reference_modules_down", source, self.module_class, self.what)
        if any(k.startswith("reference_modules_mid.") for k in sd):
            local = sub_state_dict(sd, "reference_modules_mid.")
            self.reference_modules_mid = ReferenceKnittingAttention.from_state_dict(
                local, source, prefix="reference_modules_mid.", load=False
            )


class HM3ReferenceAdapter(ReferenceAdapter):
    """v3/v4 (``hm3_reference``, ``hm4_reference``): one module before each UNet up block."""

    what = "HM3ReferenceAdapter (v3/v4 hm3_reference / hm4_reference)"
    official_class = "HM3ReferenceAdapter"


class HM5ReferenceAdapter(ReferenceAdapter):
    """v5 (``hm5_reference``): V5 reference attentions before each UNet up block."""

    what = "HM5ReferenceAdapter (v5 hm5_reference)"
    official_class = "HM5ReferenceAdapter"
    module_class = ReferenceKnittingAttentionV5


class HM5bReferenceAdapter(ReferenceAdapter):
    """v5b/v5c (``hm5b_reference``, ``hm5c_reference``): STK reference modules before each up block."""

    what = "HM5bReferenceAdapter (v5b/v5c hm5b_reference / hm5c_reference)"
    official_class = "HM5bReferenceAdapter"
    module_class = ReferenceSTKModule


class MotionAdapter(_Adapter):
    """Base of the HelloMeme motion adapters: ``motion_down`` and ``motion_up`` module lists."""

    module_class: type[nn.Module] = PaddedTemporalAttention

    def _build(self, sd: StateDict, source: str) -> None:
        self.motion_down = _module_list(sd, "motion_down", source, self.module_class, self.what)
        self.motion_up = _module_list(sd, "motion_up", source, self.module_class, self.what)
        if not len(self.motion_down) or not len(self.motion_up):
            raise WeightFileError(f"{source} lacks motion_down or motion_up modules: it is not a complete {self.what} file.")

    def module_for(self, stage: str, block: int) -> nn.Module | None:
        """``motion_down[block]`` (after down block) or ``motion_up[block]`` (before up block); None if absent."""
        if stage not in ("down", "up"):
            return None
        modules = self.motion_down if stage == "down" else self.motion_up
        return modules[block] if 0 <= block < len(modules) else None

    @property
    def max_frames_official(self) -> int:
        """Frames per window the file's position tables cover officially (longer ones are extended)."""
        m = self.motion_down[0]
        if isinstance(m, PaddedTemporalAttention):
            return m.pos_embed_t.pe.shape[1] - 2
        return m.attn1.transformer_blocks[0].pos_embed.pe.shape[1]


class HM3MotionAdapter(MotionAdapter):
    """v3/v4 (``hm3_motion``, ``hm4_motion``)."""

    what = "HM3MotionAdapter (v3/v4 hm3_motion / hm4_motion)"
    official_class = "HM3MotionAdapter"


class HM5MotionAdapter(MotionAdapter):
    """v5 (``hm5_motion``)."""

    what = "HM5MotionAdapter (v5 hm5_motion)"
    official_class = "HM5MotionAdapter"
    module_class = PaddedTemporalTransformer


ADAPTER_CLASSES: tuple[type[nn.Module], ...] = (
    HMReferenceAdapter,
    HM3ReferenceAdapter,
    HM5ReferenceAdapter,
    HM5bReferenceAdapter,
    HM3MotionAdapter,
    HM5MotionAdapter,
    AnimateDiffMotionAdapter,
)


def adapter_class(sd: StateDict, source: str = "<state dict>") -> type[nn.Module]:
    """The adapter class whose layout the keys of ``sd`` follow; :class:`WeightFileError` if none."""
    keys = list(sd)
    if any(k.startswith(("down_blocks.", "up_blocks.")) and ".motion_modules." in k for k in keys):
        return AnimateDiffMotionAdapter
    if any(k.startswith("motion_down.") or k.startswith("motion_up.") for k in keys):
        return HM5MotionAdapter if any(".attn_pad." in k for k in keys) else HM3MotionAdapter
    if any(k.startswith("reference_modules_") for k in keys):
        if any(".attn_ref." in k for k in keys):
            return HM5bReferenceAdapter
        if any(k.startswith("reference_modules_up.") and k.endswith(".time_emb_proj.weight") for k in keys):
            return HM5ReferenceAdapter
        if any(k.startswith(("reference_modules_down.", "reference_modules_mid.")) for k in keys):
            return HMReferenceAdapter
        # Up modules only: v1/v2 have three (UNet up blocks 1-3, 1280/1280/640 channels), v3/v4 four
        # (1280/1280/1280/640). Judged by the channel sequence, so an hm3 file missing its last module
        # is reported as a truncated v3/v4 file, not taken for v1/v2.
        return HMReferenceAdapter if _up_channels(sd) in _v12_up_channels() else HM3ReferenceAdapter
    first = ", ".join(keys[:3]) or "no tensors"
    raise WeightFileError(
        f"{source} is not a HelloMeme reference/motion adapter or AnimateDiff motion adapter (first keys: {first}). "
        "Check that the right file is selected."
    )


def _up_channels(sd: StateDict) -> list[int | None]:
    """Channel counts of the ``reference_modules_up.{i}`` modules of ``sd``, in index order."""
    slots = group_slots({k: tuple(v.shape) for k, v in sd.items() if k.startswith("reference_modules_up.")})
    out = []
    for name in sorted(slots, key=lambda n: int(n.rsplit(".", 1)[1])):
        ck = channel_key(slots[name])
        out.append(None if ck is None else int(slots[name][ck[0]][ck[1]]))
    return out


def _v12_up_channels() -> list[list[int | None]]:
    return [[s.channels for s in ms.slots if s.name.startswith("reference_modules_up.")]
            for ms in official_module_sets(HMReferenceAdapter.official_class)]


def _looks_like(sd: StateDict, source: str, expected: type[nn.Module]) -> str:
    """`` The tensors look like <class>.`` when the keys follow another adapter's layout."""
    try:
        found = adapter_class(sd, source)
    except WeightFileError:
        return " The tensors do not look like any HelloMeme adapter."
    return "" if found is expected else f" The tensors look like {getattr(found, 'what', found.__name__)}."


def load_adapter(sd: StateDict, source: str = "<state dict>", dtype: torch.dtype | None = None) -> nn.Module:
    """Pick the adapter class from the keys of ``sd`` and load it strictly (eval mode, ``dtype`` or float32)."""
    return adapter_class(sd, source).from_state_dict(sd, source, dtype=dtype)

