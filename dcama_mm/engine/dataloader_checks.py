# Copyright (c) dcama_mm contributors. All rights reserved.
"""The keys of the dataloader configs, checked before the Runner is built.

mmengine's ``Runner.build_dataloader`` takes ``dataset``, ``sampler``,
``batch_sampler``, ``collate_fn``, ``worker_init_fn``,
``num_batch_per_epoch`` and ``disable_subprocess_warning`` out of a
dataloader config and passes the rest to torch's ``DataLoader``. A typo
(``num_worker``) therefore ends in torch's bare ``TypeError`` once the
model and the dataset are built; here it is refused with the config
checks, naming the loader and the closest key.
"""
from typing import Sequence

from mmengine.config import Config
from torch.utils.data import DataLoader

from ..utils.checks import accepted_arguments, check_keys

#: Keys ``Runner.build_dataloader`` reads itself (besides DataLoader's).
RUNNER_DATALOADER_KEYS = ('num_batch_per_epoch', 'disable_subprocess_warning')


def check_dataloader_cfgs(cfg: Config, loaders: Sequence[str]) -> None:
    """Refuse unknown keys of the dataloader configs ``loaders``.

    Args:
        cfg (Config): The full config.
        loaders (Sequence[str]): E.g. ``('test_dataloader', )``. A loader
            that is not a dict (absent, None, a built DataLoader) is left
            alone.

    Raises:
        UnknownOptionError: Naming the loader, the key and the closest
            valid key.
    """
    valid = accepted_arguments(DataLoader) + RUNNER_DATALOADER_KEYS
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        if isinstance(loader_cfg, dict):
            check_keys(loader, 'key', loader_cfg, valid)


__all__ = ['RUNNER_DATALOADER_KEYS', 'check_dataloader_cfgs']
