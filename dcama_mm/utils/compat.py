# Copyright (c) dcama_mm contributors. All rights reserved.
"""Compatibility fixes for the pinned OpenMMLab stack.

torch >= 2.6 changed the default of ``torch.load(weights_only=...)`` to True.
mmengine 0.10.7 loads local checkpoints with a plain ``torch.load`` call, so
its own checkpoints (which pickle the message hub, numpy scalars, configs,
...) fail to load in ``load_checkpoint``, ``Runner(load_from=...)`` and
``resume`` (mmengine issue 1655, fixed only after 0.10.7).

Importing :mod:`dcama_mm` calls :func:`register_trusted_local_loader`, which
re-registers mmengine's local-file scheme (the ``''`` prefix of
:class:`mmengine.runner.CheckpointLoader`) with a loader that passes
``weights_only=False``, i.e. loads LOCAL checkpoint files as torch < 2.6 did.
This trusts them: unpickling a file can run code, so only load local
checkpoints you trust. Remote schemes (``http://``, ``https://``,
``s3://``, ...) are left untouched.
"""
import os.path as osp
from typing import Any, Callable, Optional, Union

import torch
from mmengine.runner import CheckpointLoader

__all__ = ['load_local_checkpoint', 'register_trusted_local_loader']


def load_local_checkpoint(filename: str,
                          map_location: Optional[Union[str,
                                                       Callable]] = None
                          ) -> Any:
    """Load a local checkpoint file, trusting its pickled content.

    Args:
        filename (str): Path of the checkpoint (``~`` is expanded).
        map_location (str | Callable, optional): As in :func:`torch.load`.
            Defaults to None.

    Returns:
        Any: The loaded object (usually a dict).

    Raises:
        FileNotFoundError: If the file does not exist.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)


def register_trusted_local_loader() -> None:
    """Make mmengine load local checkpoints with ``weights_only=False``.

    Idempotent. Only the local-file scheme is replaced.
    """
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_local_checkpoint, force=True)


register_trusted_local_loader()
