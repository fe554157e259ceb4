"""Motion pads of the temporal stage: which frames need them and how a window's pair is assembled."""
from __future__ import annotations

import pytest
import torch

from hellomeme_core.denoiser.motion_pads import MotionPadBank, window_boundary_frames
from hellomeme_core.errors import ShapeMismatchError


def _record(frames: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"down_0": torch.randn(frames + 1, 3, 2, 2, generator=g), "up_3": torch.randn(frames + 1, 5, 4, 4, generator=g)}


def test_boundary_frames_of_overlapping_windows():
    assert window_boundary_frames([[0, 1, 2, 3], [2, 3, 4, 5], [3, 4, 5, 6]]) == [0, 2, 3, 5, 6]
    assert window_boundary_frames([[0, 1, 2]]) == [0, 2]
    assert window_boundary_frames([[4]]) == [4]


def test_pads_pair_rows_and_order():
    first, second = _record(2, 1), _record(1, 2)
    bank = MotionPadBank.from_record(first, [0, 5])
    bank = MotionPadBank.from_record(second, [9], bank)  # a later pass adds frames, keeps the zero-latent row
    assert sorted(bank.frames) == [0, 5, 9]
    pads = bank.pads(5, 9)
    assert pads["up_3"].shape == (2, 5, 2, 4, 4)
    # row 0 (uncond): the zero-latent row at both pad positions; row 1: frame 5 then frame 9
    assert torch.equal(pads["up_3"][0, :, 0], first["up_3"][0]) and torch.equal(pads["up_3"][0, :, 1], first["up_3"][0])
    assert torch.equal(pads["up_3"][1, :, 0], first["up_3"][2]) and torch.equal(pads["up_3"][1, :, 1], second["up_3"][1])
    per_row = sum(t[0].numel() * 4 for t in first.values())
    assert bank.nbytes() == 4 * per_row  # the shared zero-latent row + 3 frames


def test_missing_frame_and_row_count_are_clear_errors():
    bank = MotionPadBank.from_record(_record(2, 1), [0, 3])
    with pytest.raises(ShapeMismatchError, match=r"No motion pads for frame\(s\) \[7\]"):
        bank.pads(0, 7)
    with pytest.raises(ShapeMismatchError, match="expected 4"):
        MotionPadBank.from_record(_record(2, 1), [0, 1, 2])
