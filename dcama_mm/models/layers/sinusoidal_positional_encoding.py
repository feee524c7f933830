# Copyright (c) dcama_mm contributors. All rights reserved.
import math
from typing import Dict, Tuple

import torch
import torch.nn as nn
from torch import Tensor


class SinusoidalPositionalEncoding(nn.Module):
    """Sinusoidal 1-D positional encoding followed by dropout.

    Adds ``pe[p, 2i] = sin(p / 10000^(2i/C))`` and
    ``pe[p, 2i+1] = cos(p / 10000^(2i/C))`` to every token, where ``p`` is the
    token's index in its own image's row-major flattened map, then applies
    dropout (DCAMA, Shi et al., ECCV 2022).

    Unlike the reference implementation, which stores a 10000-position table
    as a buffer, the table is computed for any length on first use and cached
    (not part of the state dict). It is computed in float32 with the same
    formula as the reference so that the values match it bit for bit.

    Args:
        channels (int): Number of channels ``C`` of the tokens (even).
        dropout (float): Dropout probability applied after the addition.
            Defaults to 0.5.
    """

    def __init__(self, channels: int, dropout: float = 0.5) -> None:
        super().__init__()
        if channels % 2 != 0:
            raise ValueError(
                f'SinusoidalPositionalEncoding needs an even number of '
                f'channels, got {channels}.')
        self.channels = channels
        self.dropout = nn.Dropout(p=dropout)
        self._cache: Dict[Tuple, Tensor] = {}

    def table(self, length: int, device: torch.device,
              dtype: torch.dtype) -> Tensor:
        """Return the ``[length, C]`` positional table.

        Args:
            length (int): Number of positions.
            device (torch.device): Device of the returned table.
            dtype (torch.dtype): Dtype of the returned table.

        Returns:
            Tensor: The table, shape ``[length, C]``.
        """
        key = (length, device, dtype)
        pe = self._cache.get(key)
        if pe is None:
            position = torch.arange(0, length).unsqueeze(1)
            div_term = torch.exp(
                torch.arange(0, self.channels, 2) *
                -(math.log(10000.0) / self.channels))
            pe = torch.zeros(length, self.channels)
            pe[:, 0::2] = torch.sin(position * div_term)
            pe[:, 1::2] = torch.cos(position * div_term)
            pe = pe.to(device=device, dtype=dtype)
            self._cache[key] = pe
        return pe

    def forward(self, tokens: Tensor) -> Tensor:
        """Add the encoding along dim -2 and apply dropout.

        Args:
            tokens (Tensor): Tokens ``[..., L, C]``; position ``p`` is the
                index along dim -2.

        Returns:
            Tensor: ``dropout(tokens + pe[:L])``, same shape.
        """
        pe = self.table(tokens.shape[-2], tokens.device, tokens.dtype)
        return self.dropout(tokens + pe)

    def extra_repr(self) -> str:
        return f'channels={self.channels}'
