# Copyright (c) dcama_mm contributors. All rights reserved.
"""Mixed-precision training: the optimizer wrapper of ``--amp``.

mmengine's :class:`~mmengine.optim.AmpOptimWrapper` autocasts the forward
pass and scales the loss with ``torch.cuda.amp.GradScaler``; it refuses to
be built without a GPU (mmengine 0.10). bf16 has fp32's exponent range and
needs no loss scale, so on the CPU :class:`AutocastOptimWrapper` (autocast
only) takes its place. :func:`amp_optim_wrapper_cfg` turns a config's
``optim_wrapper`` into the mixed-precision one for a device.
"""
import contextlib
import copy
import logging
from typing import Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper
from mmseg.registry import OPTIM_WRAPPERS

from ...models.utils.precision import (AmpSetting, dtype_name,
                                       resolve_amp_dtype, warn_slow_precision)

_AMP_TYPES = ('AmpOptimWrapper', 'AutocastOptimWrapper')


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """:class:`~mmengine.optim.OptimWrapper` whose ``optim_context`` runs the
    forward pass under :func:`torch.autocast` on the model's device, with
    no loss scaling (for bfloat16, whose exponent range is fp32's).

    Args:
        optimizer (Optimizer): The optimizer.
        dtype (str | torch.dtype): ``'bfloat16'`` (default) or
            ``'float16'`` (only with care: without a loss scale small fp16
            gradients underflow).
        **kwargs: Other arguments of ``OptimWrapper`` (``clip_grad``,
            ``accumulative_counts``).
    """

    def __init__(self,
                 optimizer,
                 dtype: Union[str, torch.dtype] = 'bfloat16',
                 **kwargs) -> None:
        super().__init__(optimizer, **kwargs)
        if isinstance(dtype, str):
            dtype = resolve_amp_dtype(dtype, 'cpu',
                                      'AutocastOptimWrapper: dtype')
        if dtype not in (torch.bfloat16, torch.float16):
            raise ValueError('AutocastOptimWrapper: dtype must be bfloat16 '
                             f'or float16, got {dtype!r}.')
        self.cast_dtype = dtype

    @contextlib.contextmanager
    def optim_context(self, model: nn.Module):
        """The parent's context (gradient accumulation) and autocast."""
        param = next(model.parameters(), None)
        device_type = 'cpu' if param is None else param.device.type
        warn_slow_precision(device_type, self.cast_dtype)
        with super().optim_context(model), torch.autocast(
                device_type=device_type, dtype=self.cast_dtype):
            yield


def amp_optim_wrapper_cfg(wrapper_cfg: dict, amp: AmpSetting,
                          device_type: str) -> dict:
    """The mixed-precision form of an ``optim_wrapper`` config.

    Args:
        wrapper_cfg (dict): The config's ``optim_wrapper`` (not modified).
        amp (bool | str): The ``--amp`` setting (see
            :func:`~dcama_mm.models.utils.precision.resolve_amp_dtype`);
            False returns a copy unchanged.
        device_type (str): ``'cuda'`` or ``'cpu'``: where training runs.

    Returns:
        dict: ``AmpOptimWrapper`` (dynamic loss scale) on CUDA,
        :class:`AutocastOptimWrapper` (bf16) on the CPU.

    Raises:
        ValueError: fp16 on the CPU (no loss scaling there), or a wrapper
        type other than ``OptimWrapper``.
    """
    wrapper_cfg = copy.deepcopy(wrapper_cfg)
    dtype = resolve_amp_dtype(amp, device_type, '--amp-dtype')
    if dtype is None:
        return wrapper_cfg
    kind = wrapper_cfg.get('type', 'OptimWrapper')
    if kind in _AMP_TYPES:
        print_log(
            f'--amp: optim_wrapper.type is already {kind}; kept as it is.',
            logger='current',
            level=logging.WARNING)
        return wrapper_cfg
    if kind != 'OptimWrapper':
        raise ValueError(
            '--amp is only supported with optim_wrapper.type="OptimWrapper", '
            f'but got "{kind}".')
    if device_type == 'cuda':
        wrapper_cfg.update(
            type='AmpOptimWrapper',
            dtype=dtype_name(dtype),
            loss_scale='dynamic')
    elif dtype == torch.float16:
        raise ValueError(
            '--amp-dtype float16 cannot train on the CPU: fp16 training needs '
            "a loss scale, which mmengine's AmpOptimWrapper applies on GPUs "
            'only; use --amp-dtype bfloat16 (or auto) on the CPU.')
    else:
        wrapper_cfg.update(type='AutocastOptimWrapper', dtype='bfloat16')
    return wrapper_cfg
