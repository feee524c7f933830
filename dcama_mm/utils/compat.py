# Copyright (c) dcama_mm contributors. All rights reserved.
"""Compatibility fixes for the pinned OpenMMLab stack.

torch >= 2.6 changed the default of ``torch.load(weights_only=...)`` to True.
mmengine 0.10.7 loads local checkpoints with a plain ``torch.load`` call, so
its own checkpoints (which pickle the message hub, numpy scalars, configs,
...) fail to load in ``load_checkpoint``, ``Runner(load_from=...)`` and
``resume`` (mmengine issue 1655, fixed only after 0.10.7).

Importing :mod:`dcama_mm` calls :func:`register_trusted_local_loader`, which
(only where needed, see :func:`needs_trusted_local_loader`, and once per
process) re-registers mmengine's local-file scheme (the ``''`` prefix of
:class:`mmengine.runner.CheckpointLoader`) with a loader that passes
``weights_only=False``, i.e. loads LOCAL checkpoint files as torch < 2.6 did.
This trusts them: unpickling a file can run code, so only load local
checkpoints you trust. Remote schemes (``http://``, ``https://``,
``s3://``, ...) are left untouched.
"""
import os.path as osp
from typing import Any, Callable, Optional, Union

import mmengine
import torch
from mmengine.runner import CheckpointLoader
from mmengine.utils import digit_version

__all__ = [
    'load_local_checkpoint', 'needs_trusted_local_loader',
    'register_trusted_local_loader'
]

#: The last mmengine release whose ``load_from_local`` calls ``torch.load``
#: without ``weights_only`` (so gets torch's default).
LAST_UNFIXED_MMENGINE = '0.10.7'
#: The first torch release where ``weights_only`` defaults to True.
FIRST_WEIGHTS_ONLY_TORCH = '2.6.0'


def load_local_checkpoint(filename: str,
                          map_location: Optional[Union[str,
                                                       Callable]] = None,
                          mmap: bool = False) -> Any:
    """Load a local checkpoint file, trusting its pickled content.

    Args:
        filename (str): Path of the checkpoint (``~`` is expanded).
        map_location (str | Callable, optional): As in :func:`torch.load`.
            Defaults to None.
        mmap (bool): Map the file instead of reading it (as in
            :func:`torch.load`; zip-format files only): the keys and
            shapes are read, a tensor's data only when it is used.
            Defaults to False.

    Returns:
        Any: The loaded object (usually a dict).

    Raises:
        FileNotFoundError: If the file does not exist.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(
        filename, map_location=map_location, weights_only=False, mmap=mmap)


def needs_trusted_local_loader(mmengine_version: Optional[str] = None,
                               torch_version: Optional[str] = None) -> bool:
    """Whether mmengine's local loader fails on its own checkpoints.

    True for mmengine <= 0.10.7 (its ``load_from_local`` calls
    ``torch.load(filename, map_location=map_location)``) with torch >= 2.6
    (``weights_only=True`` by default).

    Args:
        mmengine_version (str, optional): The mmengine version. Defaults to
            None (the installed ``mmengine.__version__``).
        torch_version (str, optional): The torch version. Defaults to None
            (the installed ``torch.__version__``).

    Returns:
        bool: Whether :func:`register_trusted_local_loader` registers
        :func:`load_local_checkpoint`.
    """
    mmengine_version = mmengine_version or mmengine.__version__
    torch_version = torch_version or str(torch.__version__)
    return (digit_version(mmengine_version) <=
            digit_version(LAST_UNFIXED_MMENGINE)
            and digit_version(torch_version) >=
            digit_version(FIRST_WEIGHTS_ONLY_TORCH))


def register_trusted_local_loader() -> bool:
    """Make mmengine load local checkpoints with ``weights_only=False``.

    Only where :func:`needs_trusted_local_loader` says so, and once:
    nothing is registered when :func:`load_local_checkpoint` already serves
    the local scheme. Only the local-file scheme is replaced.

    Returns:
        bool: Whether :func:`load_local_checkpoint` serves the local scheme
        after the call.
    """
    if CheckpointLoader._schemes.get('') is load_local_checkpoint:
        return True
    if not needs_trusted_local_loader():
        return False
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_local_checkpoint, force=True)
    return True


register_trusted_local_loader()
