"""Every official adapter layout loads strictly into our adapters; wrong files give clear errors."""
from __future__ import annotations

import re

import pytest
import torch

from hellomeme_core import adapters as A
from hellomeme_core.errors import WeightFileError
from hellomeme_core.nn.embeddings import interleaved_sinusoid_table
from hellomeme_core.temporal.animatediff import AnimateDiffMotionAdapter
from tests.support.weight_rule import rule_tensor

EXPECTED_CLASS = {
    "songkey/hm_reference": A.HMReferenceAdapter,
    "songkey/hm2_reference": A.HMReferenceAdapter,
    "songkey/hm3_reference": A.HM3ReferenceAdapter,
    "songkey/hm4_reference": A.HM3ReferenceAdapter,
    "songkey/hm5_reference": A.HM5ReferenceAdapter,
    "songkey/hm5b_reference": A.HM5bReferenceAdapter,
    "songkey/hm5c_reference": A.HM5bReferenceAdapter,
    "songkey/hm3_motion": A.HM3MotionAdapter,
    "songkey/hm4_motion": A.HM3MotionAdapter,
    "songkey/hm5_motion": A.HM5MotionAdapter,
    "songkey/hm_animatediff_frame12": AnimateDiffMotionAdapter,
    "songkey/hm2_animatediff_frame12": AnimateDiffMotionAdapter,
    "songkey/hm3_animatediff": AnimateDiffMotionAdapter,
    "songkey/hm4_animatediff": AnimateDiffMotionAdapter,
}


def layout_state_dict(shapes: dict[str, list[int]], with_pe: bool = True) -> dict[str, torch.Tensor]:
    """Zeros for every parameter (cheap for 450M-parameter files), real tables for ``pe`` buffers,
    and rule tensors for the first and last parameter so the test sees values arrive."""
    sd = {}
    for k, shape in shapes.items():
        if k.endswith(".pe"):
            if with_pe:
                sd[k] = interleaved_sinusoid_table(shape[1], shape[2])
        else:
            sd[k] = torch.zeros(shape)
    params = [k for k in shapes if not k.endswith(".pe")]
    for k in (params[0], params[-1]):
        sd[k] = rule_tensor(k, shapes[k])
    return sd


@pytest.mark.parametrize("repo", sorted(EXPECTED_CLASS))
def test_official_layout_loads_strict(layout: dict, repo: str) -> None:
    shapes = layout[repo]["tensors"]
    sd = layout_state_dict(shapes)
    adapter = A.load_adapter(sd, repo)
    assert type(adapter) is EXPECTED_CLASS[repo]
    own = adapter.state_dict()
    assert {k: list(v.shape) for k, v in own.items()} == shapes
    assert sum(p.numel() for p in adapter.parameters()) == layout[repo]["num_params"]
    for k in (next(iter(sd)), list(sd)[-1]):
        torch.testing.assert_close(own[k], sd[k], rtol=0, atol=0)
    assert all(p.dtype == torch.float32 and not p.is_meta for p in own.values())
    assert not adapter.training


@pytest.mark.parametrize("repo", ["songkey/hm3_motion", "songkey/hm5b_reference", "songkey/hm_reference"])
def test_rule_weights_without_pe_match_file_tables(layout: dict, repo: str) -> None:
    """Files without ``pe`` buffers (rule weights) get tables equal to the official ones."""
    shapes = layout[repo]["tensors"]
    with_pe = A.load_adapter(layout_state_dict(shapes, with_pe=True), repo).state_dict()
    without = A.load_adapter(layout_state_dict(shapes, with_pe=False), repo).state_dict()
    for k in shapes:
        if k.endswith(".pe"):
            torch.testing.assert_close(with_pe[k], without[k], rtol=0, atol=0)


def test_reference_module_placement(layout: dict) -> None:
    v1 = A.load_adapter(layout_state_dict(layout["songkey/hm_reference"]["tensors"]), "hm_reference")
    assert v1.module_for("up", 0) is None
    assert v1.module_for("up", 1) is v1.reference_modules_up[0]
    assert v1.module_for("up", 3) is v1.reference_modules_up[2]
    assert v1.module_for("down", 2) is v1.reference_modules_down[2]
    assert v1.module_for("down", 3) is None  # never cached by the reference pass
    assert v1.module_for("mid") is v1.reference_modules_mid
    assert A.ReferenceAdapter.reference_key("up", 1) == "up_1" and A.ReferenceAdapter.reference_key("mid") == "mid"
    v3 = A.load_adapter(layout_state_dict(layout["songkey/hm3_reference"]["tensors"]), "hm3_reference")
    assert v3.module_for("up", 0) is v3.reference_modules_up[0] and v3.module_for("down", 0) is None
    assert v3.module_for("up", 3).in_channels == 640
    motion = A.load_adapter(layout_state_dict(layout["songkey/hm4_motion"]["tensors"]), "hm4_motion")
    assert motion.module_for("down", 0).in_channels == 320 and motion.module_for("up", 3).in_channels == 640
    assert motion.module_for("mid", 0) is None
    assert motion.max_frames_official == 152


def test_hm2_without_down_and_mid_loads(layout: dict) -> None:
    shapes = {k: v for k, v in layout["songkey/hm2_reference"]["tensors"].items() if k.startswith("reference_modules_up.")}
    adapter = A.load_adapter(layout_state_dict(shapes), "hm2 up only")
    assert type(adapter) is A.HMReferenceAdapter
    assert adapter.module_for("down", 0) is None and adapter.module_for("mid") is None
    assert adapter.module_for("up", 1) is adapter.reference_modules_up[0]


def assert_mentions(exc: Exception, *parts: str) -> None:
    for part in parts:
        assert part in str(exc), f"{part!r} not in message: {exc}"


def small_layout(layout: dict, repo: str, prefixes: tuple[str, ...]) -> dict[str, list[int]]:
    return {k: v for k, v in layout[repo]["tensors"].items() if k.startswith(prefixes)}


def test_missing_tensor_is_named(layout: dict) -> None:
    sd = layout_state_dict(layout["songkey/hm3_reference"]["tensors"])
    del sd["reference_modules_up.2.attn2.to_v.weight"]
    with pytest.raises(WeightFileError) as err:
        A.load_adapter(sd, "hm3_reference.safetensors")
    assert_mentions(err.value, "hm3_reference.safetensors", "1 tensor(s) missing", "'reference_modules_up.2.attn2.to_v.weight'", "HM3ReferenceAdapter (v3/v4")


def test_unexpected_tensor_is_named(layout: dict) -> None:
    sd = layout_state_dict(layout["songkey/hm5_motion"]["tensors"])
    sd["motion_up.1.attn1.extra.weight"] = torch.zeros(3)
    with pytest.raises(WeightFileError) as err:
        A.load_adapter(sd, "motion.safetensors")
    assert_mentions(err.value, "motion.safetensors", "1 unexpected tensor", "'motion_up.1.attn1.extra.weight'", "HM5MotionAdapter (v5")


def test_mismatched_shape_is_named(layout: dict) -> None:
    sd = layout_state_dict(layout["songkey/hm5b_reference"]["tensors"])
    sd["reference_modules_up.1.attn.proj.bias"] = torch.zeros(640)
    with pytest.raises(WeightFileError, match=r"ref\.safetensors.*'reference_modules_up\.1\.attn\.proj\.bias'.*\(640,\).*\(1280,\)"):
        A.load_adapter(sd, "ref.safetensors")


def test_truncated_file_reports_missing_module(layout: dict) -> None:
    shapes = layout["songkey/hm_animatediff_frame12"]["tensors"]
    kept = {k: v for k, v in shapes.items() if not k.startswith("up_blocks.3.motion_modules.2.transformer_blocks")}
    with pytest.raises(WeightFileError) as err:
        A.load_adapter(layout_state_dict(kept), "truncated.safetensors")
    assert_mentions(err.value, "truncated.safetensors", "missing", "up_blocks.3.motion_modules.2.transformer_blocks.0", "AnimateDiff MotionAdapter")


def test_wrong_class_names_the_version_it_looks_like(layout: dict) -> None:
    sd = layout_state_dict(layout["songkey/hm5_reference"]["tensors"])
    with pytest.raises(WeightFileError, match=r"v5\.safetensors.*HM3ReferenceAdapter.*look like HM5ReferenceAdapter \(v5"):
        A.HM3ReferenceAdapter.from_state_dict(sd, "v5.safetensors")


def test_mixed_versions_rejected(layout: dict) -> None:
    sd = layout_state_dict(layout["songkey/hm3_reference"]["tensors"])
    sd.update({k: v for k, v in layout_state_dict(layout["songkey/hm5b_reference"]["tensors"]).items() if k.startswith("reference_modules_up.0.")})
    for k in [k for k in sd if k.startswith("reference_modules_up.0.") and not re.search(r"\.attn(_ref)?\.", k)]:
        del sd[k]
    with pytest.raises(WeightFileError, match=r"mixed.*reference_modules_up\.0 has the layout of ReferenceSTKModule"):
        A.HM3ReferenceAdapter.from_state_dict(sd, "mixed")


def test_non_adapter_file_rejected(layout: dict) -> None:
    sd = layout_state_dict(small_layout(layout, "songkey/hm4_control_proj", ("",)))
    with pytest.raises(WeightFileError, match=r"control\.safetensors is not a HelloMeme reference/motion adapter"):
        A.load_adapter(sd, "control.safetensors")


def test_expanded_placeholders_get_their_own_memory(layout: dict) -> None:
    """Zero-stride placeholders (shape-only loading) become real parameters that can be written."""
    shapes = layout["songkey/hm3_reference"]["tensors"]
    adapter = A.load_adapter({k: torch.zeros(()).expand(s) for k, s in shapes.items() if not k.endswith(".pe")}, "shapes")
    own = adapter.state_dict()
    with torch.no_grad():
        own["reference_modules_up.0.norm.weight"].fill_(2.0)
    assert own["reference_modules_up.0.norm.bias"].abs().max() == 0
    assert own["reference_modules_up.1.norm.weight"].abs().max() == 0


# --------------------------------------------------------------- module sets against the official layout
def placeholders(layout: dict, repo: str, drop: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Zero-stride stand-ins for every tensor of ``repo`` (no memory), without keys under ``drop``."""
    return {k: torch.zeros(()).expand(s) for k, s in layout[repo]["tensors"].items() if not k.startswith(drop)}


def test_official_channel_sequences_come_from_the_layout(layout: dict) -> None:
    """The sets the adapters check are those of the official files (not a table typed into the code)."""
    (v12,) = [ms for ms in A.HMReferenceAdapter.module_sets() if "up modules only" not in ms.label]
    assert v12.summary() == ("reference_modules_down.0-3 (320/640/1280/1280 ch), reference_modules_mid (1280 ch), "
                             "reference_modules_up.0-2 (1280/1280/640 ch)")
    for cls in (A.HM3ReferenceAdapter, A.HM5ReferenceAdapter, A.HM5bReferenceAdapter):
        (ms,) = cls.module_sets()
        assert ms.summary() == "reference_modules_up.0-3 (1280/1280/1280/640 ch)", cls
    for cls in (A.HM3MotionAdapter, A.HM5MotionAdapter):
        (ms,) = cls.module_sets()
        assert ms.summary() == "motion_down.0-3 (320/640/1280/1280 ch), motion_up.0-3 (1280/1280/1280/640 ch)", cls
    (ad,) = A.official_module_sets("MotionAdapter")
    assert len(ad.slots) == 2 * 4 + 1 + 3 * 4 and ad.slots[0].name == "mid_block.motion_modules.0"
    # The same numbers as the layout file's own tensors.
    for slot in v12.slots:
        key = f"{slot.name}.{slot.channel_key}"
        assert layout["songkey/hm_reference"]["tensors"][key][slot.axis] == slot.channels


TRUNCATED = [
    # repo, dropped prefix, missing submodule, first missing tensor named, class named
    ("songkey/hm3_reference", "reference_modules_up.3.", "reference_modules_up.3", "reference_modules_up.3.attn1.to_q.weight",
     "HM3ReferenceAdapter (v3/v4"),
    ("songkey/hm5_reference", "reference_modules_up.3.", "reference_modules_up.3", "reference_modules_up.3.time_emb_proj.weight",
     "HM5ReferenceAdapter (v5"),
    ("songkey/hm5b_reference", "reference_modules_up.3.", "reference_modules_up.3", "reference_modules_up.3.attn_ref.conv_in.weight",
     "HM5bReferenceAdapter (v5b/v5c"),
    ("songkey/hm_reference", "reference_modules_mid.", "reference_modules_mid", "reference_modules_mid.attn1.to_q.weight",
     "HMReferenceAdapter (v1/v2"),
    ("songkey/hm3_motion", "motion_up.3.", "motion_up.3", "motion_up.3.time_emb_proj.weight", "HM3MotionAdapter (v3/v4"),
    ("songkey/hm5_motion", "motion_down.3.", "motion_down.3", "motion_down.3.attn1.norm.weight", "HM5MotionAdapter (v5"),
    ("songkey/hm3_animatediff", "mid_block.", "mid_block.motion_modules.0", "mid_block.motion_modules.0.norm.weight",
     "AnimateDiff MotionAdapter"),
    ("songkey/hm_animatediff_frame12", "up_blocks.3.", "up_blocks.3.motion_modules.0", "up_blocks.3.motion_modules.0.norm.weight",
     "AnimateDiff MotionAdapter"),
]


@pytest.mark.parametrize("repo, drop, slot, first_missing, what", TRUNCATED, ids=[f"{t[0].split('/')[1]}-{t[2]}" for t in TRUNCATED])
def test_file_missing_whole_modules_is_refused(layout: dict, repo: str, drop: str, slot: str, first_missing: str, what: str) -> None:
    source = f"/models/hellomeme/{repo.split('/')[1]}.safetensors"
    with pytest.raises(WeightFileError) as err:
        A.load_adapter(placeholders(layout, repo, (drop,)), source)
    assert_mentions(err.value, source, what, f"submodule {slot!r} is missing", f"first missing tensor {first_missing!r}",
                    "It holds ", "the official files (")
    # What the file resembles: the official file it was cut from (or one with the identical layout).
    closest = str(err.value).split("Closest official file: ")[1].split(" ")[0]
    assert layout[closest]["tensors"] == layout[repo]["tensors"]


def test_truncated_v3_file_is_not_taken_for_v1_v2(layout: dict) -> None:
    """Three up modules at 1280/1280/1280 are a v3/v4 file missing its last module, not the v1/v2 layout
    (whose three up modules are 1280/1280/640)."""
    sd = placeholders(layout, "songkey/hm3_reference", ("reference_modules_up.3.",))
    assert A.adapter_class(sd) is A.HM3ReferenceAdapter
    with pytest.raises(WeightFileError) as err:
        A.load_adapter(sd, "hm3_reference.safetensors")
    assert "HM3ReferenceAdapter (v3/v4" in str(err.value) and "HMReferenceAdapter (v1/v2" not in str(err.value)
    assert_mentions(err.value, "reference_modules_up.0-2 (1280/1280/1280 ch)", "reference_modules_up.0-3 (1280/1280/1280/640 ch)")
    # The genuine v1/v2 up modules alone are still the v1/v2 layout.
    up_only = placeholders(layout, "songkey/hm2_reference", ("reference_modules_down.", "reference_modules_mid."))
    assert A.adapter_class(up_only) is A.HMReferenceAdapter


def _renamed(sd: dict, src: str, dst: str) -> dict:
    return {dst + k[len(src):]: v for k, v in sd.items() if k.startswith(src)}


def test_module_at_wrong_channels_is_refused(layout: dict) -> None:
    # v3: the last up module replaced by a 1280-channel one (a consistent module of the wrong width).
    sd = placeholders(layout, "songkey/hm3_reference", ("reference_modules_up.3.",))
    sd.update(_renamed(sd, "reference_modules_up.2.", "reference_modules_up.3."))
    with pytest.raises(WeightFileError) as err:
        A.load_adapter(sd, "wide.safetensors")
    assert_mentions(err.value, "wide.safetensors", "submodule 'reference_modules_up.3' has 1280 channels",
                    "'reference_modules_up.3.attn1.to_q.weight' has shape (1280, 1280)", "the official file has 640")
    # v1/v2: the first down module at 640 instead of 320.
    sd = placeholders(layout, "songkey/hm_reference", ("reference_modules_down.0.",))
    sd.update(_renamed(sd, "reference_modules_down.1.", "reference_modules_down.0."))
    with pytest.raises(WeightFileError, match=r"'reference_modules_down\.0' has 640 channels.*official file has 320"):
        A.load_adapter(sd, "v1.safetensors")
    # AnimateDiff: a down module at 640 where the file has 320.
    sd = placeholders(layout, "songkey/hm4_animatediff", ("down_blocks.0.motion_modules.1.",))
    sd.update(_renamed(sd, "down_blocks.1.motion_modules.1.", "down_blocks.0.motion_modules.1."))
    with pytest.raises(WeightFileError, match=r"ad\.st .*'down_blocks\.0\.motion_modules\.1' has 640 channels.*has 320"):
        A.load_adapter(sd, "ad.st")


def test_extra_module_is_refused(layout: dict) -> None:
    sd = placeholders(layout, "songkey/hm5_motion")
    sd.update(_renamed(sd, "motion_up.3.", "motion_up.4."))
    with pytest.raises(WeightFileError, match=r"m\.st is not a complete HM5MotionAdapter .*submodule 'motion_up\.4' is not part of that layout.*plus 54 tensor"):
        A.load_adapter(sd, "m.st")


def test_load_adapter_keeps_a_requested_dtype(layout: dict) -> None:
    shapes = layout["songkey/hm5_reference"]["tensors"]
    sd = {k: torch.zeros(s, dtype=torch.float16) for k, s in shapes.items()}
    adapter = A.load_adapter(sd, "fp16", dtype=torch.float16)
    own = adapter.state_dict()
    assert all(own[k].dtype == torch.float16 and own[k].data_ptr() == sd[k].data_ptr() for k in shapes)
