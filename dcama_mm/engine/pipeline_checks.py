# Copyright (c) dcama_mm contributors. All rights reserved.
"""Checks of the dataloaders' pipelines before the Runner is built.

A ``ResizeEpisode`` scale with a side below the backbone's largest stride
(:data:`~dcama_mm.datasets.transforms.resize_episode.BACKBONE_STRIDE`)
leaves the deepest features no room: the run goes to the end and every
mask is empty. :func:`check_pipeline_sizes` refuses it in the config
(the file's own value or one set with ``--cfg-options``), naming the file
and the option, with the wording of the inferencer's ``img_size`` check
(:func:`~dcama_mm.datasets.transforms.resize_episode.network_size_problem`).
"""
import inspect
from typing import Any, Optional, Sequence

from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmseg.registry import TRANSFORMS
from ..datasets.transforms import ResizeEpisode
from ..datasets.transforms.resize_episode import (BACKBONE_STRIDE,
                                                  as_size_pair,
                                                  network_size_problem)
from .config_checks import _iter_datasets

#: The scale the shipped configs use (a multiple of the stride).
SHIPPED_SCALE = (384, 384)


def _is_resize(step: Any) -> bool:
    """Whether a pipeline step config builds a :class:`ResizeEpisode` (or a
    subclass); an unregistered type is left to the Runner's build."""
    step_type = step.get('type') if isinstance(step, dict) else None
    if isinstance(step_type, str):
        init_default_scope('mmseg')
        step_type = TRANSFORMS.get(step_type)
    return inspect.isclass(step_type) and issubclass(step_type,
                                                     ResizeEpisode)


def check_resize_scales(pipeline: Any,
                        option: str,
                        source: Optional[str],
                        also: str = '') -> None:
    """Refuse a ``ResizeEpisode`` step of ``pipeline`` whose scale has a
    side below the backbone's largest stride.

    Args:
        pipeline: A pipeline config (a list of step dicts); anything else
            is left to the build.
        option (str): Its option path, e.g.
            ``'test_dataloader.dataset.pipeline'``.
        source (str, optional): The config file, for the message.
        also (str): Another way out, appended to the advice, e.g.
            ``', or pass img_size=384'``. Defaults to ''.

    Raises:
        ValueError: A scale that is not a size (naming the option), or one
            with a side below the stride, naming the config file, the
            option (as in the file and as ``--cfg-options`` writes it) and
            what to give instead.
    """
    if not isinstance(pipeline, (list, tuple)):
        return
    for i, step in enumerate(pipeline):
        if not (_is_resize(step) and 'scale' in step):
            continue  # ResizeEpisode's default scale is fine
        scale, name = step['scale'], f'{option}[{i}].scale'
        width, height = as_size_pair(scale, name, '(width, height)')
        problem = network_size_problem((height, width))
        if problem is None:
            continue
        shipped = f'({SHIPPED_SCALE[0]}, {SHIPPED_SCALE[1]})'
        raise ValueError(
            f'config {source or "(no file)"}: {name}={scale!r} makes the '
            f'network size {problem} Give a scale of at least '
            f'{BACKBONE_STRIDE} per side; the shipped configs use '
            f'{shipped}, a multiple of {BACKBONE_STRIDE} (in the '
            f'config file, or --cfg-options {option}.{i}.scale="{shipped}")'
            f'{also}.')


def check_pipeline_sizes(cfg: Config, loaders: Sequence[str]) -> None:
    """Refuse a ``ResizeEpisode`` scale the backbone cannot work at in the
    pipelines of ``loaders``' datasets (wrapped ones too), with
    :func:`check_resize_scales`.

    Args:
        cfg (Config): The full config, after ``--cfg-options`` are merged.
        loaders (Sequence[str]): The dataloaders the tool runs, e.g.
            ``('test_dataloader', )``.

    Raises:
        ValueError: See :func:`check_resize_scales`.
    """
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        if not isinstance(loader_cfg, dict):
            continue
        for ds_cfg, name in _iter_datasets(loader_cfg.get('dataset'),
                                           f'{loader}.dataset'):
            check_resize_scales(ds_cfg.get('pipeline'), f'{name}.pipeline',
                                cfg.filename)
