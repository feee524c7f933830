# Copyright (c) dcama_mm contributors. All rights reserved.
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..utils.fast_paths import FastPathMixin
from .onednn_linear import fast_linear, use_onednn_for


class _MaskAggregation(torch.autograd.Function):
    """``dropout(softmax(q k^T)) v`` for a single value channel.

    Training-time fast path of :class:`DCAMAAttention`. Because the value
    has one channel, the gradient of the scores simplifies to
    ``dS = g * (P_drop * v^T - P * o)`` (``o`` the output, ``g`` its
    gradient): one element-wise pass instead of autograd's chain through the
    matrix product, dropout and softmax, and only the softmax weights and the
    dropout mask are kept for the backward pass. The dropout mask is drawn
    as ``rand >= p`` (a bool mask: the same Bernoulli distribution as
    :func:`torch.nn.functional.dropout`, faster, one byte per weight).
    """

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, value: Tensor,
                p: float) -> Tensor:
        # q: [B, H, Lq, d] (already scaled), k: [B, H, Lk, d], value [B, Lk]
        weights = torch.matmul(q, k.transpose(-2, -1)).softmax(dim=-1)
        v = value[:, None, :, None].to(weights.dtype)
        keep: Optional[Tensor] = None
        if p > 0:
            # a bool mask from uniform numbers: the same distribution as
            # bernoulli_, several times faster and 1 byte per weight
            keep = torch.rand_like(weights) >= p
            dropped = weights * keep
            out = torch.matmul(dropped.mul_(1 / (1 - p)), v)
            del dropped
        else:
            out = torch.matmul(weights, v)
        ctx.p = p
        ctx.save_for_backward(q, k, v, weights, out, keep)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> Tuple[Optional[Tensor], ...]:
        q, k, v, weights, out, keep = ctx.saved_tensors
        # dS_ij = g_i * (P_ij * m_ij * v_j - P_ij * o_i), m = keep / (1 - p)
        vt = v.transpose(-2, -1)  # [B, 1, 1, Lk]
        if keep is not None:
            grad_scores = torch.mul(keep, vt * (1 / (1 - ctx.p)))
        else:
            grad_scores = vt.expand_as(weights).clone()
        grad_scores.sub_(out).mul_(weights).mul_(grad_out)
        # The products in the dtype of q and k, as autocast ran the scores:
        # CUDA autocast runs softmax in fp32 (its fp32 op list), so there
        # the weights (and grad_scores) are fp32 while q, k are fp16/bf16,
        # and the backward runs outside autocast. A no-op in fp32.
        grad_scores = grad_scores.to(q.dtype)
        grad_q = grad_k = None
        if ctx.needs_input_grad[0]:
            grad_q = torch.matmul(grad_scores, k)
        if ctx.needs_input_grad[1]:
            grad_k = torch.matmul(grad_scores.transpose(-2, -1), q)
        return grad_q, grad_k, None, None


class DCAMAAttention(FastPathMixin, nn.Module):
    """Cross query-support attention that aggregates support mask values.

    One DCAMA attention module (see ``docs/model.md``): query and support
    tokens are projected by two separate ``Linear(C, C)`` layers and split
    into ``num_heads`` heads; each head's softmax attention weights (after
    dropout) average the support mask values; the output is the mean over
    heads, one value per query token. There is no value and no output
    projection.

    The straightforward computation writes the reference's formulation out:
    scores, division by ``sqrt(d_k)``, softmax, dropout and product. Fast
    paths (:mod:`dcama_mm.models.utils.fast_paths`), equal to it up to float
    round-off:

    - inference: the value (one channel) is zero-padded to the head width so
      that :func:`~torch.nn.functional.scaled_dot_product_attention` runs
      its flash kernel (on the CPU too), which applies the scale itself and
      never stores the ``[Lq, Lk]`` scores; the projections run on oneDNN's
      linear kernel where it applies (fp32 CPU,
      :func:`~dcama_mm.models.layers.fast_linear`);
    - training: the scale folded into the query projection and
      :class:`_MaskAggregation`, a one-pass backward of the scores, with the
      dropout mask drawn as ``rand >= p`` (the same distribution as
      :func:`torch.nn.functional.dropout`, not the same draw).

    Args:
        embed_dims (int): Token channels ``C``; divisible by ``num_heads``.
        num_heads (int): Number of heads. Defaults to 8.
        attn_drop (float): Dropout probability on the attention weights
            (training only). Defaults to 0.5.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int = 8,
                 attn_drop: float = 0.5) -> None:
        super().__init__()
        if embed_dims % num_heads != 0:
            raise ValueError(
                f'embed_dims ({embed_dims}) must be divisible by num_heads '
                f'({num_heads}).')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.attn_drop_rate = attn_drop
        self.query_proj = nn.Linear(embed_dims, embed_dims)
        self.key_proj = nn.Linear(embed_dims, embed_dims)
        self.attn_drop = nn.Dropout(p=attn_drop)

    def fast_paths_for(self, device: torch.device, dtype: torch.dtype,
                       training: bool) -> Tuple[str, ...]:
        if training:
            return ('one-pass attention backward', )
        paths = ('flash attention with a zero-padded value', )
        if use_onednn_for(device, dtype):
            paths += ('oneDNN projections', )
        return paths

    def _split_heads(self, x: Tensor) -> Tensor:
        """``[B, L, C]`` -> ``[B, heads, L, C / heads]`` (a view)."""
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads,
                      self.head_dims).transpose(1, 2)

    def forward(self, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
        """Aggregate support mask values for every query token.

        Args:
            query (Tensor): Query tokens ``[B, Lq, C]``.
            key (Tensor): Support tokens ``[B, Lk, C]``.
            value (Tensor): Support mask values ``[B, Lk]``.

        Returns:
            Tensor: Head-averaged aggregated values ``[B, Lq]``.
        """
        if self.fast_paths:
            return self._forward_fast(query, key, value)
        q = self._split_heads(self.query_proj(query))
        k = self._split_heads(self.key_proj(key))
        # one value channel, shared by all heads: [B, heads, Lk, 1]
        v = value[:, None, :, None].expand(-1, self.num_heads, -1, 1)
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(
            self.head_dims)
        attn = self.attn_drop(scores.softmax(dim=-1))
        out = torch.matmul(attn, v.to(attn.dtype))
        return out.mean(dim=1).squeeze(-1)

    def _forward_fast(self, query: Tensor, key: Tensor,
                      value: Tensor) -> Tensor:
        scale = 1 / math.sqrt(self.head_dims)
        k = self._split_heads(
            fast_linear(key, self.key_proj.weight, self.key_proj.bias))
        dropout = self.attn_drop_rate if self.training else 0.0
        needs_grad = torch.is_grad_enabled() and (
            query.requires_grad or k.requires_grad
            or self.query_proj.weight.requires_grad
            or self.query_proj.bias.requires_grad)
        if needs_grad or dropout > 0:
            # the scale folded into the query projection
            q = self._split_heads(
                fast_linear(query, self.query_proj.weight * scale,
                            self.query_proj.bias * scale))
            out = _MaskAggregation.apply(q, k, value, dropout)
            return out.mean(dim=1).squeeze(-1)
        q = self._split_heads(
            fast_linear(query, self.query_proj.weight, self.query_proj.bias))
        # zero-pad the value to the head width: the flash kernel needs equal
        # widths and never materialises the [Lq, Lk] scores (it applies the
        # scale to the scores itself)
        batch, _, length, width = k.shape
        v = q.new_zeros(batch, 1, length, width)
        v[..., 0] = value.to(q.dtype)[:, None]
        out = F.scaled_dot_product_attention(
            q, k, v.expand(-1, self.num_heads, -1, -1), scale=scale)
        return out[..., 0].mean(dim=1)

    def extra_repr(self) -> str:
        return f'embed_dims={self.embed_dims}, num_heads={self.num_heads}'
