"""The per-block denoiser logic: order of operations, what reaches the skip, what the reference pass records.

The whole-denoiser numbers are checked by the parity fixtures (``tests/parity``, ``unet_*`` cases); these
tests pin the conventions on small tensors so a regression names the rule it broke.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from hellomeme_core.denoiser import BlockProgram, Family, HMUNetModules, StepInputs, family_for_version
from hellomeme_core.denoiser.conventions import reference_pass_latents, rows_for_chunks
from hellomeme_core.errors import HelloMemeError, ShapeMismatchError


class AddReference(nn.Module):
    """Reference module of the official signature: returns hidden + 10 * mean(reference)."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(10.0))

    def forward(self, hidden, ref, num_frames):
        assert ref.shape[0] * num_frames == hidden.shape[0] or ref.shape[0] == hidden.shape[0]
        return hidden + self.scale * ref.mean()


class AddMotion(nn.Module):
    """Motion module of the official signature: returns hidden + 100 (+ pad mean when pads are given)."""

    def __init__(self):
        super().__init__()
        self.offset = nn.Parameter(torch.tensor(100.0))

    def forward(self, hidden, pads, temb, num_frames):
        return hidden + self.offset + (0 if pads is None else pads.mean())


def _modules(family: Family) -> HMUNetModules:
    m = HMUNetModules()
    if family is Family.HM:
        m.reference_modules_down = nn.ModuleList([AddReference() for _ in range(4)])
        m.reference_modules_mid = AddReference()
        m.reference_modules_up = nn.ModuleList([AddReference() for _ in range(3)])
    else:
        m.reference_modules_up = nn.ModuleList([AddReference() for _ in range(4)])
        m.motion_down = nn.ModuleList([AddMotion() for _ in range(4)])
        m.motion_up = nn.ModuleList([AddMotion() for _ in range(4)])
    return m


def test_versions_map_to_families():
    assert family_for_version("v1") is Family.HM and family_for_version("v2") is Family.HM
    assert all(family_for_version(v) is Family.HM3 for v in ("v3", "v4", "v5", "v5b", "v5c"))
    with pytest.raises(HelloMemeError, match="v6"):
        family_for_version("v6")


def test_hm_encoder_block_control_reaches_skip_reference_does_not():
    program = BlockProgram(Family.HM, _modules(Family.HM))
    h = torch.zeros(2, 3, 4, 4)
    step = StepInputs(num_frames=1, reference={"down_0": torch.ones(2, 3, 4, 4)},
                      control={"down_0": torch.full_like(h, 1.0), "down2_0": torch.full_like(h, 2.0)}, record={})
    skip, nxt = program.after_encoder_block(0, h, step)
    assert torch.all(skip == 3.0)  # both control additions, as the official in-place += puts them in the skip
    assert torch.all(nxt == 13.0)  # + reference module (10 * mean 1), only on the main path
    assert torch.all(step.record["down_0"] == 0.0)  # recorded before the control additions


def test_hm_block3_has_no_record_and_mid_is_recorded_after_reference_mid():
    program = BlockProgram(Family.HM, _modules(Family.HM))
    step = StepInputs(reference={"mid": torch.ones(1, 3, 2, 2)}, control={"up_v2_0": torch.ones(1, 3, 2, 2)}, record={})
    program.after_encoder_block(3, torch.zeros(1, 3, 2, 2), step)
    assert "down_3" not in step.record  # down block 3 has no cross attention: never cached
    out = program.before_decoder_block(0, torch.zeros(1, 3, 2, 2), step)
    assert torch.all(step.record["mid"] == 10.0) and torch.all(out == 11.0)


def test_hm3_order_record_control_reference_motion():
    program = BlockProgram(Family.HM3, _modules(Family.HM3))
    h = torch.zeros(2, 3, 4, 4)
    pads = {"up_1": torch.full((1, 3, 2, 4, 4), 5.0), "down_1": torch.full((1, 3, 2, 4, 4), 7.0)}
    step = StepInputs(num_frames=2, reference={"up_1": torch.ones(1, 3, 4, 4)},
                      control={"up3_1": torch.ones_like(h), "down3_1": torch.ones_like(h)},
                      motion_pads=pads, use_motion=True, temb=torch.zeros(2, 8), record={})
    out = program.before_decoder_block(1, h, step)
    assert torch.all(step.record["up_1"] == 0) and torch.all(out == 1 + 10 + 100 + 5)
    skip, nxt = program.after_encoder_block(1, h, step)
    assert torch.all(skip == 1) and torch.all(nxt == 1 + 100 + 7)
    step.use_motion = False  # unet_pre: motion modules present but off
    assert torch.all(program.before_decoder_block(1, h, step) == 11)


def test_control_shape_mismatch_is_a_clear_error():
    program = BlockProgram(Family.HM3)
    step = StepInputs(control={"down3_0": torch.zeros(2, 3, 8, 8)})
    with pytest.raises(ShapeMismatchError, match="down3_0"):
        program.after_encoder_block(0, torch.zeros(2, 3, 4, 4), step)


def test_cfg_conventions():
    latent = torch.randn(1, 4, 8, 8)
    pair = reference_pass_latents(latent)
    assert torch.all(pair[0] == 0) and torch.equal(pair[1:], latent)
    feats = {"up_0": torch.stack([torch.zeros(3), torch.ones(3)])}
    # ComfyUI chunks: 0 = positive (official row 1), 1 = negative (official row 0)
    rows = rows_for_chunks(feats, [0, 1])
    assert torch.equal(rows["up_0"][0], torch.ones(3)) and torch.equal(rows["up_0"][1], torch.zeros(3))
