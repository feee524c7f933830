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
from typing import Any, Iterator, Sequence, Tuple

from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmseg.registry import TRANSFORMS
from ..datasets.transforms import ResizeEpisode
from ..datasets.transforms.resize_episode import (as_size_pair,
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


def iter_resize_scales(cfg: Config, loaders: Sequence[str]
                       ) -> Iterator[Tuple[Any, str, str]]:
    """Yield ``(scale, option, cfg_option)`` of every ``ResizeEpisode``
    step in the pipelines of ``loaders``' datasets (wrapped ones too).

    ``option`` reads ``test_dataloader.dataset.pipeline[1].scale``;
    ``cfg_option`` is the same key as ``--cfg-options`` writes it
    (``test_dataloader.dataset.pipeline.1.scale``). A step without a
    ``scale`` has ResizeEpisode's default, which is fine.
    """
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        if not isinstance(loader_cfg, dict):
            continue
        for ds_cfg, name in _iter_datasets(loader_cfg.get('dataset'),
                                           f'{loader}.dataset'):
            pipeline = ds_cfg.get('pipeline')
            if not isinstance(pipeline, (list, tuple)):
                continue
            for i, step in enumerate(pipeline):
                if _is_resize(step) and 'scale' in step:
                    yield (step['scale'], f'{name}.pipeline[{i}].scale',
                           f'{name}.pipeline.{i}.scale')


def check_pipeline_sizes(cfg: Config, loaders: Sequence[str]) -> None:
    """Refuse a ``ResizeEpisode`` scale the backbone cannot work at.

    Args:
        cfg (Config): The full config, after ``--cfg-options`` are merged.
        loaders (Sequence[str]): The dataloaders the tool runs, e.g.
            ``('test_dataloader', )``.

    Raises:
        ValueError: A scale that is not a size (naming the option), or one
            with a side below the backbone's largest stride, naming the
            config file, the option, and what to give instead.
    """
    source = cfg.filename or 'the config'
    for scale, option, cfg_option in iter_resize_scales(cfg, loaders):
        width, height = as_size_pair(scale, option, '(width, height)')
        problem = network_size_problem((height, width))
        if problem is None:
            continue
        shipped = f'"({SHIPPED_SCALE[0]}, {SHIPPED_SCALE[1]})"'
        raise ValueError(
            f'config {source}: {option}={scale!r} makes the network size '
            f'{problem} Give a scale of at least 32 per side; the shipped '
            f'configs use {shipped[1:-1]}, a multiple of 32 (in the config '
            f'file, or --cfg-options {cfg_option}={shipped}).')
