"""Sinusoidal position tables: values inside the stored range come from the stored (loaded) buffer,
positions past it from the official formula, and the two join without touching the stored values."""
from __future__ import annotations

import torch

from hellomeme_core.knitting.reference_attention import ReferenceKnittingAttention
from hellomeme_core.nn.embeddings import SinusoidalPositionTable, interleaved_sinusoid_table
from tests.support.weight_rule import rule_tensor


def test_tail_rows_equal_the_full_table_bit_for_bit() -> None:
    full = interleaved_sinusoid_table(300, 64)
    assert torch.equal(interleaved_sinusoid_table(300, 64, start=128), full[:, 128:])
    assert interleaved_sinusoid_table(300, 64, start=128).shape == (1, 172, 64)


def test_extension_keeps_a_perturbed_stored_buffer() -> None:
    """A file whose table differs from the formula (e.g. rounded to fp16, or trained) keeps its values
    in range when a longer sequence extends the table."""
    table = SinusoidalPositionTable(32, 16)
    with torch.no_grad():
        table.pe.add_(0.25 * torch.randn(table.pe.shape, generator=torch.Generator().manual_seed(0)))
    stored = table.pe.clone()
    extended = table.table(40)
    assert extended.shape == (1, 40, 32)
    assert torch.equal(extended[:, :16], stored)
    assert torch.equal(extended[:, 16:], interleaved_sinusoid_table(40, 32)[:, 16:])
    assert torch.equal(table.table(10), stored[:, :10])
    assert torch.equal(table.pe, stored)  # the buffer itself is not replaced
    x = torch.zeros(2, 40, 32)
    assert torch.equal(table(x), extended.expand(2, -1, -1))


def test_extension_keeps_the_buffer_dtype() -> None:
    table = SinusoidalPositionTable(32, 16).half()
    with torch.no_grad():
        table.pe[0, 3] = 7.0
    extended = table.table(24)
    assert extended.dtype == torch.float16 and extended[0, 3].eq(7.0).all()
    assert torch.equal(extended[:, 16:], interleaved_sinusoid_table(24, 32)[:, 16:].half())


def test_reference_attention_past_its_table_uses_the_loaded_values() -> None:
    """At 72 columns (144 positions, past the 128 stored) a module with a perturbed file table gives
    what a module with that table extended by the formula gives, and differs from the unperturbed one."""
    template = ReferenceKnittingAttention(32)
    sd = {k: rule_tensor("t." + k, p.shape) for k, p in template.named_parameters()}
    # Random, not constant: the LayerNorm after the table would remove a constant shift.
    perturbed = interleaved_sinusoid_table(128, 32) + 0.5 * torch.randn(1, 128, 32, generator=torch.Generator().manual_seed(2))
    loaded = ReferenceKnittingAttention.from_state_dict({**sd, "pos_embed.pe": perturbed}, "perturbed pe")
    longer = torch.cat([perturbed, interleaved_sinusoid_table(144, 32, start=128)], dim=1)
    reference = ReferenceKnittingAttention.from_state_dict({**sd, "pos_embed.pe": longer}, "pe 144")
    plain = ReferenceKnittingAttention.from_state_dict(sd, "computed pe")
    g = torch.Generator().manual_seed(1)
    x, ref = torch.randn(2, 32, 3, 72, generator=g), torch.randn(1, 32, 3, 72, generator=g)
    with torch.no_grad():
        a, b, c = loaded(x, ref, 2), reference(x, ref, 2), plain(x, ref, 2)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert (a - c).abs().max() > 1e-2
