"""Multi-head attention and feed-forward layers, key-compatible with the diffusers layers the official
weights were saved from (``to_q``/``to_k``/``to_v``/``to_out.0``; ``net.0.proj``/``net.2``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Scaled dot-product attention over ``(batch, tokens, channels)`` sequences.

    Self-attention when ``context`` is None, else cross-attention on ``context``
    (``cross_attention_dim`` channels). Computed with ``F.scaled_dot_product_attention``.
    """

    def __init__(
        self,
        query_dim: int,
        heads: int = 8,
        dim_head: int = 64,
        cross_attention_dim: int | None = None,
        bias: bool = False,
        out_bias: bool = True,
    ):
        super().__init__()
        inner = heads * dim_head
        context_dim = cross_attention_dim if cross_attention_dim is not None else query_dim
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=bias)
        self.to_k = nn.Linear(context_dim, inner, bias=bias)
        self.to_v = nn.Linear(context_dim, inner, bias=bias)
        # Index 1 is the (inactive) dropout of the original layout; kept so ``to_out.0.*`` keys match.
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim, bias=out_bias), nn.Dropout(0.0)])

    def forward(self, hidden_states: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = hidden_states if context is None else context
        b, n, _ = hidden_states.shape
        q = self.to_q(hidden_states)
        k = self.to_k(context)
        v = self.to_v(context)
        q, k, v = (t.view(t.shape[0], t.shape[1], self.heads, -1).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(b, n, -1)
        return self.to_out[0](out)


class GEGLU(nn.Module):
    """Gated GELU projection (``proj`` produces value and gate halves)."""

    def __init__(self, dim_in: int, dim_out: int, bias: bool = True):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class GELUProjection(nn.Module):
    """Linear projection then GELU (exact, or tanh-approximate)."""

    def __init__(self, dim_in: int, dim_out: int, approximate: str = "none", bias: bool = True):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out, bias=bias)
        self.approximate = approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.proj(x), approximate=self.approximate)


class FeedForward(nn.Module):
    """``net.0`` activation projection, ``net.1`` dropout (inactive), ``net.2`` output linear.

    Position-wise, so long inputs run in chunks of ``chunk_tokens`` tokens: the inner activation
    (2-8x the channels) is what dominates peak memory in the temporal stage at full resolution.
    """

    chunk_tokens = 8192

    def __init__(
        self,
        dim: int,
        dim_out: int | None = None,
        mult: int = 4,
        activation_fn: str = "geglu",
        inner_dim: int | None = None,
        bias: bool = True,
    ):
        super().__init__()
        inner = inner_dim if inner_dim is not None else int(dim * mult)
        if activation_fn == "geglu":
            act: nn.Module = GEGLU(dim, inner, bias=bias)
        elif activation_fn == "gelu":
            act = GELUProjection(dim, inner, bias=bias)
        elif activation_fn == "gelu-approximate":
            act = GELUProjection(dim, inner, approximate="tanh", bias=bias)
        else:
            raise ValueError(f"unsupported feed-forward activation {activation_fn!r}")
        self.net = nn.ModuleList([act, nn.Dropout(0.0), nn.Linear(inner, dim_out or dim, bias=bias)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        if flat.shape[0] <= self.chunk_tokens:
            return self.net[2](self.net[0](x))
        out = torch.cat([self.net[2](self.net[0](part)) for part in flat.split(self.chunk_tokens)])
        return out.reshape(*x.shape[:-1], out.shape[-1])
