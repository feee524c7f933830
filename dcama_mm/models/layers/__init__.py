# Copyright (c) dcama_mm contributors. All rights reserved.
from .dcama_attention import DCAMAAttention
from .sinusoidal_positional_encoding import SinusoidalPositionalEncoding

__all__ = ['DCAMAAttention', 'SinusoidalPositionalEncoding']
