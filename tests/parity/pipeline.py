"""Parity of whole official video runs (fixture kind ``pipeline``) through the HelloMeme Video Sampler's code.

A case gives the official inputs (reference latent, text context, driving condition and coefficients,
base noise), the module specs (rule weights) and the official per-level latents. Here the same
networks are loaded through the loaders real files take, the reference features and per-frame control
features are made by the functions the nodes call, the MODEL is patched by the same ``install`` as
Apply HelloMeme Temporal, and :func:`nodes.comfy_glue.video_sampler.sample_video` runs the schedule
with ComfyUI's Euler sampler on the recorded sigmas. Only two things are pinned to the recording:
the sigma -> timestep map (the official code passes its scheduler's timesteps as they are, 499.5
included; ComfyUI maps a sigma to the nearest whole timestep) and the base noise.
"""
from __future__ import annotations

import copy
import types

import torch
from einops import rearrange

from hellomeme_core.control import load_control_network
from hellomeme_core.denoiser import BlockProgram
from hellomeme_core.denoiser.bundle import HMModelBundle, compute_control_features
from hellomeme_core.denoiser.reference import HMReference
from tests.nodes._comfy import comfy_root
from tests.parity.adapters.denoisers import _load_rule_adapter, base_sd15_patcher
from tests.parity.fixture import Comparison, FixtureSet, compare

_CONTROL_SPECS = ("mp_control", "mp_control_proj")
_ADAPTER_SPECS = ("reference_adapter", "motion_adapter")


def _recorded_timesteps(model, passes: list[dict]):
    """A clone of ``model`` whose sigma -> timestep map returns the recorded official timesteps."""
    table = [(float(s), float(t)) for p in passes for s, t in zip(p["sigmas"], p["timesteps"])]
    sampling = copy.copy(model.get_model_object("model_sampling"))
    base_timestep = sampling.timestep

    def timestep(self, sigma):
        out = base_timestep(sigma).float()  # ComfyUI's own map rounds to whole timesteps (499.5 -> 500)
        flat = sigma.reshape(-1)
        for i, s in enumerate(flat.tolist()):
            hit = next((t for rec, t in table if abs(rec - s) <= 1e-6 * max(1.0, rec)), None)
            if hit is not None:
                out.view(-1)[i] = hit
        return out

    sampling.timestep = types.MethodType(timestep, sampling)
    m = model.clone()
    m.add_object_patch("model_sampling", sampling)
    return m


def _bundle(fixtures: FixtureSet, case: dict) -> HMModelBundle:
    specs = case["modules"]
    adapters = {name: _load_rule_adapter(fixtures, specs[name]) for name in _ADAPTER_SPECS if name in specs}
    animatediff = specs["unet"].get("motion_adapter_base")  # v3/v4: the diffusers MotionAdapter inside the UNet
    if animatediff is not None:
        adapters["animatediff"] = _load_rule_adapter(fixtures, animatediff)
    controls = [load_control_network(fixtures.module_weights(specs[name]), specs[name]["weight_repo"])
                for name in _CONTROL_SPECS if name in specs]
    for module in [*adapters.values(), *controls]:
        module.float().eval().requires_grad_(False)
    return HMModelBundle(case["version"], torch.float32, adapters["reference_adapter"], controls,
                         adapters.get("motion_adapter"), adapters.get("animatediff"))


def video_model(fixtures: FixtureSet, case: dict):
    """(MODEL as Apply HelloMeme Temporal makes it, the latent format) for a pipeline case."""
    comfy_root()
    from nodes.comfy_glue.managed_models import HelloMemeModels
    from nodes.comfy_glue.reference_pass import reference_pass
    from nodes.comfy_glue.unet_patches import ComfyStepSource, HelloMemeUNetPatch, install

    name = case["file"]
    inputs = case["inputs"]
    base_spec = case["modules"]["unet"]["base"]
    base = base_sd15_patcher(fixtures.repo_layout(base_spec["weight_repo"]), (str(fixtures.folder), base_spec["weight_repo"]))
    hm_models = HelloMemeModels.from_bundle(_bundle(fixtures, case))
    context = fixtures.tensor(name, inputs["prompt_embeds"]["tensor"]).float()  # [negative, positive]
    ref_latent = fixtures.tensor(name, inputs["ref_latent"]["tensor"]).float()
    features = reference_pass(base, ref_latent, context)
    reference = HMReference.from_record(features, tuple(ref_latent.shape[-2:]), context=context, pass_model=base)
    drive = inputs["drive_params"]
    condition = rearrange(fixtures.tensor(name, drive["condition"]).float(), "1 c f h w -> f c h w")
    tensors = {key: fixtures.tensor(name, drive[key]).float()[0] for key in ("drive_coeff", "face_parts", "pd_fpg")
               if key in drive}
    cond, uncond = compute_control_features(hm_models.bundle, condition, tensors.get("drive_coeff"),
                                            tensors.get("face_parts"), tensors.get("pd_fpg"))
    source = ComfyStepSource(reference=reference.features, control_cond=cond, control_uncond=uncond,
                             hm_reference=reference, use_motion=True)
    modules = hm_models.temporal_modules()
    patch = HelloMemeUNetPatch(BlockProgram(hm_models.family, modules), source, hm_models.version, temporal=True)
    model = install(base, patch, modules, owner=hm_models.unet_modules)
    return model, base.model.latent_format


def run_pipeline_case(fixtures: FixtureSet, case: dict) -> list[Comparison]:
    """Final and per-level latents of one recorded official run against ours."""
    comfy_root()
    from nodes.comfy_glue.video_sampler import sample_video

    name, inputs = case["file"], case["inputs"]
    model, latent_format = video_model(fixtures, case)
    passes = [p for level in case["levels"] for p in level["passes"]]
    model = _recorded_timesteps(model, passes)
    context = fixtures.tensor(name, inputs["prompt_embeds"]["tensor"]).float()
    positive, negative = [[context[1:2], {}]], [[context[0:1], {}]]
    noise = rearrange(fixtures.tensor(name, inputs["base_noise"]["tensor"]).float(), "1 c f h w -> f c h w")
    sigmas = torch.tensor(passes[0]["sigmas"], dtype=torch.float32)
    steps = len(sigmas) - 1
    latent = {"samples": torch.zeros_like(noise)}
    result, run = sample_video(model, positive, negative, latent, 0, steps, float(inputs["guidance_scale"]), "euler",
                               "normal", 1.0, sigmas=sigmas, noise=noise)
    ours = {f"d{depth}.{kind}.step{steps - 1}.latents": latent_format.process_in(latents)
            for (depth, kind), latents in run.passes.items()}
    ours["final_latents"] = latent_format.process_in(result["samples"])
    out = []
    for label, tensor in ours.items():
        stored = f"{case['name']}.out.{label}"
        expected = fixtures.tensor(name, stored)
        if expected.dim() == 5:
            expected = rearrange(expected, "1 c f h w -> f c h w")
        err, atol, ok, detail = compare(tensor, expected, case["tolerance"][stored])
        out.append(Comparison(case["name"], "gen_video", label, err, atol, ok, detail))
    return out
