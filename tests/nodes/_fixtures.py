"""Builders for the in-process node tests and the denoiser benchmark: a random SD1.5 MODEL (ComfyUI's own
model classes), a random SD VAE, HelloMeme files in the official layout and a FACE_MOTION."""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from tests.nodes._comfy import comfy_root
from tests.support import weight_store
from tests.support.weight_rule import rule_tensor

# ComfyUI's SD1.5 UNet config (comfy/model_detection.py, unet_config_from_diffusers_unet "SD15").
SD15_UNET = {
    "use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True, "legacy": False,
    "adm_in_channels": None, "in_channels": 4, "model_channels": 320, "num_res_blocks": [2, 2, 2, 2],
    "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0], "channel_mult": [1, 2, 4, 4], "transformer_depth_middle": 1,
    "use_linear_in_transformer": False, "context_dim": 768, "num_heads": 8,
    "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
    "use_temporal_attention": False, "use_temporal_resblock": False,
}


def _randomize(module: torch.nn.Module, seed: int) -> None:
    """Weights of order 1/sqrt(fan-in) (activations stay O(1) through the whole UNet), norms at 1, biases small."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() >= 2:
                t = torch.randn(p.shape, generator=g) / math.sqrt(math.prod(p.shape[1:]))
            elif name.endswith("weight"):
                t = 1 + 0.1 * torch.randn(p.shape, generator=g)
            else:
                t = 0.1 * torch.randn(p.shape, generator=g)
            p.copy_(t.to(p.dtype))


def random_sd15_model(dtype: torch.dtype = torch.bfloat16, seed: int = 0, context_dim: int = 768, in_channels: int = 4):
    """A ComfyUI MODEL (ModelPatcher over comfy.model_base.BaseModel) with SD1.5's layout and random weights
    (``in_channels=9``: the layout of an SD1.5 inpainting checkpoint)."""
    comfy_root()
    import comfy.model_management
    import comfy.model_patcher
    import comfy.supported_models

    config = dict(SD15_UNET, context_dim=context_dim, in_channels=in_channels)
    model_config = comfy.supported_models.SD15(config)
    model_config.set_inference_dtype(dtype, None)
    model = model_config.get_model({}, "", device=torch.device("cpu"))
    _randomize(model.diffusion_model, seed)
    model.eval()
    cpu = torch.device("cpu")
    return comfy.model_patcher.ModelPatcher(model, load_device=comfy.model_management.get_torch_device(), offload_device=cpu)


def random_vae(seed: int = 1):
    """ComfyUI's SD VAE (comfy.sd.VAE) built from a random state dict of the SD1.x layout."""
    comfy_root()
    import comfy.sd
    from comfy.ldm.models.autoencoder import AutoencoderKL

    ddconfig = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
                "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}
    model = AutoencoderKL(ddconfig=ddconfig, embed_dim=4)
    _randomize(model, seed)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    del model
    return comfy.sd.VAE(sd=sd)


def write_version_files(folder: Path, version: str, dtype: torch.dtype = torch.float16, stage: str = "video") -> list[Path]:
    """Every file ``version`` needs, in the official layout with the parity rule weights (fp16 to save disk)."""
    from safetensors.torch import save_file

    from hellomeme_core.model_files import layout

    def write(repo: str, path: Path) -> None:
        skip = set(layout.buffer_keys(repo))
        tensors = {k: rule_tensor(k, s).to(dtype) for k, s in layout.expected_tensors(repo).items() if k not in skip}
        save_file(tensors, str(path))

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for repo in layout.version_repos(version, stage):
        name = layout.short_name(repo)
        target = folder / f"{name}.safetensors"
        if not target.exists():
            key = f"no_buffers/{name}.{str(dtype).removeprefix('torch.')}.safetensors"
            weight_store.materialize(target, key, lambda path, repo=repo: write(repo, path))
        written.append(target)
    return written


@contextlib.contextmanager
def hellomeme_folder(folder: Path) -> Iterator[Path]:
    """``folder`` registered as a ComfyUI ``hellomeme`` model folder (first in the list) while in use."""
    import folder_paths

    import nodes.comfy_glue.paths  # noqa: F401  (registers the hellomeme folder)

    folder_paths.add_model_folder_path("hellomeme", str(folder), is_default=True)
    try:
        yield folder
    finally:
        paths, exts = folder_paths.folder_names_and_paths["hellomeme"]
        folder_paths.folder_names_and_paths["hellomeme"] = ([p for p in paths if p != str(folder)], exts)


def face_motion(frames: int, seed: int = 2, pd_fgc: bool = True, face_parts: bool = False):
    """A FACE_MOTION with plausible random expression coefficients, a random PD-FGC embedding (the official
    default expression input; ``pd_fgc=False`` leaves it out) and optionally random face-part embeddings."""
    from hellomeme_core.face.types import FaceMotion

    rng = np.random.default_rng(seed)
    motion = FaceMotion(
        angles=rng.normal(0, 0.2, (frames, 3)).astype(np.float32),
        translation=rng.normal(0, 1, (frames, 3)).astype(np.float32),
        expression=rng.uniform(0, 1, (frames, 51)).astype(np.float32),
        face_found=np.ones(frames, bool),
        landmarks=np.zeros((frames, 478, 2), np.float32),
        face_boxes=np.tile(np.array([[0, 0, 64, 64]], np.float32), (frames, 1)),
        crop_box=np.array([0, 0, 64, 64]),
        frame_indices=np.arange(frames),
    )
    if pd_fgc:
        motion.pd_fpg = torch.from_numpy(rng.normal(0, 1, (frames, 548)).astype(np.float32))
        motion.extras["neg_pd_fpg"] = torch.from_numpy(rng.normal(0, 1, (1, 548)).astype(np.float32))
    if face_parts:
        motion.face_parts = torch.from_numpy(rng.normal(0, 1, (frames, 3, 1024)).astype(np.float32))
    return motion


def condition_images(frames: int, size: int, seed: int = 3) -> torch.Tensor:
    """Condition IMAGE batch (frames, size, size, 3) in [0, 1]: a bright box on black, moving per frame."""
    img = torch.zeros(frames, size, size, 3)
    for f in range(frames):
        o = (f * 4) % (size // 2)
        img[f, size // 4 + o // 2: size // 2 + o // 2, size // 4: 3 * size // 4, :] = 1.0
    return img


def text_conditioning(tokens: int = 77, seed: int = 4, dim: int = 768) -> list:
    """A CONDITIONING like CLIP Text Encode's output (random context)."""
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, tokens, dim, generator=g), {"pooled_output": torch.randn(1, dim, generator=g)}]]
