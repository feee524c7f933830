# Copyright (c) dcama_mm contributors. All rights reserved.
import copy
import logging
from pathlib import Path
from typing import Optional, Union

import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log
from mmseg.apis import init_model as mmseg_init_model

from ..engine.option_checks import merge_cfg_options
from ..models.utils.checkpoint_checks import load_fitting_checkpoint

ConfigLike = Union[str, Path, Config]


def _load_config(config: ConfigLike) -> Config:
    """A new :class:`Config` from a file name or a deep copy of ``config``
    (``Config.copy`` shares the nested dicts)."""
    if isinstance(config, (str, Path)):
        if not Path(config).is_file():
            raise FileNotFoundError(
                f'Config file {config} does not exist: pass the path of a '
                'dcama_mm config, e.g. configs/dcama_swinb_coco_fold0.py.')
        return Config.fromfile(str(config))
    if isinstance(config, Config):
        return copy.deepcopy(config)
    raise TypeError('config must be a filename or a Config object, got '
                    f'{type(config).__name__}.')


def _config_name(config: Config) -> Optional[str]:
    """The file a config was read from, for messages (None if built in
    code)."""
    return getattr(config, 'filename', None) or None


def init_model(config: ConfigLike,
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None) -> nn.Module:
    """Build a few-shot segmentor from a config, optionally with weights.

    mmseg's :func:`mmseg.apis.init_model` builds the model (in the config's
    default scope), moves it to ``device`` and sets eval mode. Unlike it,
    the caller's :class:`Config` is not modified, the checkpoint's
    ``dataset_meta`` is only taken when present (no class names are made up
    from ``num_classes``), and a warning says when no weights are loaded.

    Args:
        config (str | Path | Config): Config file path or a loaded
            :class:`Config` (not modified).
        checkpoint (str, optional): Checkpoint to load (e.g. a Runner
            checkpoint or the output of
            ``tools/model_converters/dcama2mmseg.py``). When given, the
            backbone's ``init_cfg`` (its ImageNet weights file) is dropped,
            since the checkpoint holds the backbone. It must fit the model
            strictly: every weight present with its shape and no other key
            (see :mod:`dcama_mm.models.utils.checkpoint_checks`). Defaults
            to None (random head weights, nothing loaded).
        device (str): Device to put the model on. Defaults to 'cpu'.
        cfg_options (dict, optional): Options merged into the config, as
            ``--cfg-options`` of the tools. Defaults to None.

    Returns:
        nn.Module: The segmentor in eval mode, with ``cfg`` set to the
        config and ``dataset_meta`` taken from the checkpoint's
        ``meta.dataset_meta`` when present.

    Raises:
        FileNotFoundError: If the config or the checkpoint does not exist.
        NotACheckpointError: If ``checkpoint`` is not a PyTorch checkpoint.
        CheckpointMismatchError: If it does not fit the config's model (a
            message with the checkpoint, the config and a few missing,
            unexpected or mis-shaped keys).
    """
    config = _load_config(config)
    if cfg_options is not None:
        merge_cfg_options(config, cfg_options)
    if 'model' not in config:
        raise ValueError('The config has no `model` entry.')
    config.model.train_cfg = None
    if checkpoint is not None and 'backbone' in config.model:
        config.model.backbone.init_cfg = None

    # mmseg gets no checkpoint: it would invent class names (Cityscapes')
    # when the checkpoint has no dataset_meta. It sets model.pretrained
    # (None, which FewShotSegmentor accepts) on the config it is given,
    # which is therefore a copy.
    model = mmseg_init_model(copy.deepcopy(config), device=device)
    if checkpoint is not None:
        loaded = load_fitting_checkpoint(
            model, checkpoint, _config_name(config), map_location='cpu')
        dataset_meta = loaded.get('meta', {}).get('dataset_meta')
        if dataset_meta is not None:
            model.dataset_meta = dataset_meta
    else:
        print_log(
            'init_model: no checkpoint given, the model has random weights.',
            logger='current',
            level=logging.WARNING)
    model.cfg = config
    return model
