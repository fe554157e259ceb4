"""HelloMeme Video Sampler: the official video schedules, sampled with ComfyUI's own samplers.

v1/v2 (two stages, ``sample_two_stage``): every frame is first made alone with the image UNet, starting from
the previous frame's result re-noised; then the whole (padded) clip is re-noised from those latents and
denoised in overlapping 12-frame AnimateDiff windows. v3-v5 (recursive, below):

The plan (levels, chunks, margins, pad sources) comes from :mod:`hellomeme_core.denoiser.video_schedule`.
Each level (innermost first) is one ComfyUI sampling run over that level's frames; a
``model_function_wrapper`` splits every denoiser call into the level's chunks (each with its frames'
control features and its two pads) and averages the shared frames, before CFG as the official code
does (CFG is linear, so ComfyUI's CFG after the average is the same). After a level, its final latents
become the motion pads of the frames the level above needs (the reference pass).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

import comfy.model_management
import comfy.model_patcher
import comfy.patcher_extension
import comfy.sample
import comfy.samplers

from hellomeme_core.denoiser.motion_pads import MotionPadBank
from hellomeme_core.denoiser.video_schedule import (
    Level, PadPolicy, TwoStagePlan, denoiser_calls_per_step, margin_pass_frames, pad_policy, plan_levels,
    plan_two_stage)
from hellomeme_core.errors import HelloMemeError, ShapeMismatchError
from hellomeme_core.versions import version_info

from .control_frames import frame_hints, split_control
from .progress import node_progress
from .temporal import add_motion_pads
from .unet_patches import CHUNK_KEY, HelloMemeUNetPatch, VideoChunk, current_patch

NODE = "HelloMeme Video Sampler"
_log = logging.getLogger("hellomeme")


@dataclass
class VideoRun:
    """What a run produced, level by level (ComfyUI latent space), for tests and the parity runner."""

    levels: list[Level]
    policy: PadPolicy | None  # None: the v1/v2 two-stage schedule
    passes: dict[tuple[int, str], torch.Tensor] = field(default_factory=dict)  # (depth, "main"/"margin"/"image") -> latents
    chunks: dict[int, list[VideoChunk]] = field(default_factory=dict)  # depth -> what each chunk ran with


def video_patch(model: comfy.model_patcher.ModelPatcher) -> HelloMemeUNetPatch:
    """The HelloMeme configuration of a MODEL from Apply HelloMeme Temporal, or a clear error."""
    patch = current_patch(model)
    if patch is None or not patch.temporal:
        what = "no HelloMeme patch" if patch is None else "only the image stage (Apply HelloMeme)"
        raise HelloMemeError(f"{NODE}: the MODEL has {what}. Connect the MODEL output of Apply HelloMeme Temporal.")
    return patch


# The official samplers of the versions (hellomeme_core.versions ``official_sampler``) as ComfyUI names them:
# diffusers' Euler with "linspace" spacing has ComfyUI's "normal" sigmas; DPM-Solver++ SDE (2nd order, midpoint)
# is dpmpp_2m_sde, and its integer "linspace" timesteps (999 .. 40, then 0) are ComfyUI's "sgm_uniform" spacing.
OFFICIAL_SAMPLERS = {"euler": ("euler", "normal"), "dpm_solver_pp_sde": ("dpmpp_2m_sde", "sgm_uniform")}


def note_official_sampler(version: str, sampler_name: str, scheduler: str) -> None:
    """Say in the log when the sampler differs from the official one of ``version`` (allowed, just not official)."""
    official = OFFICIAL_SAMPLERS[version_info(version).official_sampler]
    if (sampler_name, scheduler) != official:
        _log.info("HelloMeme %s: %s officially samples with %s / %s; you chose %s / %s.", NODE, version, *official,
                  sampler_name, scheduler)


def schedule_policy(version: str) -> PadPolicy | None:
    """The pad policy the sampler follows for ``version``: None for the v1/v2 two-stage pipeline, v5's for v5c
    (it has no official video pipeline; the log says so)."""
    kind = version_info(version).official_video
    if kind == "two_stage":
        return None
    if kind is None:
        _log.warning("HelloMeme %s has no official video pipeline; %s runs the v5 schedule with its motion modules.",
                     version, NODE)
        return PadPolicy.OVERWRITE
    return pad_policy(version)


def chunk_wrapper(level: Level, chunks: list[VideoChunk]) -> Callable:
    """A ``model_function_wrapper``: the level's denoiser call as one call per chunk, shared frames averaged."""
    n = len(level.frames)

    def wrapper(apply_model, args: dict) -> torch.Tensor:
        x, t, c, cou = args["input"], args["timestep"], args["c"], args["cond_or_uncond"]
        groups = len(cou)
        if x.shape[0] != groups * n:
            raise ShapeMismatchError(f"{NODE}: the sampler called the UNet with {x.shape[0]} latents, expected "
                                     f"{groups} x {n} (this level's frames).")
        out = torch.zeros_like(x)
        count = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        for positions, chunk in zip(level.chunks, chunks):
            comfy.model_management.throw_exception_if_processing_interrupted()  # Cancel between chunks
            rows = torch.tensor([g * n + p for g in range(groups) for p in positions], device=x.device)
            part = {}
            for key, value in c.items():
                if key == "transformer_options":
                    value = {**value, CHUNK_KEY: chunk}
                elif key == "control":  # a stock ControlNet's residuals, one row per latent like x
                    value = split_control(value, rows, x.shape[0])
                elif isinstance(value, torch.Tensor) and value.shape[0] == x.shape[0]:
                    value = value.index_select(0, rows.to(value.device))
                part[key] = value
            out.index_add_(0, rows, apply_model(x.index_select(0, rows), t.index_select(0, rows), **part))
            count.index_add_(0, rows, torch.ones(len(rows), device=x.device, dtype=x.dtype))
        return out / count.view(-1, *([1] * (x.dim() - 1)))

    return wrapper


def _pass_model(model, wrapper: Callable) -> comfy.model_patcher.ModelPatcher:
    """A clone for one pass: the chunk wrapper in, the context windows of Apply HelloMeme Temporal out."""
    m = model.clone()
    m.model_options.pop("context_handler", None)
    m.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.PREPARE_SAMPLING, "ContextWindows_prepare_sampling")
    m.set_model_unet_function_wrapper(wrapper)
    return m


def official_start_noise(model, noise: torch.Tensor, sigmas: torch.Tensor, sampler_name: str) -> torch.Tensor:
    """With ``euler``: noise such that ComfyUI's first latent is ``sigma_0 * noise``, where the official Euler starts.

    ComfyUI starts a full denoise of an epsilon model at ``sqrt(1 + sigma_0^2) * noise``. The official v3/v4
    scheduler (diffusers' Euler, "linspace" spacing) starts at ``sigma_0 * noise`` (0.2 % apart at SD1.5's
    sigma_max); the official v5 DPM-Solver++ starts from unit noise in its variance-preserving form, which is
    ComfyUI's start. So only Euler is adjusted.
    """
    if sampler_name != "euler":
        return noise
    sampling = model.get_model_object("model_sampling")
    s0, s_max = float(sigmas[0]), float(sampling.sigma_max)
    if math.isclose(s_max, s0, rel_tol=1e-5) or s0 > s_max:
        return noise * (s0 / math.sqrt(1.0 + s0 * s0))
    return noise


def step_counter(total: int) -> Callable[[], None]:
    """``on_step()`` for every sampler step of a run: one node progress bar over all its passes."""
    bar = node_progress(total)
    done = [0]

    def on_step() -> None:
        done[0] += 1
        bar(done[0], total)

    return on_step


def _sample_pass(model, wrapper, noise, latent_image, positive, negative, steps, cfg, sampler_name, scheduler,
                 denoise, seed, sigmas, on_step, frames: list[int], total: int) -> torch.Tensor:
    """One sampling run over the latents of ``frames`` (video frame indices; ControlNet hints follow them)."""
    m = _pass_model(model, wrapper)
    if sigmas is None:
        sigmas = comfy.samplers.KSampler(m, steps=steps, device=m.load_device, sampler=sampler_name,
                                         scheduler=scheduler, denoise=denoise, model_options=m.model_options).sigmas
    noise = official_start_noise(m, noise, sigmas, sampler_name)
    with frame_hints((positive, negative), frames, total, strict_node=NODE):
        return comfy.sample.sample(m, noise, steps, cfg, sampler_name, scheduler, positive, negative, latent_image,
                                   denoise=denoise, sigmas=sigmas, callback=lambda *a: on_step(), disable_pbar=True,
                                   seed=seed)


def sample_video(model, positive, negative, latent: dict, seed: int, steps: int, cfg: float, sampler_name: str,
                 scheduler: str, denoise: float = 1.0, sigmas: torch.Tensor | None = None,
                 noise: torch.Tensor | None = None, keep_chunks: bool = False) -> tuple[dict, VideoRun]:
    """The official v3-v5 video schedule over ``latent`` (one latent per driving frame); the result and its levels.

    ``sigmas`` (all passes) and ``noise`` (``(frames, 4, h, w)``, by position) replace ComfyUI's schedule
    and seeded noise, for the parity runner. ``keep_chunks`` keeps every chunk's pads in the returned run
    (for tests: a long clip's pads would otherwise stay in memory after their level).
    """
    patch = video_patch(model)
    policy = schedule_policy(patch.version)
    note_official_sampler(patch.version, sampler_name, scheduler)
    source = patch.source
    samples = latent.get("samples") if isinstance(latent, dict) else None
    if not isinstance(samples, torch.Tensor) or samples.dim() != 4:
        raise ShapeMismatchError(f"{NODE}: latent_image must be a LATENT batch (frames, 4, h, w).")
    frames = samples.shape[0]
    controls = source.num_control_frames
    if controls is not None and controls != frames:
        raise ShapeMismatchError(
            f"{NODE}: the LATENT batch has {frames} latents but the driving motion has {controls} frames; the video "
            "schedule needs one latent per driving frame (Empty Latent Image batch_size = the frame count).")
    if policy is None:
        return sample_two_stage(model, positive, negative, samples, seed, steps, cfg, sampler_name, scheduler,
                                denoise, patch.version)
    if noise is None:
        noise = comfy.sample.prepare_noise(samples, seed)
    hm_reference = source.hm_reference
    levels = plan_levels(frames)
    run = VideoRun(levels, policy)
    _log.info("HelloMeme Video Sampler: %s schedule (%s pads), %d frames in %d level(s) of %s frames, %d denoiser "
              "calls per step", patch.version, policy.value, frames, len(levels),
              "/".join(str(len(lv.frames)) for lv in levels), denoiser_calls_per_step(levels, policy))
    passes = len(levels) + (1 if policy is PadPolicy.KEEP_DEEPEST else 0)
    on_step = step_counter(passes * steps)

    def sample(level: Level, chunks: list[VideoChunk], level_noise, positions) -> torch.Tensor:
        return _sample_pass(model, chunk_wrapper(level, chunks), level_noise, samples[positions], positive, negative,
                            steps, cfg, sampler_name, scheduler, denoise, seed, sigmas, on_step, positions, frames)

    bank: MotionPadBank | None = None
    weights = next(patch.program.modules.parameters(), None)
    dtype = weights.dtype if weights is not None else torch.float32  # pads kept in the HelloMeme networks' dtype
    for level in reversed(levels):
        if policy is PadPolicy.KEEP_DEEPEST and level.innermost:
            # v3/v4: the two end frames first, with the image UNet (no motion modules, no pads), both from noise frame 0.
            ends = margin_pass_frames(level)
            margin = Level(level.depth, ends, ((0, 1),))
            latents = sample(margin, [VideoChunk(ends, None, use_motion=False)], noise[[0, 0]], list(ends))
            run.passes[(level.depth, "margin")] = latents
            # The innermost level has no pads yet; a one-frame clip has first == last: one pad for it.
            new = {f: i for i, f in enumerate(ends)}
            bank = add_motion_pads(model, hm_reference, latents[list(new.values())], list(new), dtype, bank,
                                   show_progress=False)
        chunks = []
        for i in range(len(level.chunks)):
            ends = level.chunk_frames(i)
            have = bank is not None and ends[0] in bank.frames and ends[-1] in bank.frames
            chunks.append(VideoChunk(ends, bank.pads(ends[0], ends[-1]) if have else None))
        if keep_chunks:
            run.chunks[level.depth] = chunks
        latents = sample(level, chunks, noise[:len(level.frames)], list(level.frames))
        run.passes[(level.depth, "main")] = latents
        if level.depth == 0:
            return {"samples": latents}, run
        write = [(pos, f) for pos, f in enumerate(level.frames)
                 if policy is PadPolicy.OVERWRITE or bank is None or f not in bank.frames]
        bank = add_motion_pads(model, hm_reference, latents[[p for p, _ in write]], [f for _, f in write], dtype,
                               bank, show_progress=False)
    raise AssertionError("the plan has no level 0")  # plan_levels always ends with the whole clip


def sample_two_stage(model, positive, negative, samples: torch.Tensor, seed: int, steps: int, cfg: float,
                     sampler_name: str, scheduler: str, denoise: float, version: str) -> tuple[dict, VideoRun]:
    """The official v1/v2 video pipeline with ComfyUI's sampler (both stages use the chosen one).

    Stage 1: frame by frame with the image UNet (no motion modules) for ``min(10, steps)`` steps, one noise
    for every frame; frame 0 starts from it, every later frame from the previous result re-noised at the
    first sigma (a full denoise of that latent). Stage 2: the clip padded as officially, every position
    re-noised from its stage-1 latent and denoised in 12-frame windows (overlap 4, predictions averaged) with
    the motion modules. Noise: one CPU generator seeded with ``seed``, drawn in the official order (the
    stage-1 noise, then the stage-2 noise); the values are ComfyUI's, not the official generator's.
    """
    frames = samples.shape[0]
    plan: TwoStagePlan = plan_two_stage(frames)
    image_steps = plan.image_steps(steps)
    generator = torch.Generator().manual_seed(seed)
    base = torch.randn((1, *samples.shape[1:]), generator=generator, dtype=samples.dtype)
    noise = torch.randn((len(plan.frames), *samples.shape[1:]), generator=generator, dtype=samples.dtype)
    total = frames * image_steps + steps
    _log.info("HelloMeme Video Sampler: %s two-stage schedule, %d frames: an image stage of %d steps per frame, then "
              "%d positions (%d padding) in %d window(s) of 12", version, frames, image_steps, len(plan.frames),
              len(plan.frames) - frames, len(plan.chunks))
    on_step = step_counter(total)
    levels = [Level(0, plan.frames, plan.chunks)]
    run = VideoRun(levels, None)
    stage_one = []
    previous = samples[:1]  # frame 0 starts from the given latent, every later frame from the previous result
    for frame in range(frames):
        level = Level(0, (frame,), ((0,),))
        previous = _sample_pass(model, chunk_wrapper(level, [VideoChunk((frame,), None, use_motion=False)]), base,
                                previous, positive, negative, image_steps, cfg, sampler_name, scheduler, denoise, seed,
                                None, on_step, [frame], frames)
        stage_one.append(previous)
    image_latents = torch.cat(stage_one)
    run.passes[(0, "image")] = image_latents
    chunks = [VideoChunk(tuple(plan.frames[p] for p in c), None) for c in plan.chunks]
    latents = _sample_pass(model, chunk_wrapper(levels[0], chunks), noise, image_latents[list(plan.start_frames)],
                           positive, negative, steps, cfg, sampler_name, scheduler, denoise, seed, None, on_step,
                           list(plan.frames), frames)
    run.passes[(0, "main")] = latents
    return {"samples": latents[:frames]}, run
