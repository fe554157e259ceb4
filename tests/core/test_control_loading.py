"""Every official control-network layout (and the PD-FGC FanEncoder) loads strictly; wrong files fail
with a message naming the file, the first offending tensor and what the file looks like."""
from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import save_file

from hellomeme_core import control as C
from hellomeme_core.errors import WeightFileError
from hellomeme_core.nn.embeddings import interleaved_sinusoid_table
from hellomeme_core.pd_fgc import FanEncoder, load_fan_encoder_file
from tests.support.weight_rule import rule_tensor

EXPECTED_CLASS = {
    "songkey/hm_control": C.HMControlNet,
    "songkey/hm_control2": C.HMControlNet2,
    "songkey/hm2_control": C.HMV2ControlNet,
    "songkey/hm2_control2": C.HMV2ControlNet2,
    "songkey/hm3_control_mix": C.HMV3ControlNet,
    "songkey/hm_control_base": C.HMControlNetBase,
    "songkey/hm5_control_base": C.HM5ControlNetBase,
    "songkey/hm4_control_proj": C.HM4SD15ControlProj,
    "songkey/hm5_control_proj": C.HM5SD15ControlProj,
    "songkey/hm5c_control_proj": C.HM5SD15ControlProj,
}
PD_FGC = "songkey/pd_fgc_motion"


def layout_state_dict(shapes: dict[str, list[int]], device: str = "cpu", with_pe: bool = True) -> dict[str, torch.Tensor]:
    """fp16 zeros for every parameter (cheap at 230M parameters), the real sinusoid tables for ``pe``
    buffers, and rule tensors for the first and last parameter so the test sees values arrive."""
    sd = {}
    for k, shape in shapes.items():
        if k.endswith(".pe"):
            if with_pe:
                sd[k] = interleaved_sinusoid_table(shape[1], shape[2]).half().to(device)
        else:
            sd[k] = torch.zeros(shape, dtype=torch.float16, device=device)
    if device == "cpu":
        params = [k for k in shapes if not k.endswith(".pe")]
        for k in (params[0], params[-1]):
            sd[k] = rule_tensor(k, shapes[k]).half()
    return sd


@pytest.mark.parametrize("repo", sorted(EXPECTED_CLASS))
def test_official_layout_loads_strict(layout: dict, repo: str) -> None:
    shapes = layout[repo]["tensors"]
    sd = layout_state_dict(shapes)
    net = C.load_control_network(sd, source=repo, dtype=torch.float16)
    assert type(net) is EXPECTED_CLASS[repo]
    own = net.state_dict()
    assert set(own) == set(shapes)
    assert all(tuple(own[k].shape) == tuple(s) for k, s in shapes.items())
    for k in shapes:
        # Same dtype: the file's tensors are assigned, not copied (no second copy of a 1 GB network).
        assert own[k].data_ptr() == sd[k].data_ptr(), k
    assert sum(p.numel() for p in net.parameters()) == layout[repo]["num_params"]


@pytest.mark.parametrize("repo", sorted(EXPECTED_CLASS))
def test_layout_without_buffers_computes_official_tables(layout: dict, repo: str) -> None:
    """Parameters only (as the parity rule weights): the ``pe`` tables are computed, equal to the official."""
    shapes = layout[repo]["tensors"]
    sd = layout_state_dict(shapes, device="meta", with_pe=False)
    cls = EXPECTED_CLASS[repo]
    net = cls.from_state_dict(sd, source=repo)
    for k, shape in shapes.items():
        if k.endswith(".pe"):
            assert torch.equal(net.state_dict()[k], interleaved_sinusoid_table(shape[1], shape[2])), k


def test_v4_base_is_told_from_v5_by_its_tables(layout: dict) -> None:
    v4 = layout_state_dict(layout["songkey/hm_control_base"]["tensors"], device="meta")
    assert C.identify_control_network(v4) is C.HMControlNetBase
    stripped = {k: v for k, v in v4.items() if not k.endswith(".pe")}
    # Identical parameters: without tables the file is taken for v5 (what real v5 files look like)...
    assert C.identify_control_network(stripped) is C.HM5ControlNetBase
    # ...and the caller can name the class.
    assert type(C.load_control_network(stripped, "v4", official_class="HMControlNetBase")) is C.HMControlNetBase


def test_folder_and_single_file_forms(layout: dict, tmp_path) -> None:
    shapes = layout["songkey/hm4_control_proj"]["tensors"]
    sd = layout_state_dict(shapes)
    folder = tmp_path / "hm4_control_proj"
    folder.mkdir()
    save_file(sd, str(folder / "diffusion_pytorch_model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"_class_name": "HM4SD15ControlProj"}))
    key = next(iter(shapes))
    for path in (folder, folder / "diffusion_pytorch_model.safetensors"):
        net = C.load_control_network_file(path)
        assert type(net) is C.HM4SD15ControlProj
        assert torch.equal(net.state_dict()[key], sd[key].float())

    # A truncated download is named as such before torch sees it.
    data = (folder / "diffusion_pytorch_model.safetensors").read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightFileError, match=r"cut\.safetensors.*truncated"):
        C.load_control_network_file(cut)


def test_wrong_network_file_names_what_it_looks_like(layout: dict) -> None:
    v2 = layout_state_dict(layout["songkey/hm2_control"]["tensors"], device="meta")
    with pytest.raises(WeightFileError) as err:
        C.HMControlNet.from_state_dict(v2, source="models/hm_control.safetensors")
    msg = str(err.value)
    assert "models/hm_control.safetensors" in msg and "HMControlNet (songkey/hm_control, v1)" in msg
    assert "blocks_down.3" in msg and "looks like HMV2ControlNet (songkey/hm2_control, v2)" in msg

    base = layout_state_dict(layout["songkey/hm5_control_base"]["tensors"], device="meta")
    with pytest.raises(WeightFileError, match=r"proj\.safetensors .*tensor 'map640_to_640\.weight' is missing.*looks like HM5ControlNetBase"):
        C.HM4SD15ControlProj.from_state_dict(base, source="proj.safetensors")


def test_truncated_state_dict_names_first_missing_tensor(layout: dict) -> None:
    shapes = layout["songkey/hm3_control_mix"]["tensors"]
    sd = layout_state_dict(shapes, device="meta")
    last = list(shapes)[-1]
    del sd[last]
    with pytest.raises(WeightFileError, match=rf"hm3\.safetensors.*1 tensor\(s\) missing, first '{re.escape(last)}'.*HMV3ControlNet"):
        C.load_control_network(sd, "hm3.safetensors")
    # A whole block gone (a file cut at a block boundary) is caught too.
    cut = {k: v for k, v in sd.items() if not k.startswith("blocks_down.3.")}
    with pytest.raises(WeightFileError, match=r"3 down blocks.*has 4.*blocks_down\.3\.conv\.conv1\.weight"):
        C.HMV3ControlNet.from_state_dict(cut, "hm3.safetensors")


def test_mismatched_shape_names_tensor(layout: dict) -> None:
    sd = layout_state_dict(layout["songkey/hm_control"]["tensors"], device="meta")
    sd["blocks_down.1.attn2.to_v.weight"] = torch.zeros(640, 300, device="meta")
    with pytest.raises(WeightFileError, match=r"c\.st: tensor 'blocks_down\.1\.attn2\.to_v\.weight' has shape \(640, 300\).*\(640, 320\)"):
        C.load_control_network(sd, "c.st")


def test_non_control_files_are_refused(layout: dict, fan_layout) -> None:
    ref = layout_state_dict(layout["songkey/hm_reference"]["tensors"], device="meta")
    with pytest.raises(WeightFileError, match=r"ref\.st is not a HelloMeme control network file.*reference adapter"):
        C.load_control_network(ref, "ref.st")
    with pytest.raises(WeightFileError, match="FanEncoder"):
        C.load_control_network({k: torch.zeros(s, device="meta") for k, s in fan_layout.items()}, "pd.st")
    with pytest.raises(WeightFileError, match="no tensors"):
        C.load_control_network({}, "empty.st")
    with pytest.raises(WeightFileError, match=r"fan\.st is not a FanEncoder.*model\.fc\.weight.*HMControlNet"):
        FanEncoder.from_state_dict(layout_state_dict(layout["songkey/hm_control"]["tensors"], device="meta"), "fan.st")


def test_fan_encoder_layout_loads_with_and_without_batchnorm_stats(fan_layout, tmp_path) -> None:
    sd = {k: rule_tensor(k, s) if s else torch.tensor(7) for k, s in fan_layout.items()}
    sd["model.bn5.running_mean"] = torch.full((68,), 0.25)
    save_file(sd, str(tmp_path / "diffusion_pytorch_model.safetensors"))
    enc = load_fan_encoder_file(tmp_path)
    assert set(enc.state_dict()) == set(fan_layout)
    assert torch.equal(enc.state_dict()["model.bn5.running_mean"], sd["model.bn5.running_mean"])
    assert enc.output_dim == 548

    params = {k: v for k, v in sd.items() if "running_" not in k and "num_batches" not in k}
    enc = FanEncoder.from_state_dict(params, "rule")
    state = enc.state_dict()
    assert torch.equal(state["model.bn5.running_mean"], torch.zeros(68))
    assert torch.equal(state["to_emo.2.running_var"], torch.ones(512))

    del params["mouth_embed.1.bias"]
    with pytest.raises(WeightFileError, match=r"pd\.st does not match the FanEncoder.*'mouth_embed\.1\.bias'"):
        FanEncoder.from_state_dict(params, "pd.st")
