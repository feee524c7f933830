# Copyright (c) dcama_mm contributors. All rights reserved.
"""Command-line pieces shared by the analysis tools.

The tools under ``tools/analysis_tools`` take a config, ``--cfg-options``
and some of ``--device``, ``--repeat``, ``--warmup`` and ``--threads``,
with the same meaning everywhere; :func:`analysis_parser` adds them
(:func:`add_size_argument` an ``H W`` option), :func:`load_analysis_config`
and :func:`set_threads` apply them.
"""
import argparse
import os
from typing import Dict, Optional, Sequence

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

from ..engine.option_checks import merge_cfg_options
from ..models.utils.fast_paths import ENV_VAR, fast_paths_default
from ..utils.device import device_argument

# name -> (type, help, what a default of None means)
_COMMON_OPTIONS = dict(
    device=(str, 'cpu or cuda (or cuda:N)', 'cuda if available, else cpu'),
    repeat=(int, 'timed runs', None),
    warmup=(int, 'untimed runs before the timed ones', None),
    threads=(int, 'torch CPU threads', "torch's default"))


def analysis_parser(description: str,
                    config_help: str = 'config file',
                    cfg_options_example: str = 'model.fast_paths=False',
                    **defaults: object) -> argparse.ArgumentParser:
    """A parser with a positional ``config``, ``--cfg-options`` and the
    common options named in ``defaults``.

    Args:
        description (str): What the tool does.
        config_help (str): Help of the ``config`` argument.
            Defaults to 'config file'.
        cfg_options_example (str): A ``key=value`` shown in the help of
            ``--cfg-options``. Defaults to 'model.fast_paths=False'.
        **defaults: Default values of the common options to add, among
            ``device``, ``repeat``, ``warmup`` and ``threads``, e.g.
            ``repeat=3, threads=None``.

    Returns:
        argparse.ArgumentParser: The parser; add the tool's own options.

    Raises:
        ValueError: For a name that is not a common option.
    """
    unknown = set(defaults) - set(_COMMON_OPTIONS)
    if unknown:
        raise ValueError(f'analysis_parser: unknown options {sorted(unknown)}'
                         f'; the common ones are {sorted(_COMMON_OPTIONS)}.')
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help=config_help)
    for name, default in defaults.items():
        kind, text, none_means = _COMMON_OPTIONS[name]
        text += (' (default: %(default)s)' if default is not None else
                 f' (default: {none_means})' if none_means else '')
        kind = device_argument if name == 'device' else kind
        parser.add_argument(f'--{name}', type=kind, default=default, help=text)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value, e.g. '
        f'{cfg_options_example}')
    return parser


def add_size_argument(parser: argparse.ArgumentParser, flag: str,
                      default: Sequence[int], text: str) -> None:
    """Add an ``H W`` option (two integers), e.g. ``--size 384 384``.

    Args:
        parser (argparse.ArgumentParser): The parser.
        flag (str): The option, e.g. ``'--size'``.
        default (Sequence[int]): The default ``(H, W)``.
        text (str): Its help.
    """
    parser.add_argument(
        flag,
        type=int,
        nargs=2,
        default=list(default),
        metavar=('H', 'W'),
        help=f'{text} (default: {default[0]} {default[1]})')


def load_analysis_config(path: str,
                         cfg_options: Optional[dict] = None,
                         expected: str = 'a config') -> Config:
    """Read a config, merge ``--cfg-options`` into it and set its default
    scope.

    Args:
        path (str): The config file.
        cfg_options (dict, optional): Settings to merge (from
            ``--cfg-options``). Defaults to None.
        expected (str): What to pass instead when the file is missing, for
            the message. Defaults to 'a config'.

    Returns:
        Config: The config.

    Raises:
        FileNotFoundError: When ``path`` is not a file.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'Config file {path!r} not found; pass {expected}.')
    cfg = merge_cfg_options(Config.fromfile(path), cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return cfg


def set_threads(threads: Optional[int]) -> None:
    """Set torch's CPU threads (``--threads``); None keeps torch's default.

    Raises:
        ValueError: For fewer than 1 thread.
    """
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f'--threads must be >= 1, got {threads}.')
    torch.set_num_threads(threads)


def fast_path_setting(cfg: Config) -> Dict[str, object]:
    """The speed policy a model built from ``cfg`` follows.

    ``model.fast_paths`` (True/False) decides; None or absent leaves it to
    the environment variable ``DCAMA_MM_FAST_PATHS`` (see
    :mod:`dcama_mm.models.utils.fast_paths`).

    Args:
        cfg (Config): A config with a ``model``.

    Returns:
        dict: ``enabled`` (bool), ``DCAMA_MM_FAST_PATHS`` (the variable's
        value, or None when unset) and ``model.fast_paths`` (the config's
        value).
    """
    configured = cfg.get('model', {}).get('fast_paths')
    return {
        'enabled':
        fast_paths_default() if configured is None else bool(configured),
        ENV_VAR: os.environ.get(ENV_VAR),
        'model.fast_paths': configured
    }
