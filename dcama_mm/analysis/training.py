# Copyright (c) dcama_mm contributors. All rights reserved.
"""One training step as the runner takes it, for timing outside a Runner."""
import contextlib
import copy
from typing import Callable, ContextManager, Dict

import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.optim import OptimWrapper, build_optim_wrapper
from torch import Tensor

from ..engine.optimizers import amp_optim_wrapper_cfg
from ..models.utils.precision import (AmpSetting, autocast_for,
                                      resolve_amp_dtype)

#: The optimizer wrapper of a config that has none (a model-only config
#: such as ``configs/_base_/models/dcama_r50.py``): the reference DCAMA's
#: SGD (lr 1e-3, momentum 0.9, Nesterov, weight decay 1e-4) over the
#: trainable parameters, as the schedules of ``configs/_base_/schedules``
#: define it.
REFERENCE_OPTIM_WRAPPER = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='SGD', lr=1e-3, momentum=0.9, nesterov=True, weight_decay=1e-4),
    constructor='FewShotOptimWrapperConstructor')

_PLAIN_WRAPPERS = ('OptimWrapper', 'AmpOptimWrapper', 'AutocastOptimWrapper')


def autocast_context(device: torch.device, amp: AmpSetting) -> ContextManager:
    """Autocast of an ``amp`` setting (False, True/``'auto'``,
    ``'bfloat16'``, ``'float16'``; see
    :func:`~dcama_mm.models.utils.precision.resolve_amp_dtype`) on
    ``device``, or nothing when ``amp`` is falsy."""
    return autocast_for(device, resolve_amp_dtype(amp, device, '--amp-dtype'))


def benchmark_optim_wrapper(cfg: Config,
                            model: nn.Module,
                            amp: AmpSetting = None) -> OptimWrapper:
    """The optimizer wrapper a training run of ``cfg`` would use.

    Built by mmengine's :func:`~mmengine.optim.build_optim_wrapper` from
    ``cfg.optim_wrapper`` (its optimizer, constructor, ``paramwise_cfg``,
    ``clip_grad``, ...), or from :data:`REFERENCE_OPTIM_WRAPPER` when the
    config has none. The precision comes from ``amp``, as ``tools/train.py
    --amp`` sets it (:func:`~dcama_mm.engine.optimizers.
    amp_optim_wrapper_cfg`): ``AmpOptimWrapper`` with a dynamic loss scale
    on a GPU, ``AutocastOptimWrapper`` (bf16) on the CPU; without ``amp`` a
    mixed-precision wrapper of the config becomes a plain ``OptimWrapper``.
    Other wrapper types are kept.

    Args:
        cfg (Config): The config (not modified).
        model (nn.Module): The model to optimize.
        amp (bool | str, optional): The ``--amp`` setting. Defaults to None
            (fp32).

    Returns:
        OptimWrapper: The wrapper, with the trainable parameters.

    Raises:
        ValueError: For fp16 on a model that is not on a GPU (no loss
            scaling there).
    """
    wrapper_cfg = ConfigDict(
        copy.deepcopy(cfg.get('optim_wrapper') or REFERENCE_OPTIM_WRAPPER))
    if wrapper_cfg.get('type', 'OptimWrapper') in _PLAIN_WRAPPERS:
        wrapper_cfg.pop('loss_scale', None)
        wrapper_cfg.pop('dtype', None)
        wrapper_cfg.type = 'OptimWrapper'
        on_gpu = any(p.is_cuda for p in model.parameters())
        wrapper_cfg = amp_optim_wrapper_cfg(wrapper_cfg, amp,
                                            'cuda' if on_gpu else 'cpu')
    return build_optim_wrapper(model, wrapper_cfg)


def describe_optim_wrapper(cfg: Config, optim_wrapper: OptimWrapper) -> str:
    """str: e.g. ``'OptimWrapper(SGD, from the config)'`` or
    ``'OptimWrapper(SGD, reference default)'``."""
    origin = ('from the config'
              if cfg.get('optim_wrapper') else 'reference default')
    return (f'{type(optim_wrapper).__name__}('
            f'{type(optim_wrapper.optimizer).__name__}, {origin})')


def train_step(
        model: nn.Module,
        optim_wrapper: OptimWrapper,
        loss_fn: Callable[[], Dict[str, Tensor]],
        autocast: Callable[[],
                           ContextManager] = contextlib.nullcontext) -> Tensor:
    """One training step: losses, their sum, backward, optimizer step.

    As mmengine's ``BaseModel.train_step``: the losses are computed in the
    wrapper's ``optim_context`` (and ``autocast``), summed by
    ``model.parse_losses`` (every entry whose key holds ``'loss'``) and
    given to ``optim_wrapper.update_params``.

    Args:
        model (nn.Module): The model (an mmengine ``BaseModel``).
        optim_wrapper (OptimWrapper): Its optimizer wrapper.
        loss_fn (callable): Returns the dict of losses (and other figures).
        autocast (callable): Returns the context entered around
            ``loss_fn``, e.g. ``lambda: autocast_context(device, 'bfloat16')``.
            Defaults to :func:`contextlib.nullcontext`.

    Returns:
        Tensor: The summed loss (detached).
    """
    with optim_wrapper.optim_context(model), autocast():
        losses = loss_fn()
    loss, _ = model.parse_losses(losses)
    optim_wrapper.update_params(loss)
    return loss.detach()
