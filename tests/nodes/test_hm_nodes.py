"""The HelloMeme denoiser nodes in-process against the real ComfyUI tree, sampled by ComfyUI's own KSampler.

A random SD1.5 MODEL (ComfyUI's model classes, bf16 to stay small and fast: fp16 convolutions are very slow on CPU), a random SD VAE and v5 files in the
official layout (parity rule weights) stand in for real downloads; inputs are tiny (128x128 images).
"""
from __future__ import annotations

import copy

import pytest
import torch

from tests.nodes import _fixtures as fx
from tests.nodes._comfy import comfy_nodes, comfy_root

pytestmark = pytest.mark.slow  # full-size SD1.5 UNet on the CPU: minutes

SIZE = 128  # pixels; the v5 control base needs multiples of 64 and > 64 (InstanceNorm at /64)
LAT = SIZE // 8
VERSION = "v5"


@pytest.fixture(scope="module")
def comfy():
    comfy_root()
    return comfy_nodes()


@pytest.fixture(scope="module")
def hm_dir(tmp_path_factory, comfy):
    folder = tmp_path_factory.mktemp("hellomeme_models")
    fx.write_version_files(folder, VERSION)
    with fx.hellomeme_folder(folder):
        yield folder


@pytest.fixture(scope="module")
def hm_models(hm_dir):
    from nodes.models import LoadHelloMemeModels

    return LoadHelloMemeModels.execute("auto", "bf16").result[0]


@pytest.fixture(scope="module")
def model(comfy):
    return fx.random_sd15_model(torch.bfloat16)


@pytest.fixture(scope="module")
def texts():
    return fx.text_conditioning(seed=5), fx.text_conditioning(seed=6)


@pytest.fixture(scope="module")
def reference(model, texts, comfy):
    from nodes.reference import HelloMemeReference

    vae = fx.random_vae()
    image = torch.rand(1, SIZE, SIZE, 3, generator=torch.Generator().manual_seed(7))
    return HelloMemeReference.execute(model, vae, image, texts[0], texts[1]).result[0]


def _apply(model, hm_models, reference, frames):
    from nodes.apply import ApplyHelloMeme

    return ApplyHelloMeme.execute(model, hm_models, reference, fx.condition_images(frames, SIZE), fx.face_motion(frames)).result[0]


def _sample(comfy, model, texts, frames, cfg=1.0, seed=1, steps=1):
    latent = {"samples": torch.zeros(frames, 4, LAT, LAT)}
    return comfy.KSampler().sample(model, seed, steps, cfg, "euler", "normal", texts[0], texts[1], latent, denoise=1.0)[0]["samples"]


def _snapshot(model):
    return (
        {k: list(v) for k, v in model.model_options["transformer_options"].get("patches", {}).items()},
        dict(model.object_patches),
        set(model.patches),
        copy.copy(model.model_options.get("context_handler")),
    )


def test_loader_detects_version_and_dtype(hm_models):
    assert hm_models.version == VERSION
    assert next(hm_models.bundle.reference_adapter.parameters()).dtype == torch.bfloat16  # precision input honoured
    assert hm_models.bundle.motion_adapter is not None  # video files present -> temporal modules loaded


def test_loader_names_missing_file_and_download_command(hm_dir):
    from hellomeme_core.errors import MissingModelFileError
    from nodes.models import LoadHelloMemeModels

    with pytest.raises(MissingModelFileError) as err:
        LoadHelloMemeModels.execute("v1", "fp32")
    assert "hm_reference" in str(err.value) and "python -m hellomeme_core download --version v1" in str(err.value)


def test_reference_features(reference):
    keys = {f"down_{i}" for i in range(4)} | {f"up_{i}" for i in range(4)} | {"mid"}
    assert keys <= set(reference.features)
    assert reference.features["down_0"].shape == (2, 320, LAT // 2, LAT // 2)
    assert reference.features["up_3"].shape == (2, 640, LAT, LAT)
    # row 0 is the zero-latent unconditional reference, row 1 the image: they must differ
    assert not torch.allclose(reference.features["down_0"][0], reference.features["down_0"][1])
    assert reference.latent_size == (LAT, LAT)


@pytest.mark.parametrize("frames,cfg", [(3, 3.0), (1, 1.0)])  # cond/uncond batch and cond only
def test_image_stage_ksampler(comfy, model, hm_models, reference, texts, frames, cfg):
    before = _snapshot(model)
    patched = _apply(model, hm_models, reference, frames)
    out = _sample(comfy, patched, texts, frames, cfg=cfg, steps=2)
    assert out.shape == (frames, 4, LAT, LAT)
    assert torch.isfinite(out).all()
    # HelloMeme changes the result, and the user's MODEL is untouched
    plain = _sample(comfy, model, texts, frames, cfg=cfg, steps=2)
    assert not torch.allclose(out, plain)
    assert _snapshot(model)[:3] == before[:3]
    assert _sample(comfy, model, texts, frames, cfg=cfg, steps=2).equal(plain)


def test_lora_on_model_still_applies(comfy, model, hm_models, reference, texts):
    import comfy.sd as comfy_sd

    key = "lora_unet_output_blocks_11_1_proj_out"
    g = torch.Generator().manual_seed(9)
    lora = {f"{key}.lora_up.weight": torch.randn(320, 4, 1, 1, generator=g),
            f"{key}.lora_down.weight": torch.randn(4, 320, 1, 1, generator=g)}
    lora_model, _ = comfy_sd.load_lora_for_models(model, None, lora, 1.0, 0.0)
    assert lora_model.patches, "the LoRA did not map onto the UNet"
    with_lora = _sample(comfy, _apply(lora_model, hm_models, reference, 1), texts, 1)
    without = _sample(comfy, _apply(model, hm_models, reference, 1), texts, 1)
    assert torch.isfinite(with_lora).all()
    assert not torch.allclose(with_lora, without)


@pytest.mark.parametrize("frames", [3, 7])  # fewer frames than a window; several overlapping windows
def test_temporal_stage_any_frame_count(comfy, model, hm_models, reference, texts, frames):
    from nodes.temporal import ApplyHelloMemeTemporal

    image_stage = _apply(model, hm_models, reference, frames)
    before = _snapshot(image_stage)
    temporal = ApplyHelloMemeTemporal.execute(image_stage, hm_models, 4, 2).result[0]
    out = _sample(comfy, temporal, texts, frames)
    assert out.shape == (frames, 4, LAT, LAT)
    assert torch.isfinite(out).all()
    assert not torch.allclose(out, _sample(comfy, image_stage, texts, frames))
    assert _snapshot(image_stage)[:3] == before[:3]


def test_error_fewer_motion_frames_than_latents(comfy, model, hm_models, reference, texts):
    from hellomeme_core.errors import HelloMemeError

    patched = _apply(model, hm_models, reference, 2)
    with pytest.raises(HelloMemeError, match="driving motion has only 2"):
        _sample(comfy, patched, texts, 3)


def test_error_reference_size_and_versions(model, hm_models, reference):
    import dataclasses

    from hellomeme_core.errors import HelloMemeError
    from nodes.apply import ApplyHelloMeme

    small = dataclasses.replace(reference, latent_size=(LAT // 2, LAT // 2))
    with pytest.raises(HelloMemeError, match="Resize the reference image"):
        _apply(model, hm_models, small, 1)
    v5c_ref = dataclasses.replace(reference, control_version="v5c")
    with pytest.raises(HelloMemeError, match="made with v5c control"):
        _apply(model, hm_models, v5c_ref, 1)
    with pytest.raises(HelloMemeError, match="no HelloMeme patch"):
        from nodes.temporal import ApplyHelloMemeTemporal

        ApplyHelloMemeTemporal.execute(model, hm_models, 12, 4)
    del ApplyHelloMeme


def test_error_non_sd15_model(hm_models, reference):
    from hellomeme_core.errors import HelloMemeError
    from nodes.comfy_glue.inputs import check_sd15

    class Fake:  # an SDXL-like config on a UNet-less model object
        class model:
            diffusion_model = None
            latent_format = type("L", (), {"latent_channels": 4})()
            model_config = type("SDXL", (), {"unet_config": {"context_dim": 2048, "model_channels": 320}})()

    with pytest.raises(HelloMemeError, match="Stable Diffusion 1.5"):
        check_sd15(Fake, "Apply HelloMeme")


# -- motion pads from the image stage (the official margin-frame pads) ---------------------------------
def test_motion_pads_from_image_stage_latents(comfy, model, hm_models, reference, texts):
    """Each window's pads are the reference pass of its first and last image-stage frame; the zero-latent
    row is the reference's own unconditional row; batching several frames in one pass changes nothing."""
    from nodes.comfy_glue.reference_pass import reference_pass
    from nodes.comfy_glue.temporal import motion_pad_bank
    from nodes.temporal import ApplyHelloMemeTemporal

    frames = 7
    image_stage = _apply(model, hm_models, reference, frames)
    latents = _sample(comfy, image_stage, texts, frames, steps=1)
    temporal = ApplyHelloMemeTemporal.execute(image_stage, hm_models, 4, 2, {"samples": latents}).result[0]
    source = temporal.model_options["transformer_options"]["hellomeme"].source
    bank = source.pad_bank
    # windows of 4 with overlap 2 over 7 frames: [0-3], [2-5], [3-6] -> boundaries 0, 2, 3, 5, 6
    assert sorted(bank.frames) == [0, 2, 3, 5, 6]
    def rel(a, b):  # bf16 model: batch size changes the rounding (measured up to 1.1e-2), so compare by norm
        return float((a.float() - b.float()).norm() / b.float().norm())

    for key, row in bank.uncond.items():
        assert rel(row, reference.features[key][:1]) < 3e-2, key
    single = reference_pass(model, model.model.latent_format.process_in(latents[5:6].float()), reference.context)
    for key, row in bank.frames[5].items():
        assert rel(row, single[key][1:2]) < 3e-2, key
        assert rel(row, bank.frames[6][key]) > 0.1, key  # another frame gives other pads
    pads = bank.pads(2, 5)
    assert pads["up_3"].shape == (2, 640, 2, LAT, LAT)
    assert torch.equal(pads["up_3"][1, :, 1], bank.frames[5]["up_3"][0])
    out = _sample(comfy, temporal, texts, frames)
    assert out.shape == (frames, 4, LAT, LAT) and torch.isfinite(out).all()
    without = ApplyHelloMemeTemporal.execute(image_stage, hm_models, 4, 2).result[0]
    assert not torch.allclose(out, _sample(comfy, without, texts, frames))  # the v5 pad attention is in use
    # direct use of the helper: the same frames give the same bank
    again = motion_pad_bank(model, reference, latents, [0, 6], hm_models.dtype)
    assert rel(again.frames[6]["down_0"], bank.frames[6]["down_0"]) < 3e-2


def test_motion_pads_errors(comfy, model, hm_models, reference, texts):
    from hellomeme_core.errors import HelloMemeError
    from nodes.temporal import ApplyHelloMemeTemporal

    image_stage = _apply(model, hm_models, reference, 5)
    with pytest.raises(HelloMemeError, match="must be SD1.5 latents"):
        ApplyHelloMemeTemporal.execute(image_stage, hm_models, 4, 2, {"samples": torch.zeros(5, 4, 3, LAT, LAT)})
    with pytest.raises(HelloMemeError, match="the reference is"):
        ApplyHelloMemeTemporal.execute(image_stage, hm_models, 4, 2, {"samples": torch.zeros(5, 4, LAT // 2, LAT // 2)})
    with pytest.raises(HelloMemeError, match="driving motion only 5"):
        ApplyHelloMemeTemporal.execute(image_stage, hm_models, 4, 2, {"samples": torch.zeros(6, 4, LAT, LAT)})
    temporal = ApplyHelloMemeTemporal.execute(image_stage, hm_models, 4, 2, {"samples": torch.zeros(3, 4, LAT, LAT)}).result[0]
    with pytest.raises(HelloMemeError, match="No motion pads for frame"):
        _sample(comfy, temporal, texts, 5)
