# Copyright (c) dcama_mm contributors. All rights reserved.
"""Checks of ``--cfg-options`` and of the dataloader settings (the tools).

A config file's top-level *variables* (``fold = 0``, ``img_scale``,
``data_root``, ``train_pipeline``, ...) are read only while the file is
loaded: ``dataset=dict(fold=fold)`` copies the value. Setting such a
variable afterwards with ``--cfg-options fold=1`` would change nothing
while the run looks as asked. :func:`merge_cfg_options` therefore

- propagates ``fold`` and ``data_root`` (:data:`PROPAGATED_KEYS`) to every
  dataloader's dataset that has that key (and logs where);
- refuses any other top-level key that neither mmengine's Runner nor the
  tools read, naming the options to set instead (those that hold the
  variable's value, or the keys of that name deeper in the config).

:func:`check_dataloader_workers` turns ``persistent_workers`` off (with a
log line) where ``num_workers=0`` (torch refuses the combination).
"""
import inspect
import logging
from typing import Any, Dict, Iterator, List, Optional, Tuple

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner

from ..utils.checks import UnknownOptionError, closest
from .config_checks import _iter_datasets

#: Top-level variables that ``--cfg-options KEY=VALUE`` sets in every
#: dataloader's dataset that has ``KEY``.
PROPAGATED_KEYS = ('fold', 'data_root')

#: The dataloaders of a config.
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')

#: Top-level keys read by someone other than the Runner's ``__init__``:
#: mmengine (config loading, model wrapping, ``FlexibleRunner``), mmseg's
#: tools and dcama_mm's tools.
_OTHER_READERS = ('custom_imports', 'default_scope', 'runner_type',
                  'model_wrapper_cfg', 'find_unused_parameters', 'compile',
                  'strategy', 'efficient_conv_bn_eval', 'sync_bn',
                  'activation_checkpointing', 'tta_model', 'tta_pipeline',
                  'launcher', 'work_dir', 'load_from', 'resume',
                  'load_partial')


def read_top_level_keys() -> Tuple[str, ...]:
    """The top-level config keys that have an effect: the arguments of
    mmengine's ``Runner`` and :data:`_OTHER_READERS`."""
    names = list(inspect.signature(Runner.__init__).parameters)[1:]
    return tuple(dict.fromkeys(names + list(_OTHER_READERS)))


def _plain(value: Any) -> Any:
    """``value`` with dicts as dicts and tuples as lists (for comparing)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _walk(cfg: Any, prefix: str) -> Iterator[Tuple[str, Any]]:
    """Yield ``(dotted key, value)`` of everything nested in ``cfg``."""
    items = (cfg.items() if isinstance(cfg, dict) else
             enumerate(cfg) if isinstance(cfg, (list, tuple)) else ())
    for key, value in items:
        name = f'{prefix}.{key}' if prefix else str(key)
        yield name, value
        yield from _walk(value, name)


def _live_sections(cfg: Config) -> Dict[str, Any]:
    """The top-level entries of ``cfg`` that something reads."""
    read = set(read_top_level_keys())
    return {k: v for k, v in cfg.items() if k in read}


def is_config_variable(cfg: Config, key: str) -> bool:
    """Whether top-level ``key`` of ``cfg`` is a variable of the file that
    nothing reads after loading (``data_preprocessor`` counts as one when
    the model has its own)."""
    if key == 'data_preprocessor':
        return isinstance(cfg.get('model'), dict) and \
            'data_preprocessor' in cfg.model
    return key in cfg and key not in read_top_level_keys()


def _holders(cfg: Config, key: str) -> List[str]:
    """The live options whose value equals the variable ``cfg[key]``."""
    wanted = _plain(cfg[key])
    return [
        name for name, value in _walk(_live_sections(cfg), '')
        if _plain(value) == wanted and name.split('.', 1)[0] != key
    ]


def _same_name(cfg: Config, key: str) -> List[str]:
    """The live options named ``key`` at any depth."""
    return [
        name for name, _ in _walk(_live_sections(cfg), '')
        if name.rsplit('.', 1)[-1] == key
    ]


def _refuse(cfg: Config, option: str, value: Any) -> None:
    """Raise :class:`UnknownOptionError` for a top-level ``option`` that
    nothing reads, naming the options to set instead."""
    top, _, rest = option.partition('.')
    rest = f'.{rest}' if rest else ''
    said = f'--cfg-options {option}={value!r}'
    if top in cfg:
        places = [name + rest for name in _holders(cfg, top)]
        head = (f'{said}: `{top}` is a variable of the config file, read '
                'only while the file is loaded; setting it now changes '
                'nothing.')
    else:
        places = [name + rest for name in _same_name(cfg, top)]
        match = closest(top, list(cfg) + list(read_top_level_keys()))
        head = (f'{said}: `{top}` is not a key of this config and nothing '
                'reads it' + (f" (did you mean '{match}'?)." if match else
                              '.'))
    if places:
        shown = ', '.join(places[:8]) + (', ...' if len(places) > 8 else '')
        head += f' Set the option(s) that use it instead: {shown}.'
    raise UnknownOptionError(head)


def _propagate(cfg: Config, key: str, value: Any,
               options: Dict[str, Any]) -> Dict[str, Any]:
    """The options that set ``key`` in every dataloader's dataset that has
    it (explicit per-loader options win); logs where."""
    targets = {}
    for loader in LOADERS:
        loader_cfg = cfg.get(loader)
        if not isinstance(loader_cfg, dict) or not isinstance(
                loader_cfg.get('dataset'), dict):
            continue
        for ds_cfg, name in _iter_datasets(loader_cfg['dataset'],
                                           f'{loader}.dataset'):
            if key in ds_cfg and f'{name}.{key}' not in options:
                targets[f'{name}.{key}'] = value
    if not targets:
        datasets = [f'{loader}.dataset' for loader in LOADERS
                    if isinstance(cfg.get(loader), dict)]
        raise UnknownOptionError(
            f'--cfg-options {key}={value!r}: no dataloader dataset of this '
            f'config has `{key}` ({", ".join(datasets) or "no dataloaders"})'
            '; nothing would change.')
    print_log(
        f'--cfg-options {key}={value!r}: set in ' + ', '.join(targets) +
        '.',
        logger='current')
    if key in cfg:
        targets[key] = value  # the variable itself, for consistency
    return targets


def resolve_cfg_options(cfg: Config,
                        options: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Check ``--cfg-options`` against the loaded (not yet merged) config.

    Args:
        cfg (Config): The config as loaded from its file.
        options (dict, optional): The ``--cfg-options`` (dotted keys).

    Returns:
        dict: The options to merge: those given, with ``fold`` /
        ``data_root`` replaced by the dataset keys they set.

    Raises:
        UnknownOptionError: For a top-level key nothing reads.
    """
    resolved: Dict[str, Any] = {}
    for option, value in (options or {}).items():
        top = option.split('.', 1)[0]
        if option in PROPAGATED_KEYS:
            resolved.update(_propagate(cfg, option, value, options))
        elif is_config_variable(cfg, top) or (
                top not in cfg and top not in read_top_level_keys()):
            _refuse(cfg, option, value)
        else:
            resolved[option] = value
    return resolved


def merge_cfg_options(cfg: Config,
                      options: Optional[Dict[str, Any]]) -> Config:
    """:func:`resolve_cfg_options`, then ``cfg.merge_from_dict``.

    Args:
        cfg (Config): The config as loaded from its file (changed in place).
        options (dict, optional): The ``--cfg-options``.

    Returns:
        Config: ``cfg``.
    """
    if options:
        cfg.merge_from_dict(resolve_cfg_options(cfg, options))
    return cfg


def check_dataloader_workers(cfg: Config) -> None:
    """Turn ``persistent_workers`` off where ``num_workers`` is 0.

    torch's ``DataLoader`` refuses ``persistent_workers=True`` without
    workers; the base configs set it, so ``num_workers=0`` alone (e.g. to
    debug in one process) would fail with torch's message. Logs each change.

    Args:
        cfg (Config): The config (changed in place).
    """
    for loader in LOADERS:
        loader_cfg = cfg.get(loader)
        if not isinstance(loader_cfg, dict):
            continue
        if loader_cfg.get('num_workers', 0) == 0 and loader_cfg.get(
                'persistent_workers', False):
            loader_cfg['persistent_workers'] = False
            print_log(
                f'{loader}.num_workers=0: {loader}.persistent_workers set '
                'to False (persistent workers need num_workers > 0).',
                logger='current',
                level=logging.WARNING)


__all__ = [
    'PROPAGATED_KEYS', 'read_top_level_keys', 'is_config_variable',
    'resolve_cfg_options', 'merge_cfg_options', 'check_dataloader_workers'
]
