"""Glue between the HelloMeme block program (``hellomeme_core.denoiser``) and ComfyUI's SD1.5 UNet.

ComfyUI's ``UNetModel._forward`` (comfy/ldm/modules/diffusionmodules/openaimodel.py) offers patch
points in ``transformer_options["patches"]``; we use:

* ``emb_patch`` (once per UNet call, before any block): resolve this call's HelloMeme data
  (reference rows, control rows, frames) from ``cond_or_uncond`` / ``context_window`` and keep the
  time embedding for the motion modules;
* ``input_block_patch`` (runs before the skip is stored) at the end of each diffusers encoder block:
  recording and control additions, which the official in-place ``+=`` also puts in the skip;
* ``input_block_patch_after_skip``: the modules that follow (reference / motion), which do not reach
  the skip;
* ``output_block_patch`` on ``h`` at the start of each diffusers decoder block;
* AnimateDiff motion modules sit inside blocks, where there is no patch point: the blocks are
  replaced by object patches that hold the original layers plus a :class:`MotionSlot`, run through a
  ``forward_timestep_embed_patch`` handler (as AnimateDiff-Evolved does with its own module type).

Everything goes on a ``ModelPatcher.clone()``; the user's MODEL is never touched. The HelloMeme modules
themselves are not part of the UNet: they are a model of their own that the clone carries as an
additional model (:mod:`.managed_models`), so ComfyUI loads and offloads them with the UNet.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

import comfy.model_patcher
from comfy.ldm.modules.diffusionmodules.openaimodel import TimestepEmbedSequential, Upsample

from hellomeme_core.denoiser import BlockProgram, HMUNetModules, StepInputs
from hellomeme_core.denoiser.conventions import chunk_rows
from hellomeme_core.denoiser.motion_pads import MotionPadBank
from hellomeme_core.errors import ShapeMismatchError

from .managed_models import ADDITIONAL_MODELS_KEY

# ComfyUI SD1.5 layout: diffusers encoder block i ends at input_blocks[3i+3] (i<3) / [11];
# diffusers decoder block i starts at output_blocks[3i].
ENCODER_BLOCK_ENDS = {3: 0, 6: 1, 9: 2, 11: 3}
DECODER_BLOCK_STARTS = {0: 0, 3: 1, 6: 2, 9: 3}
# Where AnimateDiff motion modules go: (diffusers kind, block, index) -> ComfyUI block path.
_DOWN_SLOTS = [("down", i, j, f"input_blocks.{1 + 3 * i + j}") for i in range(4) for j in range(2)]
_UP_SLOTS = [("up", i, j, f"output_blocks.{3 * i + j}") for i in range(4) for j in range(3)]
OPTIONS_KEY = "hellomeme"


class StepSource(Protocol):
    """Gives the HelloMeme data of one UNet call: ``rows`` is the batch the UNet sees."""

    def step_for(self, rows: int, transformer_options: dict) -> StepInputs: ...


@dataclass
class FixedStepSource:
    """The same data for every call (parity runs, benchmarks): official layouts, flattened control."""

    step: StepInputs

    def step_for(self, rows: int, transformer_options: dict) -> StepInputs:
        s = self.step
        return StepInputs(s.num_frames, s.reference, s.control, s.motion_pads, s.use_motion, None,
                          s.record, dict(s.extra))


CHUNK_KEY = "hellomeme_video_chunk"  # transformer_options entry set by the video sampler for one UNet call
# StepInputs.extra flag: AnimateDiff runs in this call. The official motion denoisers always run AnimateDiff
# (``use_motion`` switches only HelloMeme's own motion modules); only the image UNet of a pass has none.
ANIMATEDIFF_KEY = "animatediff"


@dataclass(frozen=True)
class VideoChunk:
    """One chunk of the official video schedule: its video frames, its pads (rows ``[uncond, cond]``, or
    None: the motion modules run without pads) and whether the motion modules run at all."""

    frames: tuple[int, ...]
    pads: Mapping[str, torch.Tensor] | None = None
    use_motion: bool = True  # False: neither HelloMeme's motion modules nor AnimateDiff run (the image UNet)


@dataclass
class ComfyStepSource:
    """HelloMeme data for ComfyUI's batches: chunks of ``cond_or_uncond``, frames as the batch.

    ``reference`` / ``motion_pads`` rows are ``[uncond, cond]`` (official reference-pass order);
    ``control_cond`` / ``control_uncond`` are per frame ``(frames, C, h, w)`` (uncond may have one row,
    reused for every frame as the official video pipelines do).
    """

    reference: Mapping[str, torch.Tensor] | None = None
    control_cond: Mapping[str, torch.Tensor] | None = None
    control_uncond: Mapping[str, torch.Tensor] | None = None
    motion_pads: Mapping[str, torch.Tensor] | None = None
    use_motion: bool = False
    record: dict | None = None
    pad_bank: MotionPadBank | None = None
    hm_reference: object | None = None  # the HMReference the features came from (its pass model and context)

    @property
    def num_control_frames(self) -> int | None:
        if not self.control_cond:
            return None
        return next(iter(self.control_cond.values())).shape[0]

    def step_for(self, rows: int, transformer_options: dict) -> StepInputs:
        cou = list(transformer_options.get("cond_or_uncond") or [0])
        if rows % len(cou):
            raise ShapeMismatchError(f"HelloMeme: UNet batch {rows} does not split into {len(cou)} cond/uncond chunks.")
        per = rows // len(cou)
        chunk: VideoChunk | None = transformer_options.get(CHUNK_KEY)
        window = transformer_options.get("context_window")
        if chunk is not None:  # the official video schedule names the frames and pads of this call
            frames = list(chunk.frames)
        elif window is not None and len(window.index_list) == per:
            frames = list(window.index_list)
        else:
            frames = list(range(per))
        order = chunk_rows(cou)
        use_motion = self.use_motion if chunk is None else chunk.use_motion
        step = StepInputs(num_frames=per, use_motion=use_motion, record=self.record)
        if chunk is not None and not chunk.use_motion:
            step.extra[ANIMATEDIFF_KEY] = False
        if self.reference is not None:
            step.reference = {k: _select_rows(v, order) for k, v in self.reference.items()}
        if chunk is not None:
            pads = chunk.pads
        else:
            pads = self.pad_bank.pads(frames[0], frames[-1]) if self.pad_bank is not None else self.motion_pads
        if pads is not None:
            step.motion_pads = {k: _select_rows(v, order) for k, v in pads.items()}
        if self.control_cond:
            n = self.num_control_frames
            if max(frames) >= n:
                raise ShapeMismatchError(
                    f"Apply HelloMeme: the latent batch has {max(frames) + 1} frames but the driving motion has only {n}. "
                    "Use as many driving frames as latent frames (or fewer latents: Empty Latent Image batch_size)."
                )
            idx = torch.tensor(frames, dtype=torch.long)
            step.control = {}
            for key, cond in self.control_cond.items():
                uncond = self.control_uncond.get(key) if self.control_uncond else None
                parts = []
                for row in order:
                    src = cond if row == 1 or uncond is None else uncond
                    parts.append(src.index_select(0, idx.to(src.device)) if src.shape[0] > 1 or n == 1 else src.expand(len(frames), *src.shape[1:]))
                step.control[key] = torch.cat(parts, 0)
        return step


def _select_rows(t: torch.Tensor, order: Sequence[int]) -> torch.Tensor:
    if t.shape[0] == 1:
        return t.expand(len(order), *t.shape[1:])
    return t.index_select(0, torch.tensor(list(order), dtype=torch.long, device=t.device))


def _module_dtype_call(module: nn.Module, x: torch.Tensor, *args, device: torch.device | None = None, **kwargs) -> torch.Tensor:
    p = next(module.parameters(), None)
    if p is None:
        return module(x, *args, **kwargs)
    device = device if device is not None else p.device
    return module(x.to(device=device, dtype=p.dtype), *args, **kwargs).to(device=x.device, dtype=x.dtype)


class MotionSlot(nn.Module):
    """Where an AnimateDiff motion module runs inside a ComfyUI block (by :func:`_motion_slot_handler`).

    The motion module is referenced, not registered: its weights belong to the HelloMeme modules'
    own ModelPatcher, so the UNet's load neither counts nor moves them.
    """

    def __init__(self, motion: nn.Module, options_key: str, compute_device: torch.device | None = None):
        super().__init__()
        self._motion = [motion]
        self.options_key = options_key
        self.compute_device = compute_device

    @property
    def motion(self) -> nn.Module:
        return self._motion[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # reached only without our handler: no-op
        return x


def _motion_slot_handler(layer: MotionSlot, x, emb, context, transformer_options, output_shape=None,
                         time_context=None, num_video_frames=None, image_only_indicator=None):
    step = transformer_options.get(layer.options_key + ".step")
    if step is None or not step.extra.get(ANIMATEDIFF_KEY, True):  # the v3/v4 margin pass runs the image UNet
        return x
    return _module_dtype_call(layer.motion, x, num_frames=step.num_frames, device=layer.compute_device)


class HelloMemeUNetPatch:
    """The patch callables of one HelloMeme configuration (shared, never deep-copied by clone())."""

    def __init__(self, program: BlockProgram, source: StepSource, version: str = "", temporal: bool = False):
        self.program = program
        self.source = source
        self.version = version
        self.temporal = temporal
        self.key = f"{OPTIONS_KEY}.{id(self):x}"

    def __deepcopy__(self, memo):  # ModelPatcher.clone() deep-copies model_options: share, don't copy weights
        return self

    # -- patch points -------------------------------------------------------------------------
    def emb_patch(self, emb: torch.Tensor, model_channels: int, transformer_options: dict) -> torch.Tensor:
        step = self.source.step_for(emb.shape[0], transformer_options)
        step.temb = emb
        transformer_options[self.key + ".step"] = step
        transformer_options[self.key + ".next"] = {}
        return emb

    def input_block_patch(self, h: torch.Tensor, transformer_options: dict) -> torch.Tensor:
        kind, idx = transformer_options["block"]
        i = ENCODER_BLOCK_ENDS.get(idx)
        step = transformer_options.get(self.key + ".step")
        if i is None or step is None:
            return h
        skip, nxt = self.program.after_encoder_block(i, h, step)
        if nxt is not skip:
            transformer_options[self.key + ".next"][idx] = nxt
        return skip

    def input_block_patch_after_skip(self, h: torch.Tensor, transformer_options: dict) -> torch.Tensor:
        kind, idx = transformer_options["block"]
        pending = transformer_options.get(self.key + ".next")
        if not pending or idx not in pending:
            return h
        return pending.pop(idx)

    def output_block_patch(self, h: torch.Tensor, hsp: torch.Tensor, transformer_options: dict):
        kind, idx = transformer_options["block"]
        i = DECODER_BLOCK_STARTS.get(idx)
        step = transformer_options.get(self.key + ".step")
        if i is None or step is None:
            return h, hsp
        return self.program.before_decoder_block(i, h, step), hsp

    def callables(self) -> dict[str, Callable]:
        return {
            "emb_patch": self.emb_patch,
            "input_block_patch": self.input_block_patch,
            "input_block_patch_after_skip": self.input_block_patch_after_skip,
            "output_block_patch": self.output_block_patch,
        }


def _strip_hellomeme(patcher: comfy.model_patcher.ModelPatcher) -> None:
    """Remove an earlier HelloMeme configuration from a clone (Temporal replaces the image stage)."""
    patches = patcher.model_options["transformer_options"].get("patches", {})
    for name, plist in list(patches.items()):
        kept = [p for p in plist if not isinstance(getattr(p, "__self__", None), HelloMemeUNetPatch)
                and not (isinstance(p, tuple) and p and p[0] is MotionSlot)]
        patches[name] = kept
    # Our object patches are the original layers plus our own; drop only our layers, so a block that
    # another extension patched before us keeps that patch.
    for name, obj in list(patcher.object_patches.items()):
        if isinstance(obj, TimestepEmbedSequential) and any(isinstance(x, MotionSlot) for x in obj):
            patcher.object_patches[name] = TimestepEmbedSequential(*[x for x in obj if not isinstance(x, MotionSlot)])
    patcher.model_options["transformer_options"].pop(OPTIONS_KEY, None)
    patcher.remove_additional_models(ADDITIONAL_MODELS_KEY)


def current_patch(model: comfy.model_patcher.ModelPatcher) -> HelloMemeUNetPatch | None:
    """The HelloMeme configuration a MODEL carries (set by Apply HelloMeme), if any."""
    return model.model_options.get("transformer_options", {}).get(OPTIONS_KEY)


def _animatediff_object_patches(patcher, adapter, options_key: str, device: torch.device | None) -> dict[str, nn.Module]:
    out: dict[str, nn.Module] = {}
    for kind, i, j, path in _DOWN_SLOTS + _UP_SLOTS:
        motion = adapter.module(kind, i, j)
        if motion is None:
            continue
        name = f"diffusion_model.{path}"
        layers = list(patcher.get_model_object(name))
        at = len(layers) - 1 if layers and isinstance(layers[-1], Upsample) else len(layers)
        layers.insert(at, MotionSlot(motion, options_key, device))
        out[name] = TimestepEmbedSequential(*layers)
    mid = adapter.module("mid", 0, 0)
    if mid is not None:
        name = "diffusion_model.middle_block"
        layers = list(patcher.get_model_object(name))
        # diffusers UNetMidBlockCrossAttnMotion: resnet, attention, motion module, resnet
        layers.insert(2, MotionSlot(mid, options_key, device))
        out[name] = TimestepEmbedSequential(*layers)
    return out


def install(model: comfy.model_patcher.ModelPatcher, patch: HelloMemeUNetPatch, modules: HMUNetModules,
            owner: comfy.model_patcher.ModelPatcher | None = None) -> comfy.model_patcher.ModelPatcher:
    """A clone of ``model`` with ``patch`` installed (replacing an earlier HelloMeme configuration).

    ``owner`` is the ModelPatcher that holds ``modules`` (the HelloMeme UNet modules); the clone carries it
    as an additional model, so samplers load it with the UNet. Without one (the reference pass, which
    runs no inserted module) nothing is attached.
    """
    m = model.clone()
    _strip_hellomeme(m)
    for name, fn in patch.callables().items():
        m.set_model_patch(fn, name)
    if modules.animatediff is not None:
        for name, obj in _animatediff_object_patches(m, modules.animatediff, patch.key, patch.program.compute_device).items():
            m.add_object_patch(name, obj)
        m.set_model_forward_timestep_embed_patch((MotionSlot, _motion_slot_handler))
    if owner is not None:
        m.set_additional_models(ADDITIONAL_MODELS_KEY, [owner])
    m.model_options["transformer_options"][OPTIONS_KEY] = patch
    return m
