# Copyright (c) dcama_mm contributors. All rights reserved.
"""The precision policy: fp32, or mixed precision (autocast) at inference.

One setting, the segmentor's ``test_cfg.amp``, chooses the precision of
inference (``predict``, ``predict_logits``, ``encode_supports``, the test
and validation loops, the inferencer):

- ``False`` / ``None`` (the default): fp32;
- ``True`` or ``'auto'``: autocast to bfloat16 on the CPU, float16 on CUDA;
- ``'bfloat16'`` or ``'float16'``: autocast to that dtype.

The model's modules keep fp32 weights; under autocast, matrix products and
convolutions run in the low-precision dtype (PyTorch's autocast op lists),
and the parts that decide the answer stay fp32 (the final logits and their
resize, see :func:`fp32_region`; ``docs/precision.md`` lists them with the
measured agreement). Training in mixed precision is the optimizer
wrapper's business (``tools/train.py --amp``: mmengine's
``AmpOptimWrapper`` on CUDA, :class:`~dcama_mm.engine.optimizers.
AutocastOptimWrapper` on the CPU).

The command-line tools take ``--amp`` and ``--amp-dtype
{auto,bfloat16,float16}`` (:func:`add_amp_arguments`, :func:`amp_from_args`).
"""
import argparse
import contextlib
import dataclasses
import functools
from typing import Callable, ContextManager, Optional, Union

import torch
from mmengine.logging import print_log

#: ``--amp-dtype`` choices.
AMP_DTYPE_CHOICES = ('auto', 'bfloat16', 'float16')
_NAMES = {
    'bfloat16': torch.bfloat16,
    'bf16': torch.bfloat16,
    'float16': torch.float16,
    'fp16': torch.float16,
}
AmpSetting = Union[None, bool, str]


def resolve_amp_dtype(amp: AmpSetting,
                      device: Union[str, torch.device],
                      owner: str = 'amp') -> Optional[torch.dtype]:
    """The autocast dtype of an ``amp`` setting on ``device``.

    Args:
        amp (bool | str | None): ``None``/``False`` (fp32), ``True`` or
            ``'auto'`` (bfloat16 on the CPU, float16 on CUDA),
            ``'bfloat16'``/``'bf16'`` or ``'float16'``/``'fp16'``.
        device (str | torch.device): Where the model runs.
        owner (str): Named in the error message. Defaults to 'amp'.

    Returns:
        torch.dtype | None: The dtype, None for fp32.

    Raises:
        ValueError: For any other value.
    """
    if amp is None or amp is False:
        return None
    device = torch.device(device)
    if amp is True or amp == 'auto':
        return torch.float16 if device.type == 'cuda' else torch.bfloat16
    if isinstance(amp, str) and amp in _NAMES:
        return _NAMES[amp]
    raise ValueError(
        f'{owner} must be False/None (fp32), True or "auto" (bfloat16 on '
        f'the CPU, float16 on CUDA), "bfloat16" or "float16", got {amp!r}.')


def check_amp(amp: AmpSetting, owner: str = 'amp') -> AmpSetting:
    """Validate an ``amp`` setting (see :func:`resolve_amp_dtype`) without
    a device; returns it."""
    resolve_amp_dtype(amp, 'cpu', owner)
    return amp


def dtype_name(dtype: Optional[torch.dtype]) -> str:
    """'fp32', 'bfloat16' or 'float16'."""
    return 'fp32' if dtype is None else str(dtype).replace('torch.', '')


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bf16 matrix products natively (oneDNN's
    check: AVX-512 BF16 or AMX). Without it bf16 is emulated and several
    times slower than fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@functools.lru_cache(maxsize=None)
def warn_slow_precision(device_type: str, dtype: torch.dtype) -> bool:
    """Log once per (device, dtype) when autocast will run slower than fp32
    (bf16 on a CPU without native bf16, fp16 on any CPU); returns whether
    it warned."""
    slow = device_type == 'cpu' and (dtype == torch.float16
                                     or not native_bf16_cpu())
    if slow:
        print_log(
            f'{dtype_name(dtype)} autocast on this CPU (capability '
            f'{torch.backends.cpu.get_cpu_capability()}, oneDNN bf16 '
            f'{"yes" if native_bf16_cpu() else "no"}) is emulated and runs '
            'slower than fp32; it is meant for CPUs with AVX-512 BF16/AMX '
            'and for GPUs (docs/precision.md).',
            logger='current',
            level=30)
    return slow


def autocast_for(device: Union[str, torch.device],
                 dtype: Optional[torch.dtype]) -> ContextManager:
    """Autocast to ``dtype`` on ``device``; nothing for fp32 (None) or
    when autocast to that dtype is already on (an outer context wins)."""
    device = torch.device(device)
    if dtype is None or (torch.is_autocast_enabled(device.type)
                         and torch.get_autocast_dtype(device.type) == dtype):
        return contextlib.nullcontext()
    warn_slow_precision(device.type, dtype)
    return torch.autocast(device_type=device.type, dtype=dtype)


def fp32_region(x: torch.Tensor) -> ContextManager:
    """Autocast off (the code inside runs in fp32) where ``x`` lives.

    Use with ``.float()`` of the inputs: ``with fp32_region(x): f(x.float())``.
    """
    if not torch.is_autocast_enabled(x.device.type):
        return contextlib.nullcontext()
    return torch.autocast(device_type=x.device.type, enabled=False)


def to_fp32(value):
    """``value`` with every floating tensor as float32 (also inside lists,
    tuples and dataclasses such as ``EncodedSupports``)."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, (list, tuple)):
        return type(value)(to_fp32(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(
            value, **{
                f.name: to_fp32(getattr(value, f.name))
                for f in dataclasses.fields(value)
            })
    return value


def inference_precision(method: Callable) -> Callable:
    """Decorator of a segmentor's inference method: run it under the
    autocast of ``self.test_cfg['amp']`` on the model's device and give its
    floating tensor outputs back as float32. In training mode (``loss``
    goes through ``predict_logits`` too) it does nothing: training precision
    is the optimizer wrapper's (``tools/train.py --amp``)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        amp = (self.test_cfg or {}).get('amp')
        if not amp or self.training:
            return method(self, *args, **kwargs)
        device = next(self.parameters()).device
        dtype = resolve_amp_dtype(amp, device, 'test_cfg.amp')
        with autocast_for(device, dtype):
            return to_fp32(method(self, *args, **kwargs))

    return wrapper


def set_amp(model: torch.nn.Module, amp: AmpSetting) -> torch.nn.Module:
    """Set the inference precision of a built segmentor
    (``model.test_cfg['amp']``); returns ``model``."""
    check_amp(amp, 'amp')
    if model.test_cfg is None:
        model.test_cfg = dict()
    model.test_cfg['amp'] = amp
    return model


def add_amp_arguments(parser: argparse.ArgumentParser,
                      what: str = 'run the model') -> None:
    """Add ``--amp`` and ``--amp-dtype {auto,bfloat16,float16}``."""
    parser.add_argument(
        '--amp',
        action='store_true',
        help=f'{what} in mixed precision (autocast; docs/precision.md)')
    parser.add_argument(
        '--amp-dtype',
        choices=AMP_DTYPE_CHOICES,
        default='auto',
        help='the autocast dtype of --amp: auto (bfloat16 on the CPU, '
        'float16 on CUDA; the default), bfloat16 or float16')


def amp_from_args(args: argparse.Namespace) -> AmpSetting:
    """The ``amp`` setting of parsed ``--amp``/``--amp-dtype``: False, or
    ``'auto'``/``'bfloat16'``/``'float16'``.

    Raises:
        ValueError: ``--amp-dtype`` other than auto without ``--amp``.
    """
    dtype = getattr(args, 'amp_dtype', 'auto')
    if not args.amp:
        if dtype != 'auto':
            raise ValueError(
                f'--amp-dtype {dtype} needs --amp (it chooses the dtype of '
                'mixed precision); add --amp or drop --amp-dtype.')
        return False
    return dtype


def apply_amp_to_config(cfg, amp: AmpSetting) -> None:
    """Set ``cfg.model.test_cfg.amp`` (inference precision) when ``amp``."""
    if not amp:
        return
    check_amp(amp, '--amp-dtype')
    if cfg.model.get('test_cfg') is None:
        cfg.model.test_cfg = dict()
    cfg.model.test_cfg.amp = amp
