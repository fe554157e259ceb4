"""A random Stable Diffusion 1.5 checkpoint in ComfyUI's single-file (LDM) layout, for server tests.

The tensor names and shapes come from ComfyUI's own model classes, built on the ``meta`` device (no
memory): the SD1.5 UNet (``model.diffusion_model.*``), the SD VAE (``first_stage_model.*``) and the
CLIP-L text model (``cond_stage_model.transformer.text_model.*``). ``load_checkpoint_guess_config``
detects such a file as SD1.5 and loads MODEL, CLIP and VAE from it. Values are random, scaled like
``tests/nodes/_fixtures._randomize`` (weights ~ 1/sqrt(fan-in), norms ~ 1, small biases) so activations
stay finite; each tensor is drawn, cast to ``dtype`` and kept, never the whole model in fp32.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from tests.nodes._comfy import comfy_root

VAE_DDCONFIG = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
                "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}


def sd15_checkpoint_shapes() -> dict[str, tuple[int, ...]]:
    """Every parameter of an SD1.5 single-file checkpoint: LDM key name -> shape."""
    comfy_root()
    import comfy.ops
    import comfy.sd1_clip
    import comfy.supported_models
    from comfy.ldm.models.autoencoder import AutoencoderKL
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    from tests.nodes._fixtures import SD15_UNET

    ops = comfy.ops.disable_weight_init
    with torch.device("meta"):
        unet = UNetModel(**SD15_UNET, device=torch.device("meta"), operations=ops)
        vae = AutoencoderKL(ddconfig=VAE_DDCONFIG, embed_dim=4)
        clip = comfy.sd1_clip.SDClipModel(device="meta", dtype=torch.float32)
    shapes = {f"model.diffusion_model.{k}": tuple(p.shape) for k, p in unet.named_parameters()}
    shapes.update({f"first_stage_model.{k}": tuple(p.shape) for k, p in vae.named_parameters()})
    shapes.update({f"cond_stage_model.{k}": tuple(p.shape) for k, p in clip.named_parameters()
                   if k.startswith("transformer.text_model.")})
    return shapes


def random_tensor(key: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Weights of order 1/sqrt(fan-in), norm scales near 1, biases small (fp32)."""
    if len(shape) >= 2:
        return torch.randn(shape, generator=generator) / math.sqrt(math.prod(shape[1:]))
    if key.endswith("weight"):
        return 1 + 0.1 * torch.randn(shape, generator=generator)
    return 0.1 * torch.randn(shape, generator=generator)


def write_sd15_checkpoint(path: str | Path, dtype: torch.dtype = torch.float16, seed: int = 0) -> Path:
    """Write a random SD1.5 checkpoint (about 2 GB in fp16) to ``path`` (a ``.safetensors`` file)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    tensors = {k: random_tensor(k, s, generator).to(dtype) for k, s in sd15_checkpoint_shapes().items()}
    save_file(tensors, str(path), metadata={"hellomeme_test": "random SD1.5 weights"})
    return path


def write_in_subprocess(path: str | Path, dtype: str = "float16", seed: int = 0) -> Path:
    """:func:`write_sd15_checkpoint` in a child Python, so the ~2 GB of tensors never stay in the caller's memory."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "tests.support.sd15_checkpoint", str(path), dtype, str(seed)],
                          cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"writing the random SD1.5 checkpoint {path} failed:\n{done.stderr[-3000:]}")
    return Path(path)


if __name__ == "__main__":
    import sys

    target, dtype_name, seed_text = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "float16", sys.argv[3] if len(sys.argv) > 3 else "0"
    write_sd15_checkpoint(target, getattr(torch, dtype_name), int(seed_text))
