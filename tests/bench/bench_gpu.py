"""End-to-end v5 video benchmark of this extension's nodes, stage by stage, per precision.

``python -m tests.bench gpu [--size 512] [--frames 48] [--steps 25] [--image-steps 10] [--dtypes fp16,bf16]
[--tiny] [--json PATH] [--official PATH]``

The shipped video workflow (workflows/hellomeme_video_api.json) called in-process, node by node: Load Face
Analyzer + Extract Face Motion (mediapipe) on the first ``--frames`` frames of a real driving clip and on a
real portrait (stage ``motion``), Render Pose Condition (``conditions``), HelloMeme Reference
(``reference``), Apply HelloMeme (``control``: runs the control networks), the image-stage KSampler
(``sampling_image``, ``--image-steps``), Apply HelloMeme Temporal with the image-stage latents + the
video KSampler (``sampling_video``, ``--steps``), VAE Decode (``decode``). The SD1.5 UNet, the VAE and
the HelloMeme networks (fp16 files in the official layout, written to a temporary folder registered as
ComfyUI's ``hellomeme`` model folder) have random weights: timings do not depend on the values.
For each precision (the HelloMeme networks' precision and the SD1.5 UNet's dtype): frames/s overall
(frames / the sum of the stages; model loading is shown apart), peak memory (CUDA:
``torch.cuda.max_memory_allocated``, reset between runs; CPU: the process's peak RSS, reset between
runs where the kernel allows), seconds per stage, and the UNet-hook cost (median of a few raw UNet
calls with the HelloMeme image-stage patches over the same calls of the stock UNet, same batch).

Without CUDA the tiny settings (``--tiny``: 128 x 128, 4 frames, 2 + 2 steps, bf16 only (fp32 is about 10x
slower on CPUs with bf16 units), hook cost at batch 2 over 3 calls) are used.
``--official PATH``: also runs the official HelloVision/HelloMeme v5 video pipeline (PATH is a checkout;
needs diffusers and transformers, not in our requirements) on the same device with the same HelloMeme files,
size, frames and steps, and prints its frames/s, peak memory and the ratios ours/official (see
:func:`run_official`).
"""
from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tests.bench.bench_knitting import _reset_peak_rss, _return_free_memory, _status_kib

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
STAGES = ("motion", "conditions", "reference", "control", "sampling_image", "sampling_video", "decode")
DRIVING = "driving/amns.mp4"
PORTRAIT = "reference/civitai1.jpg"
OFFICIAL_PIPELINE = Path("hellomeme") / "pipelines" / "pipline_hm5_video.py"
TINY = {"size": 128, "frames": 4, "steps": 2, "image_steps": 2, "dtypes": "bf16", "hook_frames": 1, "hook_repeats": 3}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.bench gpu", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=512, help="width = height in pixels (multiple of 64)")
    p.add_argument("--frames", type=int, default=48, help="driving frames (the clip's first N)")
    p.add_argument("--steps", type=int, default=25, help="video-stage KSampler steps")
    p.add_argument("--image-steps", type=int, default=10, help="image-stage KSampler steps")
    p.add_argument("--dtypes", default="fp16,bf16", help="comma-separated precisions (fp16, bf16, fp32)")
    p.add_argument("--tiny", action="store_true", help="CPU smoke run: 128x128, 4 frames, 2+2 steps, bf16")
    p.add_argument("--json", type=Path, help="write the figures to this file")
    p.add_argument("--official", type=Path, help="checkout of HelloVision/HelloMeme: also run its v5 video pipeline")
    p.add_argument("--hook-frames", type=int, default=12, help="frames (CFG batch = 2x) of the hook-cost UNet calls")
    p.add_argument("--hook-repeats", type=int, default=5, help="UNet calls per median in the hook-cost figure")
    args = p.parse_args(argv)
    args.dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    unknown = [d for d in args.dtypes if d not in DTYPES]
    if unknown:
        p.error(f"--dtypes: unknown {unknown}; choose from {sorted(DTYPES)}")
    return args


def check_official(path: Path) -> None:
    """Fail before any work when ``--official`` cannot run, naming what is missing."""
    if not (path / OFFICIAL_PIPELINE).is_file():
        raise SystemExit(f"--official {path}: not a checkout of HelloVision/HelloMeme ({path / OFFICIAL_PIPELINE} "
                         f"does not exist); clone https://github.com/HelloVision/HelloMeme there or pass its path")
    try:
        import diffusers  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"--official {path}: the official pipeline needs diffusers and transformers, which are not "
                         f"installed here ({exc}); pip install diffusers transformers into this environment") from None


# ------------------------------------------------------------------------------------ device, timers, memory
def setup_comfy(cuda: bool):
    """ComfyUI in-process; on CUDA its model manager is imported before tests.nodes._comfy forces CPU mode."""
    if cuda:
        from tests.support.comfy_host import find_comfyui_root

        root = str(find_comfyui_root())
        if root not in sys.path:
            sys.path.append(root)
        import comfy.cli_args

        comfy.cli_args.args.cpu = False
        import comfy.model_management  # noqa: F401  (reads args.cpu once, at import)
    from tests.nodes._comfy import comfy_nodes, comfy_root

    comfy_root()
    if cuda:
        import comfy.cli_args

        comfy.cli_args.args.cpu = False
    return comfy_nodes()


class Stopwatch:
    """Seconds per named stage; on CUDA synchronised on both sides so queued kernels land in their stage."""

    def __init__(self, cuda: bool):
        self.cuda, self.seconds = cuda, {}

    def __call__(self, name: str, fn):
        if self.cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if self.cuda:
            torch.cuda.synchronize()
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
        return out


class PeakMemory:
    """Peak memory of one run: the CUDA allocator's, or the process's resident set (VmHWM) on the CPU."""

    def __init__(self, cuda: bool):
        self.cuda = cuda
        self.kind = "VRAM (torch.cuda.max_memory_allocated)" if cuda else "peak RSS (CPU run: resident memory, not VRAM)"

    def reset(self) -> None:
        _return_free_memory()
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        elif not _reset_peak_rss():
            self.kind = "peak RSS, lifetime of the process (ru_maxrss: counter could not be reset)"

    def read(self) -> int:
        if self.cuda:
            return torch.cuda.max_memory_allocated()
        if "lifetime" in self.kind:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return _status_kib("VmHWM") * 1024


def unload_everything() -> None:
    import comfy.model_management as mm

    mm.unload_all_models()
    mm.soft_empty_cache()
    gc.collect()


# ------------------------------------------------------------------------------------ inputs
def real_media(frames: int, size: int):
    """(driving IMAGE (F,H,W,3), fps, portrait IMAGE (1,size,size,3)) from shared/media."""
    from hellomeme_core.media import read_media
    from tests.face.media_cache import MEDIA

    for rel in (DRIVING, PORTRAIT):
        if not (MEDIA / rel).is_file():
            raise SystemExit(f"bench gpu: the real media file {MEDIA / rel} is missing (shared/media)")
    clip = read_media(MEDIA / DRIVING, max_frames=frames)
    if len(clip.frames) < frames:
        raise SystemExit(f"bench gpu: {MEDIA / DRIVING} has only {len(clip.frames)} frames, {frames} asked")
    driving = torch.from_numpy(clip.frames[:frames].astype(np.float32) / 255.0)
    portrait = torch.from_numpy(read_media(MEDIA / PORTRAIT).frames[:1].astype(np.float32) / 255.0)
    side = min(portrait.shape[1:3])
    top, left = (portrait.shape[1] - side) // 2, (portrait.shape[2] - side) // 2
    square = portrait[:, top:top + side, left:left + side].movedim(-1, 1)
    portrait = torch.nn.functional.interpolate(square, size=(size, size), mode="bilinear", antialias=True).movedim(1, -1)
    return driving, clip.fps or 25.0, portrait.clamp(0, 1)


# ------------------------------------------------------------------------------------ the runs
def hook_cost(model, patched, frames: int, size: int, repeats: int, cuda: bool) -> dict:
    """Median seconds of one raw UNet call (CFG batch of ``frames``) with the image-stage patches vs stock."""
    from nodes.comfy_glue.unet_calls import run_diffusion_model
    from tests.nodes import _fixtures as fx

    lat = size // 8
    g = torch.Generator().manual_seed(11)
    x = torch.randn(2 * frames, 4, lat, lat, generator=g)
    t = torch.full((2 * frames,), 500.0)
    pos, neg = fx.text_conditioning(seed=5), fx.text_conditioning(seed=6)
    context = torch.cat([neg[0][0].expand(frames, -1, -1), pos[0][0].expand(frames, -1, -1)])

    def median(m) -> float:
        call = lambda: run_diffusion_model(m, x, t, context, {"cond_or_uncond": [1, 0]})  # noqa: E731
        call()  # warm-up (loads the model and its additional models)
        times = []
        for _ in range(repeats):
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            call()
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    stock, hooked = median(model), median(patched)
    return {"batch": 2 * frames, "stock_s": stock, "patched_s": hooked, "ratio": hooked / stock}


def run_ours(comfy, args, dtype_name: str, media, folder: Path, cuda: bool) -> dict:
    from nodes.apply import ApplyHelloMeme
    from nodes.face import ExtractFaceMotion, LoadFaceAnalyzer, RenderPoseCondition
    from nodes.models import LoadHelloMemeModels
    from nodes.reference import HelloMemeReference
    from nodes.temporal import ApplyHelloMemeTemporal
    from tests.nodes import _fixtures as fx

    driving, fps, portrait = media
    dtype = DTYPES[dtype_name]
    memory = PeakMemory(cuda)
    unload_everything()
    memory.reset()
    watch = Stopwatch(cuda)
    model = watch("load", lambda: fx.random_sd15_model(dtype))
    vae = watch("load", fx.random_vae)
    hm = watch("load", lambda: LoadHelloMemeModels.execute("v5", dtype_name).result[0])
    pos, neg = fx.text_conditioning(seed=5), fx.text_conditioning(seed=6)

    def motion():
        (analyzer,) = LoadFaceAnalyzer.execute("mediapipe", "auto").result
        drive = ExtractFaceMotion.execute(analyzer, driving, "hold", 0.3, fps).result[0]
        ref = ExtractFaceMotion.execute(analyzer, portrait, "error", 0.0, 25.0).result[0]
        return drive, ref

    drive_motion, ref_motion = watch("motion", motion)
    condition, ref_condition = watch("conditions", lambda: RenderPoseCondition.execute(
        drive_motion, 0.0, False, ref_motion, args.size).result)
    reference = watch("reference", lambda: HelloMemeReference.execute(
        model, vae, portrait, pos, neg, hm, ref_condition, ref_motion).result[0])
    image_stage = watch("control", lambda: ApplyHelloMeme.execute(model, hm, reference, condition, drive_motion).result[0])
    frames = condition.shape[0]
    empty = {"samples": torch.zeros(frames, 4, args.size // 8, args.size // 8)}

    def ksampler(m, steps):
        return comfy.KSampler().sample(m, 42, steps, 2.0, "dpmpp_2m_sde", "karras", pos, neg, empty, denoise=1.0)[0]

    image_latents = watch("sampling_image", lambda: ksampler(image_stage, args.image_steps))
    temporal = watch("sampling_video", lambda: ApplyHelloMemeTemporal.execute(image_stage, hm, 12, 4, image_latents).result[0])
    temporal_apply = watch.seconds["sampling_video"]
    latents = watch("sampling_video", lambda: ksampler(temporal, args.steps))
    images = watch("decode", lambda: comfy.VAEDecode().decode(vae, latents)[0])
    peak = memory.read()
    assert images.shape[0] == frames and torch.isfinite(images).all(), "the decoded video is not finite"
    hooks = hook_cost(model, image_stage, min(frames, args.hook_frames), args.size, args.hook_repeats, cuda)
    stages = {k: watch.seconds[k] for k in STAGES}
    total = sum(stages.values())
    del model, vae, hm, reference, image_stage, temporal
    unload_everything()
    return {"dtype": dtype_name, "frames": frames, "stages_s": stages, "temporal_apply_s": temporal_apply,
            "sampling_s": stages["sampling_image"] + stages["sampling_video"], "load_s": watch.seconds["load"],
            "total_s": total, "frames_per_s": frames / total, "peak_bytes": peak, "peak_kind": memory.kind,
            "hook_cost": hooks}


def _official_loader(folder: Path):
    """Stands in for the official ``creat_model_from_cloud``: the class built with its default config (the
    published one) and the random official-layout file of that repository loaded strictly."""
    from safetensors.torch import load_file

    from hellomeme_core.model_files import layout

    def load(model_cls, model_id, modelscope=False, **_):
        path = folder / f"{layout.short_name(model_id)}.safetensors"
        model = model_cls()
        missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
        missing = sorted(set(missing) - set(layout.buffer_keys(model_id)))
        if missing or unexpected:
            raise RuntimeError(f"--official: {path.name} does not fit the official {model_cls.__name__}: "
                               f"missing {missing[:5]}, unexpected {unexpected[:5]}")
        return model

    return load


def run_official(args, dtype_name: str, folder: Path, media, cuda: bool) -> dict:
    """The official v5 video pipeline (HM5VideoPipeline) on the same device, HelloMeme files, size, frames and
    steps. Its SD1.5 UNet, VAE and CLIP text encoder are diffusers/transformers modules at SD1.5 sizes with
    their default random initialisation (no tokenizer: random prompt embeddings are passed, like ours)."""
    if str(args.official) not in sys.path:
        sys.path.insert(0, str(args.official))
    import hellomeme.pipelines.pipline_hm5_video as official
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from tests.nodes import _fixtures as fx

    driving, _, portrait = media
    frames, dtype = driving.shape[0], DTYPES[dtype_name]
    device = torch.device("cuda" if cuda else "cpu")
    official.creat_model_from_cloud = _official_loader(folder)
    memory = PeakMemory(cuda)
    unload_everything()
    memory.reset()
    start = time.perf_counter()
    with torch.no_grad():
        pipe = official.HM5VideoPipeline(
            vae=AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                              block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                              sample_size=args.size),
            text_encoder=CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                                                      num_hidden_layers=12, projection_dim=768)),
            tokenizer=None, unet=UNet2DConditionModel(cross_attention_dim=768, sample_size=args.size // 8),
            scheduler=DPMSolverMultistepScheduler(steps_offset=1), safety_checker=None, feature_extractor=None,
            requires_safety_checker=False)
        pipe.caryomitosis(version="v5")
        pipe.insert_hm_modules(version="v5", dtype=dtype)
    load_s = time.perf_counter() - start
    g = torch.Generator().manual_seed(0)
    condition = fx.condition_images(frames, args.size).permute(3, 0, 1, 2).unsqueeze(0) * 2 - 1  # (1, 3, F, S, S)
    drive_params = {"condition": condition.to(dtype), "drive_coeff": torch.rand(1, frames, 51, generator=g).to(dtype),
                    "face_parts": torch.randn(1, frames, 3, 1024, generator=g).to(dtype)}
    embeds = [fx.text_conditioning(seed=s)[0][0].to(device, dtype) for s in (5, 6)]
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    out, _ = pipe(image=portrait.movedim(-1, 1), drive_params=drive_params, num_inference_steps=args.steps,
                  guidance_scale=2.0, prompt_embeds=embeds[0], negative_prompt_embeds=embeds[1],
                  generator=torch.Generator().manual_seed(42), output_type="pt", device=device)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = memory.read()
    assert len(out) == frames, f"the official pipeline returned {len(out)} frames, not {frames}"
    del pipe
    unload_everything()
    return {"dtype": dtype_name, "frames": frames, "load_s": load_s, "total_s": seconds,
            "frames_per_s": frames / seconds, "peak_bytes": peak, "peak_kind": memory.kind}


# ------------------------------------------------------------------------------------ report
def print_table(runs: list[dict]) -> None:
    if not runs:
        return
    names = ["load", *STAGES, "total", "frames/s", "peak MiB", "hook ratio"]
    print(f"{'stage (s)':<16}" + "".join(f"{r['dtype']:>12}" for r in runs))
    for name in names:
        cells = []
        for r in runs:
            value = {"load": r["load_s"], "total": r["total_s"], "frames/s": r["frames_per_s"],
                     "peak MiB": r["peak_bytes"] / 2**20, "hook ratio": r["hook_cost"]["ratio"]}.get(name)
            value = r["stages_s"][name] if value is None else value
            cells.append(f"{value:12.3f}" if name not in ("peak MiB",) else f"{value:12.0f}")
        print(f"{name:<16}" + "".join(cells))
    for r in runs:
        h = r["hook_cost"]
        verdict = "within" if h["ratio"] <= 1.10 else "OVER"
        print(f"{r['dtype']}: UNet hook cost at batch {h['batch']}: patched {h['patched_s'] * 1000:.1f} ms vs stock "
              f"{h['stock_s'] * 1000:.1f} ms = x{h['ratio']:.3f} ({verdict} the 10% target); "
              f"Apply HelloMeme Temporal {r['temporal_apply_s']:.3f} s of sampling_video; peak = {r['peak_kind']}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.official is not None:
        check_official(args.official)
    cuda = torch.cuda.is_available()
    if not cuda and not args.tiny:
        print("bench gpu: no CUDA device: running the tiny CPU settings instead (as --tiny)", flush=True)
        args.tiny = True
    if args.tiny:
        explicit = set(a.split("=")[0] for a in (sys.argv[1:] if argv is None else argv))
        for key, value in TINY.items():
            if f"--{key.replace('_', '-')}" not in explicit:
                setattr(args, key, value.split(",") if key == "dtypes" else value)
    comfy = setup_comfy(cuda)
    import folder_paths

    import nodes.comfy_glue.paths  # noqa: F401  (registers the hellomeme folder)
    from tests.nodes import _fixtures as fx

    device = torch.cuda.get_device_name() if cuda else "CPU"
    print(f"bench gpu: {device}, v5 video {args.size}x{args.size}, {args.frames} frames, {args.image_steps} image-stage + "
          f"{args.steps} video steps, precisions {','.join(args.dtypes)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="hellomeme_bench_gpu_") as tmp:
        folder = Path(tmp) / "hellomeme"
        fx.write_version_files(folder, "v5")
        folder_paths.add_model_folder_path("hellomeme", str(folder), is_default=True)
        media = real_media(args.frames, args.size)
        runs = []
        for dtype_name in args.dtypes:
            runs.append(run_ours(comfy, args, dtype_name, media, folder, cuda))
            r = runs[-1]
            print(f"{dtype_name}: {r['frames_per_s']:.3f} frames/s, {r['total_s']:.1f} s, peak {r['peak_bytes'] / 2**20:.0f} MiB",
                  flush=True)
        print_table(runs)
        official = []
        if args.official is not None:
            for dtype_name in args.dtypes:
                o = run_official(args, dtype_name, folder, media, cuda)
                ours = next(r for r in runs if r["dtype"] == dtype_name)
                # The official pipeline gets ready-made motion and conditions: compare the stages it runs too.
                comparable = sum(ours["stages_s"][k] for k in STAGES if k not in ("motion", "conditions"))
                o["ours_frames_per_s"] = ours["frames"] / comparable
                o["ratios"] = {"frames_per_s": o["ours_frames_per_s"] / o["frames_per_s"],
                               "peak_bytes": ours["peak_bytes"] / o["peak_bytes"]}
                official.append(o)
                print(f"official {dtype_name}: {o['frames_per_s']:.3f} frames/s ({o['total_s']:.1f} s), peak "
                      f"{o['peak_bytes'] / 2**20:.0f} MiB ({o['peak_kind']}); ours (reference..decode) "
                      f"{o['ours_frames_per_s']:.3f} frames/s; ours/official: speed x{o['ratios']['frames_per_s']:.2f}, "
                      f"memory x{o['ratios']['peak_bytes']:.2f}", flush=True)
    result = {"device": device, "cuda": cuda, "tiny": args.tiny, "size": args.size, "frames": args.frames,
              "steps": args.steps, "image_steps": args.image_steps, "runs": runs, "official": official}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
