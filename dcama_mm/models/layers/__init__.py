# Copyright (c) dcama_mm contributors. All rights reserved.
from .dcama_attention import DCAMAAttention
from .onednn_linear import FastLinear, fast_linear, onednn_linear_available
from .sdpa_window_msa import (GatherShiftWindowMSA, SDPAWindowMSA,
                              use_sdpa_window_attention)
from .sinusoidal_positional_encoding import SinusoidalPositionalEncoding

__all__ = [
    'DCAMAAttention', 'FastLinear', 'GatherShiftWindowMSA', 'SDPAWindowMSA',
    'SinusoidalPositionalEncoding', 'fast_linear', 'onednn_linear_available',
    'use_sdpa_window_attention'
]
