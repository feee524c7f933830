# Copyright (c) dcama_mm contributors. All rights reserved.
"""The ``--device`` option of the tools, checked before any model is built.

``--device cuda`` on a machine without a usable GPU would otherwise end in
torch's traceback from deep inside model loading ("Torch not compiled with
CUDA enabled", "Found no NVIDIA driver", "invalid device ordinal").
"""
import argparse
import os
from typing import Optional


def check_device(device: Optional[str], option: str = '--device') -> None:
    """Raise a ValueError naming ``option`` if ``device`` is not usable here.

    Checked: that ``device`` parses as a torch device, and for CUDA that a
    GPU is available and the index (``cuda:N``) is one of the visible GPUs.
    None (the tools' "cuda if available, else cpu") is accepted.

    Args:
        device (str, optional): The device, e.g. ``'cpu'``, ``'cuda:1'``.
        option (str): The option's name in the message.
            Defaults to ``'--device'``.

    Raises:
        ValueError: What is wrong and what to pass instead.
    """
    if device is None:
        return
    import torch
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f'{option} {device}: not a device; use cpu, cuda '
                         'or cuda:N.') from err
    if dev.type != 'cuda':
        return
    if not torch.cuda.is_available():
        visible = os.environ.get('CUDA_VISIBLE_DEVICES')
        why = (f'torch {torch.__version__} was built without CUDA'
               if torch.version.cuda is None else
               f'no GPU is visible with CUDA_VISIBLE_DEVICES={visible!r}'
               if visible is not None else 'no NVIDIA driver or GPU found')
        raise ValueError(
            f'{option} {device}: CUDA is not available on this machine '
            f'({why}). Use {option} cpu, or leave {option} out (cuda if '
            'available, else cpu).')
    count = torch.cuda.device_count()
    if dev.index is not None and dev.index >= count:
        raise ValueError(
            f'{option} {device}: only {count} GPU(s) are visible (cuda:0 to '
            f'cuda:{count - 1}); pass one of them or set '
            'CUDA_VISIBLE_DEVICES.')


def device_argument(value: str) -> str:
    """An argparse ``type`` for ``--device``: :func:`check_device`.

    argparse then prints ``argument --device: <the message>`` and exits
    with status 2 before anything is loaded.

    Raises:
        argparse.ArgumentTypeError: When the device is not usable here.
    """
    try:
        check_device(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    return value
