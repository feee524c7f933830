# Copyright (c) dcama_mm contributors. All rights reserved.
"""Linear layers on oneDNN's fused CPU kernel, for inference.

oneDNN's ``mkldnn::_linear_pointwise`` runs fp32 CPU matrix products of the
backbone's shapes faster than PyTorch's default ``F.linear`` and can apply
the GELU of a transformer MLP in the same pass (a fast path of the speed
policy, :mod:`dcama_mm.models.utils.fast_paths`; figures in the README).

The oneDNN kernel has no autograd formula and no autocast rule, so it is
used only where it computes exactly what ``F.linear`` would: fp32 tensors on
the CPU, autocast off and no gradient needed. Anything else (training, a GPU,
bf16) takes ``F.linear`` (+ ``F.gelu``), so a module can use it
unconditionally.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks.wrappers import Linear as MMCVLinear
from torch import Tensor

from ...utils.checks import check_choice
from ..utils.fast_paths import FastPathMixin
# Linear classes whose forward is exactly F.linear (mmcv's only adds an
# empty-input case for old PyTorch versions)
CONVERTIBLE_LINEARS = (nn.Linear, MMCVLinear)
_ACTIVATIONS = (None, 'gelu')


def onednn_linear_available() -> bool:
    """Whether this PyTorch build has oneDNN's fused linear kernel."""
    return (torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, '_linear_pointwise'))


_ONEDNN = onednn_linear_available()


def use_onednn_for(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether inference on such tensors (no gradient) would run oneDNN."""
    return (_ONEDNN and torch.backends.mkldnn.enabled
            and device.type == 'cpu' and dtype == torch.float32)


def _needs_grad(*tensors: Optional[Tensor]) -> bool:
    return torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in tensors)


def use_onednn(x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> bool:
    """Whether :func:`fast_linear` would run oneDNN for these tensors."""
    return (_ONEDNN and torch.backends.mkldnn.enabled
            and x.device.type == 'cpu' and x.dtype == torch.float32
            and weight.dtype == torch.float32 and x.numel() > 0
            and (bias is None or bias.dtype == torch.float32)
            and not torch.is_autocast_enabled('cpu')
            and not _needs_grad(x, weight, bias))


def fast_linear(x: Tensor,
                weight: Tensor,
                bias: Optional[Tensor] = None,
                activation: Optional[str] = None) -> Tensor:
    """``activation(F.linear(x, weight, bias))``, on oneDNN where it applies.

    Args:
        x (Tensor): Input ``[..., in_features]``.
        weight (Tensor): ``[out_features, in_features]``.
        bias (Tensor, optional): ``[out_features]``. Defaults to None.
        activation (str, optional): None or ``'gelu'`` (exact, erf-based, as
            ``nn.GELU()``). Defaults to None.

    Returns:
        Tensor: ``[..., out_features]``, equal to the ``F.linear`` result up
        to float round-off.
    """
    check_choice('fast_linear', 'activation', activation, _ACTIVATIONS)
    if use_onednn(x, weight, bias):
        if activation == 'gelu':
            return torch.ops.mkldnn._linear_pointwise(x, weight, bias, 'gelu',
                                                      [], 'none')
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, 'none',
                                                  [], '')
    out = F.linear(x, weight, bias)
    return F.gelu(out) if activation == 'gelu' else out


class FastLinear(FastPathMixin, nn.Linear):
    """:class:`torch.nn.Linear` (optionally followed by a GELU) that runs
    :func:`fast_linear` as its fast path.

    With fast paths off it computes ``F.linear`` (+ ``F.gelu``), exactly
    what ``nn.Linear`` (+ ``nn.GELU()``) computes.

    Parameters, state-dict keys and initialisation are those of
    ``nn.Linear``; :meth:`convert_` turns an existing ``nn.Linear`` of a
    built model into one in place (its parameters kept).

    Args:
        in_features (int): Input channels.
        out_features (int): Output channels.
        bias (bool): Whether to learn a bias. Defaults to True.
        activation (str, optional): None or ``'gelu'``, applied after the
            product. Defaults to None.
        **kwargs: ``device`` / ``dtype`` of ``nn.Linear``.
    """

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 bias: bool = True,
                 activation: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(in_features, out_features, bias, **kwargs)
        self._set_activation(activation)

    def _set_activation(self, activation: Optional[str]) -> None:
        check_choice('FastLinear', 'activation', activation, _ACTIVATIONS)
        self.activation = activation

    @classmethod
    def convert_(cls,
                 linear: nn.Linear,
                 activation: Optional[str] = None) -> 'FastLinear':
        """Make ``linear`` (an ``nn.Linear``) a :class:`FastLinear` in place.

        Args:
            linear (nn.Linear): The layer (``nn.Linear`` or mmcv's
                ``Linear``); its parameters, hooks and position in the model
                are kept.
            activation (str, optional): None or ``'gelu'``: the activation
                the layer now applies itself (remove the separate one).
                Defaults to None.

        Returns:
            FastLinear: ``linear`` itself.
        """
        if type(linear) not in CONVERTIBLE_LINEARS + (cls, ):
            raise TypeError(
                'FastLinear.convert_ takes an nn.Linear or mmcv Linear, got '
                f'{type(linear).__module__}.{type(linear).__name__}.')
        linear.__class__ = cls
        linear._set_activation(activation)
        return linear

    def fast_paths_for(self, device: torch.device, dtype: torch.dtype,
                       training: bool) -> Tuple[str, ...]:
        if training or not use_onednn_for(device, dtype):
            return ()
        return ('oneDNN linear' +
                (' + GELU' if self.activation == 'gelu' else ''), )

    def forward(self, x: Tensor) -> Tensor:
        if self.fast_paths:
            return fast_linear(x, self.weight, self.bias, self.activation)
        out = F.linear(x, self.weight, self.bias)
        return F.gelu(out) if self.activation == 'gelu' else out

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, activation={self.activation!r}'
