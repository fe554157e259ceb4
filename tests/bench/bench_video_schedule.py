"""Denoiser calls and seconds per frame: the official v3-v5 video schedule (HelloMeme Video Sampler) against the
previous path of the shipped workflow (image-stage KSampler over all frames, Apply HelloMeme Temporal with
windows 12 / overlap 4 and the image-stage latents as pads, then the video KSampler).

Calls are counted, not derived: a forward pre-hook on ``model.model.diffusion_model`` counts every UNet call
and its batch rows while a sampler runs (``comfy.sample.sample`` is wrapped to tell sampling from the
reference passes that make the motion pads; those are counted apart). ``frames/call`` is rows / 2 (cfg > 1:
cond and uncond in one batch). The official path's count is checked against ``denoiser_calls_per_step``.

Random SD1.5 weights (bf16) and v5 files in the official layout (parity rule weights); euler / normal, cfg 2.
The real workflow runs 10 image-stage steps and 25 video steps; here both stages of the previous path and
the official path run ``--steps`` steps, so the per-step figures compare like for like.

``python -m tests.bench video [--frames 12 24 48 96] [--size 128] [--steps 2]``
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch

CFG = 2.0
SEED = 42
WINDOW, OVERLAP = 12, 4  # the shipped workflow's Apply HelloMeme Temporal


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class CallCounter:
    """UNet calls and batch rows, split into sampler calls (``denoiser``) and the rest (reference passes)."""

    def __init__(self, unet: torch.nn.Module):
        self.sampling = False
        self.calls = {"denoiser": 0, "reference": 0}
        self.rows = {"denoiser": 0, "reference": 0}
        self._handle = unet.register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        kind = "denoiser" if self.sampling else "reference"
        self.calls[kind] += 1
        self.rows[kind] += int(args[0].shape[0])

    def reset(self) -> None:
        for d in (self.calls, self.rows):
            for k in d:
                d[k] = 0

    def close(self) -> None:
        self._handle.remove()


@contextmanager
def counting_samples(counter: CallCounter):
    """``comfy.sample.sample`` flags its UNet calls as denoiser calls (the KSampler node and the video sampler call it)."""
    import comfy.sample

    original = comfy.sample.sample

    def sample(*args, **kwargs):
        counter.sampling = True
        try:
            return original(*args, **kwargs)
        finally:
            counter.sampling = False

    comfy.sample.sample = sample
    try:
        yield
    finally:
        comfy.sample.sample = original


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.bench video", description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, nargs="+", default=[12, 24], help="clip lengths (default 12 24)")
    p.add_argument("--size", type=int, default=128, help="pixels (multiple of 64, > 64; default 128)")
    p.add_argument("--steps", type=int, default=2, help="sampling steps of every pass (default 2)")
    return p.parse_known_args()[0]  # options of other benchmarks (python -m tests.bench) are left alone


def main() -> None:
    opts = _parse()
    from tests.nodes import _fixtures as fx
    from tests.nodes._comfy import comfy_nodes, comfy_root

    comfy_root()
    comfy = comfy_nodes()
    import folder_paths

    import nodes.comfy_glue.paths  # noqa: F401
    from hellomeme_core.denoiser.video_schedule import PadPolicy, denoiser_calls_per_step, plan_levels
    from nodes.apply import ApplyHelloMeme
    from nodes.comfy_glue.video_sampler import sample_video, schedule_policy
    from nodes.models import LoadHelloMemeModels
    from nodes.reference import HelloMemeReference
    from nodes.temporal import ApplyHelloMemeTemporal

    size, steps, lat = opts.size, opts.steps, opts.size // 8
    folder = Path(os.environ.get("HELLOMEME_BENCH_MODELS", Path(tempfile.gettempdir()) / "hellomeme_bench_models"))
    fx.write_version_files(folder, "v5")
    folder_paths.add_model_folder_path("hellomeme", str(folder), is_default=True)
    bundle = LoadHelloMemeModels.execute("v5", "bf16").result[0]
    model = fx.random_sd15_model(torch.bfloat16)
    pos, neg = fx.text_conditioning(seed=5), fx.text_conditioning(seed=6)
    image = torch.rand(1, size, size, 3, generator=torch.Generator().manual_seed(7))
    reference = HelloMemeReference.execute(model, fx.random_vae(), image, pos, neg).result[0]
    policy = schedule_policy(bundle.version)

    print(f"machine: CPU {_cpu_name()}, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores; "
          f"device={model.load_device}; torch {torch.__version__}")
    print(f"v5 random weights, bf16, {size}x{size} px (latent {lat}x{lat}), euler/normal, cfg {CFG}, {steps} step(s) per pass "
          f"(previous path: image stage and video stage {steps} step(s) each here; the shipped workflow runs 10 + 25)")

    with torch.no_grad():  # warm-up: loads the UNet and the HelloMeme modules before anything is timed
        warm = ApplyHelloMeme.execute(model, bundle, reference, fx.condition_images(2, size), fx.face_motion(2)).result[0]
        warm = ApplyHelloMemeTemporal.execute(warm, bundle, WINDOW, OVERLAP).result[0]
        sample_video(warm, pos, neg, {"samples": torch.zeros(2, 4, lat, lat)}, SEED, 1, CFG, "euler", "normal", 1.0)
    counter = CallCounter(model.model.diffusion_model)
    rows = []
    try:
        with counting_samples(counter), torch.no_grad():
            for frames in opts.frames:
                conds, motion = fx.condition_images(frames, size), fx.face_motion(frames)
                image_stage = ApplyHelloMeme.execute(model, bundle, reference, conds, motion).result[0]
                latent = {"samples": torch.zeros(frames, 4, lat, lat)}

                # (a) official schedule
                video_model = ApplyHelloMemeTemporal.execute(image_stage, bundle, WINDOW, OVERLAP).result[0]
                counter.reset()
                start = time.perf_counter()
                out, run = sample_video(video_model, pos, neg, latent, SEED, steps, CFG, "euler", "normal", 1.0)
                official_s = time.perf_counter() - start
                assert out["samples"].shape[0] == frames and torch.isfinite(out["samples"]).all()
                official = dict(calls=counter.calls["denoiser"], rows=counter.rows["denoiser"],
                                ref=counter.calls["reference"], ref_rows=counter.rows["reference"], s=official_s)
                levels = plan_levels(frames)
                formula = denoiser_calls_per_step(levels, policy) * steps
                if policy is PadPolicy.KEEP_DEEPEST:
                    formula_frames = sum(len(p) for lv in levels for p in lv.chunks) + 2
                else:
                    formula_frames = sum(len(p) for lv in levels for p in lv.chunks)

                # (b) previous path: image-stage KSampler -> Apply HelloMeme Temporal (pads) -> video KSampler
                counter.reset()
                start = time.perf_counter()
                image_latents = comfy.KSampler().sample(image_stage, SEED, steps, CFG, "euler", "normal", pos, neg,
                                                        latent, denoise=1.0)[0]
                image_calls, image_rows = counter.calls["denoiser"], counter.rows["denoiser"]
                temporal = ApplyHelloMemeTemporal.execute(image_stage, bundle, WINDOW, OVERLAP, image_latents).result[0]
                video = comfy.KSampler().sample(temporal, SEED, steps, CFG, "euler", "normal", pos, neg, latent,
                                                denoise=1.0)[0]["samples"]
                previous_s = time.perf_counter() - start
                assert video.shape[0] == frames and torch.isfinite(video).all()
                previous = dict(calls=counter.calls["denoiser"], rows=counter.rows["denoiser"],
                                ref=counter.calls["reference"], ref_rows=counter.rows["reference"], s=previous_s,
                                image_calls=image_calls, image_rows=image_rows)
                rows.append((frames, official, formula, formula_frames, previous, len(levels)))
                print(f"  {frames} frames: official {official_s:.1f} s, previous {previous_s:.1f} s", flush=True)
    finally:
        counter.close()

    print()
    print("Per frame per step (denoiser = UNet calls inside a sampler; frame evals = batch rows / 2, cond+uncond batched; "
          "ref = reference-pass UNet calls for motion pads, per clip)")
    head = (f"{'frames':>6} | {'path':<9} | {'calls':>5} | {'formula':>7} | {'calls/fr/step':>13} | {'evals/fr/step':>13} | "
            f"{'ref calls (rows)':>16} | {'s/frame':>8} | {'s/frame/step':>12}")
    print(head)
    print("-" * len(head))
    for frames, off, formula, formula_frames, prev, depth in rows:
        for name, r, f in (("official", off, f"{formula}"), ("previous", prev, "-")):
            evals = r["rows"] / 2
            print(f"{frames:>6} | {name:<9} | {r['calls']:>5} | {f:>7} | {r['calls'] / frames / steps:>13.3f} | "
                  f"{evals / frames / steps:>13.3f} | {r['ref']:>5} ({r['ref_rows']:>3} rows) | {r['s'] / frames:>8.2f} | "
                  f"{r['s'] / frames / steps:>12.2f}")
        ok = "ok" if off["calls"] == formula and off["rows"] / 2 == formula_frames * steps else "MISMATCH"
        print(f"{'':>6}   official: {depth} level(s); counted {off['calls']} calls / {off['rows'] / 2:.0f} frame evals vs "
              f"denoiser_calls_per_step x steps = {formula} calls / {formula_frames * steps} frame evals: {ok}")
        print(f"{'':>6}   previous: image stage {prev['image_calls']} calls ({prev['image_rows'] / 2:.0f} frame evals), "
              f"video stage {prev['calls'] - prev['image_calls']} calls "
              f"({(prev['rows'] - prev['image_rows']) / 2:.0f} frame evals)")
        print(f"{'':>6}   ratio official / previous: frame evals x{off['rows'] / prev['rows']:.2f}, "
              f"time x{off['s'] / prev['s']:.2f}")


if __name__ == "__main__":
    main()
