# Copyright (c) dcama_mm contributors. All rights reserved.
import logging
from pathlib import Path
from typing import Optional, Union

import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS

ConfigLike = Union[str, Path, Config]


def init_model(config: ConfigLike,
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None) -> nn.Module:
    """Build a few-shot segmentor from a config, optionally with weights.

    Args:
        config (str | Path | Config): Config file path or a loaded
            :class:`Config` (not modified).
        checkpoint (str, optional): Checkpoint to load (e.g. a Runner
            checkpoint or the output of
            ``tools/model_converters/dcama2mmseg.py``). When given, the
            backbone's ``init_cfg`` (its ImageNet weights file) is dropped,
            since the checkpoint holds the backbone. Defaults to None
            (random head weights, nothing loaded).
        device (str): Device to put the model on. Defaults to 'cpu'.
        cfg_options (dict, optional): Options merged into the config, as
            ``--cfg-options`` of the tools. Defaults to None.

    Returns:
        nn.Module: The segmentor in eval mode, with ``cfg`` set to the
        config and ``dataset_meta`` taken from the checkpoint's
        ``meta.dataset_meta`` when present.
    """
    if isinstance(config, (str, Path)):
        if not Path(config).is_file():
            raise FileNotFoundError(
                f'Config file {config} does not exist: pass the path of a '
                'dcama_mm config, e.g. configs/dcama/...py.')
        config = Config.fromfile(str(config))
    elif isinstance(config, Config):
        config = config.copy()
    else:
        raise TypeError('config must be a filename or a Config object, got '
                        f'{type(config).__name__}.')
    if cfg_options is not None:
        config.merge_from_dict(cfg_options)
    if 'model' not in config:
        raise ValueError('The config has no `model` entry.')
    config.model.train_cfg = None
    if checkpoint is not None and 'backbone' in config.model:
        config.model.backbone.init_cfg = None
    init_default_scope(config.get('default_scope', 'mmseg'))

    model = MODELS.build(config.model)
    if checkpoint is not None:
        loaded = load_checkpoint(model, checkpoint, map_location='cpu')
        dataset_meta = loaded.get('meta', {}).get('dataset_meta')
        if dataset_meta is not None:
            model.dataset_meta = dataset_meta
    else:
        print_log(
            'init_model: no checkpoint given, the model has random weights.',
            logger='current',
            level=logging.WARNING)
    model.cfg = config
    model.to(device)
    model.eval()
    return model
