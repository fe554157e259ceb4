"""Every official weight repo loads from both on-disk forms, through the file loader, into our modules.

For each of the 24 repos of the official layout, a file is written in the official layout (fp16, all
zeros, sparse: header only, so even the 900 MB AnimateDiff files cost no time or disk) in the diffusers
folder form (``<name>/diffusion_pytorch_model.safetensors`` + ``config.json``) and as a single
``<name>.safetensors``; it is read with ``safetensors_io.load_state_dict`` and loaded strictly with
``load_adapter`` / ``load_control_network``. The module's state dict must have exactly the layout's keys
and shapes, and hold the file's tensors (fp16, shared memory: no second copy).
"""
from __future__ import annotations

import pytest
import torch

from hellomeme_core.adapters import load_adapter
from hellomeme_core.control import load_control_network
from hellomeme_core.model_files import layout
from hellomeme_core.model_files.safetensors_io import DIFFUSERS_CONFIG_NAME, load_state_dict
from tests.support.official_weights import write_repo

ADAPTER_CLASSES = {"HMReferenceAdapter", "HM3ReferenceAdapter", "HM5ReferenceAdapter", "HM5bReferenceAdapter",
                   "HM3MotionAdapter", "HM5MotionAdapter", "MotionAdapter"}
# Our class for the official ``MotionAdapter`` (diffusers) files; the others keep the official names.
OUR_NAME = {"MotionAdapter": "AnimateDiffMotionAdapter"}


@pytest.mark.parametrize("form", ["folder", "file"])
@pytest.mark.parametrize("repo", layout.official_repos(), ids=layout.short_name)
def test_repo_loads_from_file_form(tmp_path, repo: str, form: str) -> None:
    target = write_repo(tmp_path, repo, form=form, dtype=torch.float16, zero_data=True)
    if form == "folder":
        assert (target.parent / DIFFUSERS_CONFIG_NAME).is_file()
        path = target.parent  # the folder itself, as the nodes pass it
    else:
        assert target.name == f"{layout.short_name(repo)}.safetensors"
        path = target
    sd = load_state_dict(path)
    official = layout.official_class(repo)
    if official in ADAPTER_CLASSES:
        module = load_adapter(sd, str(path), dtype=torch.float16)
    else:
        module = load_control_network(sd, str(path), dtype=torch.float16)
    assert type(module).__name__ == OUR_NAME.get(official, official)
    expected = layout.expected_tensors(repo)
    own = module.state_dict()
    assert set(own) == set(expected)
    assert {k: tuple(v.shape) for k, v in own.items()} == expected
    for key, value in own.items():
        assert value.dtype == sd[key].dtype and value.data_ptr() == sd[key].data_ptr(), key
    assert not module.training
