"""FeedForward runs long inputs in token chunks: same values, bounded inner activation."""
from __future__ import annotations

import pytest
import torch

from hellomeme_core.nn.attention import FeedForward


@pytest.mark.parametrize("activation", ["geglu", "gelu"])
def test_chunked_feedforward_equals_one_pass(monkeypatch, activation):
    torch.manual_seed(0)
    ff = FeedForward(32, activation_fn=activation, inner_dim=64).eval()
    x = torch.randn(3, 50, 32)
    with torch.no_grad():
        whole = ff(x)
        monkeypatch.setattr(FeedForward, "chunk_tokens", 16)  # 150 tokens -> 10 chunks, the last one short
        chunked = ff(x)
    assert chunked.shape == whole.shape == (3, 50, 32)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-6)
