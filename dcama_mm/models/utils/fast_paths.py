# Copyright (c) dcama_mm contributors. All rights reserved.
"""The speed policy: one setting for every fast path of the model.

Every fast path (a fused kernel, a cheaper factorisation, a better memory
layout, ...) belongs to the module that computes with it. That module
decides at run time, from the device, the dtype and the mode of its inputs,
whether the path applies, and otherwise computes the straightforward way.
Each fast path equals the straightforward computation up to float
round-off and has one equality test; the configs never name kernels.

One setting turns all of them off, for debugging and equality checks:

- the environment variable ``DCAMA_MM_FAST_PATHS`` (``0``/``false``/
  ``off`` or ``1``/``true``/``on``), read once when :mod:`dcama_mm` is
  imported: the default of every module built afterwards;
- the segmentor's config key ``model.fast_paths`` (``True``/``False``;
  ``None``, the default, keeps the environment's choice), applied to all
  its modules when it is built; :func:`set_fast_paths` does the same for
  any built module tree.

A module that owns fast paths subclasses :class:`FastPathMixin` and
implements :meth:`FastPathMixin.fast_paths_for`, which names the paths it
takes for a tensor description, so that tools can print the policy in
effect (:func:`fast_path_report`) without knowing the modules.
"""
import os
from collections import Counter
from typing import Dict, Optional, Tuple, Union

import torch
from torch import nn

ENV_VAR = 'DCAMA_MM_FAST_PATHS'
_TRUE = ('1', 'true', 'on', 'yes')
_FALSE = ('0', 'false', 'off', 'no')


def _read_environment() -> bool:
    value = os.environ.get(ENV_VAR, '1').strip().lower()
    if value in _TRUE or value == '':
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f'{ENV_VAR}={os.environ[ENV_VAR]!r} is not understood: set it to 0 '
        '(every fast path off) or 1 (on, the default), or unset it.')


_DEFAULT = _read_environment()


def fast_paths_default() -> bool:
    """bool: Whether modules take their fast paths unless told otherwise
    (``DCAMA_MM_FAST_PATHS``, read once at import; on when unset)."""
    return _DEFAULT


class FastPathMixin:
    """Base of a module that owns fast paths.

    ``fast_paths`` (bool) is the module's switch: the environment's default
    until :func:`set_fast_paths` (or the segmentor's ``fast_paths`` key)
    sets it. Put the mixin before ``nn.Module`` in the bases.
    """

    _fast_paths: Optional[bool] = None

    @property
    def fast_paths(self) -> bool:
        """bool: Whether this module may take its fast paths."""
        if self._fast_paths is None:
            return fast_paths_default()
        return self._fast_paths

    @fast_paths.setter
    def fast_paths(self, enabled: bool) -> None:
        if not isinstance(enabled, bool):
            raise ValueError(
                f'{type(self).__name__}: fast_paths must be True or False, '
                f'got {enabled!r}.')
        self._fast_paths = enabled

    def fast_paths_for(self, device: torch.device, dtype: torch.dtype,
                       training: bool) -> Tuple[str, ...]:
        """The fast paths this module takes for such inputs.

        Args:
            device (torch.device): Device of the inputs.
            dtype (torch.dtype): Their dtype (the autocast dtype under
                autocast).
            training (bool): Whether gradients are computed (training).

        Returns:
            tuple[str]: Short names of the paths, empty when it computes
            the straightforward way.
        """
        raise NotImplementedError


def set_fast_paths(model: nn.Module, enabled: bool) -> nn.Module:
    """Turn every fast path of ``model``'s modules on or off.

    Args:
        model (nn.Module): A module tree (e.g. a segmentor).
        enabled (bool): The setting.

    Returns:
        nn.Module: ``model``.
    """
    for module in model.modules():
        if isinstance(module, FastPathMixin):
            module.fast_paths = enabled
    return model


def fast_path_report(model: nn.Module,
                     device: Union[str, torch.device] = 'cpu',
                     dtype: torch.dtype = torch.float32,
                     training: bool = False) -> Dict[str, int]:
    """Which fast paths ``model`` takes for inputs of this description.

    Args:
        model (nn.Module): A module tree.
        device (str | torch.device): Device of the inputs.
            Defaults to 'cpu'.
        dtype (torch.dtype): Their dtype. Defaults to float32.
        training (bool): Training (with gradients) or inference.
            Defaults to False. In training, a module none of whose
            parameters needs a gradient (e.g. inside a frozen backbone) is
            reported as at inference, as it runs.

    Returns:
        dict[str, int]: ``'Owner: path'`` -> number of modules taking it,
        in the order met; empty when none applies (or all are off).
    """
    device = torch.device(device)
    counts: Counter = Counter()
    for module in model.modules():
        if isinstance(module, FastPathMixin) and module.fast_paths:
            trains = training and any(p.requires_grad
                                      for p in module.parameters())
            for path in module.fast_paths_for(device, dtype, trains):
                counts[f'{type(module).__name__}: {path}'] += 1
    return dict(counts)


#: Config keys of the speed switches that the policy replaced, and what
#: took their place.
REMOVED_SWITCHES = {
    'attn_impl': 'chosen by DCAMAAttention / SDPAWindowMSA',
    'linear_impl': 'chosen by FastLinear / DCAMAAttention',
    'mixer_impl': 'chosen by DCAMAHead',
    'fast_dropout': 'part of the attention\'s training fast path',
    'channels_last': 'chosen by BlockFeatureResNet',
    'cpu_backbone_batch_size': 'chosen by FewShotSegmentor on the CPU',
    'cpu_backbone_workers': 'now model.cpu_parallel_images',
}


def refuse_removed_switches(owner: str, kwargs: dict) -> None:
    """Raise a ValueError naming any removed speed switch in ``kwargs``.

    Args:
        owner (str): The class the options were given to.
        kwargs (dict): Its extra keyword arguments.

    Raises:
        ValueError: Which option, and what to set instead.
    """
    removed = [key for key in REMOVED_SWITCHES if key in kwargs]
    if removed:
        said = '; '.join(f'{key}: {REMOVED_SWITCHES[key]}' for key in removed)
        raise ValueError(
            f'{owner}: the option(s) {", ".join(removed)} no longer exist '
            f'({said}). Remove them from the config; set '
            f'model.fast_paths=False (or {ENV_VAR}=0) to turn every fast '
            'path off.')
