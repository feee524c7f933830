"""Independent re-implementations of the backbones the reference DCAMA uses.

They are written in the layouts (and with the key names) of the official
releases, so that tests can check dcama_mm's mmpretrain-based backbones and
checkpoint converters against them:

- :mod:`tests.reference.official_swin`: the official Swin Transformer at a
  fixed input resolution, returning every block's output before the stage's
  patch merging.
- :mod:`tests.reference.torchvision_resnet`: torchvision's ResNet (optionally
  narrowed for fast tests) and the reference's per-bottleneck feature
  extraction (after the residual addition, before the final ReLU).
"""
from typing import Optional

import torch
import torch.nn as nn

__all__ = ['randomize_parameters']


def randomize_parameters(module: nn.Module,
                         seed: Optional[int] = 0,
                         scale: float = 0.1) -> nn.Module:
    """Give normalisation layers, biases and bias tables non-trivial values.

    Default initialisations leave norm weights at 1, biases, running means
    and relative position bias tables at 0: tests comparing two
    implementations would then not notice when one of them uses such a
    parameter wrongly. This perturbs them (in place) with a seeded generator.

    Args:
        module (nn.Module): The module to perturb in place.
        seed (int, optional): Seed of the local generator. Defaults to 0.
        scale (float): Standard deviation of the perturbations.
            Defaults to 0.1.

    Returns:
        nn.Module: ``module`` itself.
    """
    generator = torch.Generator().manual_seed(seed)

    def noise(t: torch.Tensor) -> torch.Tensor:
        return torch.randn(t.shape, generator=generator) * scale

    with torch.no_grad():
        for name, param in module.named_parameters():
            leaf = name.rsplit('.', 1)[-1]
            if leaf == 'bias' or 'relative_position_bias_table' in name:
                param.copy_(noise(param))
            elif param.dim() == 1:  # norm weights
                param.copy_(1 + noise(param))
        for name, buf in module.named_buffers():
            if name.endswith('running_mean'):
                buf.copy_(noise(buf))
            elif name.endswith('running_var'):
                buf.copy_(1 + noise(buf).abs())
    return module
