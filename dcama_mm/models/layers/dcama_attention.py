# Copyright (c) dcama_mm contributors. All rights reserved.
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

ATTN_IMPLS = ('fused', 'naive')


class DCAMAAttention(nn.Module):
    """Cross query-support attention that aggregates support mask values.

    One DCAMA attention module (Shi et al., ECCV 2022): query and support
    tokens are projected by two separate ``Linear(C, C)`` layers and split
    into ``num_heads`` heads; each head's softmax attention weights
    (after dropout) average the support mask values; the output is the mean
    over heads, one value per query token. There is no value and no output
    projection.

    Args:
        embed_dims (int): Token channels ``C``; divisible by ``num_heads``.
        num_heads (int): Number of heads. Defaults to 8.
        attn_drop (float): Dropout probability on the attention weights
            (training only). Defaults to 0.5.
        attn_impl (str): ``'fused'`` uses
            :func:`torch.nn.functional.scaled_dot_product_attention`;
            ``'naive'`` computes scores, softmax and dropout explicitly with
            batched matrix products. Both give the same result up to float
            round-off. Defaults to ``'fused'``.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int = 8,
                 attn_drop: float = 0.5,
                 attn_impl: str = 'fused') -> None:
        super().__init__()
        if embed_dims % num_heads != 0:
            raise ValueError(
                f'embed_dims ({embed_dims}) must be divisible by num_heads '
                f'({num_heads}).')
        if attn_impl not in ATTN_IMPLS:
            raise ValueError(f'attn_impl must be one of {ATTN_IMPLS}, got '
                             f'{attn_impl!r}.')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.attn_drop_rate = attn_drop
        self.attn_impl = attn_impl
        self.query_proj = nn.Linear(embed_dims, embed_dims)
        self.key_proj = nn.Linear(embed_dims, embed_dims)
        self.attn_drop = nn.Dropout(p=attn_drop)

    def _split_heads(self, x: Tensor) -> Tensor:
        """``[B, L, C]`` -> ``[B, heads, L, C / heads]``."""
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
        q = self._split_heads(self.query_proj(query))
        k = self._split_heads(self.key_proj(key))
        # one value channel, shared by all heads: [B, heads, Lk, 1]
        v = value[:, None, :, None].expand(-1, self.num_heads, -1, 1)
        if self.attn_impl == 'fused':
            out = F.scaled_dot_product_attention(
                q,
                k,
                v.to(q.dtype),
                dropout_p=self.attn_drop_rate if self.training else 0.0)
        else:
            scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(
                self.head_dims)
            attn = self.attn_drop(scores.softmax(dim=-1))
            out = torch.matmul(attn, v.to(attn.dtype))
        return out.mean(dim=1).squeeze(-1)

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, '
                f'attn_impl={self.attn_impl!r}')
