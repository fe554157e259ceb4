"""Time per denoiser call and per frame: ComfyUI's SD1.5 UNet alone, with the HelloMeme image-stage patches,
and with the temporal stage (motion modules), so the cost of the hooks is visible.

Random SD1.5 weights and v5 files in the official layout (parity rule weights); small latents by default.
``HELLOMEME_BENCH_DTYPE`` (bf16/fp16/fp32; fp16 is very slow on CPU), ``HELLOMEME_BENCH_SIZE`` (pixels), ``HELLOMEME_BENCH_FRAMES``.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

DTYPES = {"fp16": torch.float16, "fp32": torch.float32, "bf16": torch.bfloat16}


def _time(fn, repeats: int) -> float:
    fn()  # warm-up (also loads the model)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    from tests.nodes import _fixtures as fx
    from tests.nodes._comfy import comfy_root

    comfy_root()
    import folder_paths

    import nodes.comfy_glue.paths  # noqa: F401
    from nodes.comfy_glue.unet_calls import run_diffusion_model
    from nodes.apply import ApplyHelloMeme
    from nodes.models import LoadHelloMemeModels
    from nodes.reference import HelloMemeReference
    from nodes.temporal import ApplyHelloMemeTemporal

    dtype_name = os.environ.get("HELLOMEME_BENCH_DTYPE", "bf16")
    size = int(os.environ.get("HELLOMEME_BENCH_SIZE", "128"))
    frames = int(os.environ.get("HELLOMEME_BENCH_FRAMES", "4"))
    repeats = int(os.environ.get("HELLOMEME_BENCH_REPEATS", "3"))
    dtype = DTYPES[dtype_name]
    folder = Path(os.environ.get("HELLOMEME_BENCH_MODELS", Path(tempfile.gettempdir()) / "hellomeme_bench_models"))
    fx.write_version_files(folder, "v5")
    folder_paths.add_model_folder_path("hellomeme", str(folder), is_default=True)

    bundle = LoadHelloMemeModels.execute("v5", dtype_name).result[0]
    model = fx.random_sd15_model(dtype)
    pos, neg = fx.text_conditioning(seed=5), fx.text_conditioning(seed=6)
    reference = HelloMemeReference.execute(model, fx.random_vae(), torch.rand(1, size, size, 3), pos, neg).result[0]
    image_stage = ApplyHelloMeme.execute(model, bundle, reference, fx.condition_images(frames, size), fx.face_motion(frames)).result[0]
    temporal = ApplyHelloMemeTemporal.execute(image_stage, bundle, max(frames, 2), 0).result[0]
    lat = size // 8
    image_latents = {"samples": torch.randn(frames, 4, lat, lat, generator=torch.Generator().manual_seed(8))}
    start = time.perf_counter()
    padded = ApplyHelloMemeTemporal.execute(image_stage, bundle, max(frames, 2), 0, image_latents).result[0]
    pad_seconds = time.perf_counter() - start

    x = torch.randn(2 * frames, 4, lat, lat)
    t = torch.full((2 * frames,), 500.0)
    context = torch.cat([neg[0][0].expand(frames, -1, -1), pos[0][0].expand(frames, -1, -1)])
    cfg_chunks = {"cond_or_uncond": [1, 0]}
    print(f"device={model.load_device} dtype={dtype_name} latent={lat}x{lat} frames={frames} (cond+uncond batch {2 * frames})")
    rows = [
        ("SD1.5 UNet alone", model),
        ("+ HelloMeme image stage (v5)", image_stage),
        ("+ HelloMeme temporal stage (v5 motion)", temporal),
        ("+ temporal stage with motion pads", padded),
    ]
    base = None
    with torch.no_grad():
        for label, m in rows:
            sec = _time(lambda m=m: run_diffusion_model(m, x, t, context, dict(cfg_chunks)), repeats)
            base = base or sec
            print(f"{label:<42} {sec * 1000:9.1f} ms/call  {sec * 1000 / frames:8.1f} ms/frame  x{sec / base:5.2f}", flush=True)
    print(f"motion pads (reference pass on the window's 2 boundary frames, once per clip): {pad_seconds * 1000:.1f} ms")


if __name__ == "__main__":
    main()
