"""Loading one version's files into HM_MODELS: every file is checked against the slot it fills."""
from __future__ import annotations

import shutil

import pytest
import torch

from hellomeme_core.denoiser.loading import load_bundle
from hellomeme_core.errors import MissingModelFileError, WeightFileError
from tests.support import official_weights as W


def test_loads_a_complete_version(tmp_path):
    W.write_version(tmp_path, "v5", stage="video", dtype=torch.float16, zero_data=True)
    bundle = load_bundle("v5", [tmp_path], torch.float32)
    assert bundle.version == "v5" and bundle.motion_adapter is not None
    names = [getattr(n, "official_class", type(n).__name__) for n in bundle.control_networks]
    assert names == ["HM5ControlNetBase", "HM5SD15ControlProj"]
    assert next(bundle.reference_adapter.parameters()).dtype == torch.float32


def test_another_versions_file_in_a_slot_is_named(tmp_path):
    """hm4_reference placed where hm5_reference belongs: refused, naming the file and what it looks like."""
    W.write_version(tmp_path, "v5", stage="image", dtype=torch.float16, zero_data=True)
    slot = tmp_path / "hm5_reference"
    shutil.rmtree(slot)
    wrong = W.write_repo(tmp_path / "other", "hm4_reference", dtype=torch.float16, zero_data=True)
    shutil.copytree(wrong.parent, slot)
    with pytest.raises(WeightFileError) as info:
        load_bundle("v5", [tmp_path])
    message = str(info.value)
    assert str(slot / "diffusion_pytorch_model.safetensors") in message
    assert "looks like hm3_reference" in message or "looks like hm4_reference" in message
    assert message.count("python -m hellomeme_core download --version v5") == 1  # the fix, stated once


def test_missing_image_file_names_itself(tmp_path):
    W.write_version(tmp_path, "v5", stage="image", dtype=torch.float16, zero_data=True)
    shutil.rmtree(tmp_path / "hm5_control_proj")
    with pytest.raises(MissingModelFileError, match="hm5_control_proj"):
        load_bundle("v5", [tmp_path])
