# Copyright (c) dcama_mm contributors. All rights reserved.
"""The test pipeline and the support set of :class:`FewShotInferencer`: the
supports are read once through the pipeline, encoded once, and kept between
calls."""
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.logging import print_log
from mmseg.registry import TRANSFORMS
from mmseg.structures import SegDataSample

from ..datasets.transforms import LoadEpisode, ResizeEpisode
from ..datasets.transforms.resize_episode import as_size_pair
from ..structures import EncodedSupports
from .inference_inputs import ImageType, as_list, name_of


#: The test pipeline of a model without a config (the configs' default).
DEFAULT_PIPELINE = (dict(type='LoadEpisode'),
                    dict(type='ResizeEpisode', scale=(384, 384)),
                    dict(type='PackFewShotInputs'))


def split_test_pipeline(
    cfg: Config,
    img_size: Optional[Union[int, Sequence[int]]] = None
) -> Tuple[Compose, Compose, List[ResizeEpisode]]:
    """The config's test pipeline, in two parts around its loading step.

    Args:
        cfg (Config): The config (``test_dataloader.dataset.pipeline``;
            :data:`DEFAULT_PIPELINE` when it has none).
        img_size (int | Sequence[int], optional): A network size ``(h, w)``
            to set on the pipeline's ``ResizeEpisode`` steps. Defaults to
            None (the pipeline's own).

    Returns:
        tuple: The steps up to and including ``LoadEpisode``, the steps
        after it, and the ``ResizeEpisode`` steps.

    Raises:
        ValueError: Not one ``LoadEpisode`` step, a bad ``img_size``, or
            ``img_size`` without a ``ResizeEpisode`` step.
    """
    try:
        pipeline = cfg.test_dataloader.dataset.pipeline
    except AttributeError:
        pipeline = DEFAULT_PIPELINE
    transforms = [TRANSFORMS.build(t) for t in pipeline]
    loads = [
        i for i, t in enumerate(transforms) if isinstance(t, LoadEpisode)
    ]
    if len(loads) != 1:
        raise ValueError(
            'FewShotInferencer needs a test pipeline '
            '(test_dataloader.dataset.pipeline) with one LoadEpisode step, '
            f'got {[type(t).__name__ for t in transforms]}.')
    resizes = [t for t in transforms if isinstance(t, ResizeEpisode)]
    if img_size is not None:
        size = as_size_pair(img_size, 'img_size', '(h, w)')
        if not resizes:
            raise ValueError('img_size was given but the test pipeline has '
                             'no ResizeEpisode step to resize to it.')
        for resize in resizes:
            resize.scale = (size[1], size[0])  # (w, h)
    return (Compose(transforms[:loads[0] + 1]),
            Compose(transforms[loads[0] + 1:]), resizes)


@dataclass(frozen=True)
class SupportSet:
    """A support set as the inferencer keeps it between calls.

    Attributes:
        names (list[str]): The supports' paths (or ``support image #k``).
        paths (list[str | None]): Their paths, None for arrays.
        imgs (list[np.ndarray]): The loaded BGR images (original size).
        masks (list[np.ndarray]): Their 0/1 masks (original size).
        packed (SegDataSample): The pipeline's ``uint8`` network-size
            ``support_imgs`` and ``support_masks``.
        encoded (EncodedSupports): The backbone features, computed once.
    """

    names: List[str]
    paths: List[Optional[str]]
    imgs: List[np.ndarray]
    masks: List[np.ndarray]
    packed: SegDataSample
    encoded: EncodedSupports


def load_support_set(support_imgs: Union[ImageType, Sequence[ImageType]],
                     support_masks: Union[ImageType, Sequence[ImageType]],
                     load: Callable, rest: Callable,
                     model: nn.Module) -> SupportSet:
    """Load, check and encode a support set.

    The supports go through the test pipeline as one episode whose query is
    the first support (``load``: the pipeline up to its loading step;
    ``rest``: the steps after it), are normalised by the model's data
    preprocessor (``normalize``) and encoded by ``encode_supports``.

    Args:
        support_imgs (str | np.ndarray | Sequence): K >= 1 support images.
        support_masks (str | np.ndarray | Sequence): Their binary masks.
        load (callable): The pipeline's steps up to its ``LoadEpisode``.
        rest (callable): Its steps after it.
        model (nn.Module): The few-shot segmentor.

    Returns:
        SupportSet: The loaded and encoded supports.

    Raises:
        ValueError: No support, a support without a mask (or a mask
            without a support), an unreadable file, or a mask whose size
            differs from its image.
        FileNotFoundError: A support image or mask does not exist.
    """
    imgs, masks = as_list(support_imgs), as_list(support_masks)
    if not imgs:
        raise ValueError('No support image given: few-shot inference '
                         'needs K >= 1 support images with masks.')
    names = [name_of(img, f'support image #{k}')
             for k, img in enumerate(imgs)]
    mask_names = [name_of(mask, f'support mask #{k}')
                  for k, mask in enumerate(masks)]
    if len(masks) != len(imgs):
        if len(masks) < len(imgs):
            missing = ', '.join(repr(n) for n in names[len(masks):])
            what = f'Support image(s) {missing} have no mask'
        else:
            extra = ', '.join(repr(n) for n in mask_names[len(imgs):])
            what = f'Support mask(s) {extra} have no support image'
        raise ValueError(
            f'{what}: give one binary mask per support image (got '
            f'{len(imgs)} images and {len(masks)} masks).')
    for kind, items in (('support image', imgs), ('support mask', masks)):
        for k, item in enumerate(items):
            if not isinstance(item, (str, Path, np.ndarray)):
                raise ValueError(
                    f'A {kind} must be a file path or a numpy array, got '
                    f'{type(item).__name__} (#{k}).')
    sources = [str(s) if isinstance(s, Path) else s for s in imgs]
    mask_sources = [str(s) if isinstance(s, Path) else s for s in masks]
    episode = load(
        episode_input(sources[0], sources, mask_sources,
                      [n if isinstance(s, str) else None
                       for s, n in zip(sources, names)]))
    for name, mask_name, mask in zip(names, mask_names,
                                     episode['support_masks']):
        if not mask.any():
            print_log(
                f'Support mask {mask_name!r} (of {name!r}) has no '
                'foreground pixel: this support shows nothing to look '
                'for. Foreground must be 1 (0/1 masks) or >= 128 '
                '(0/255 masks).',
                logger='current',
                level=logging.WARNING)
    if not any(mask.any() for mask in episode['support_masks']):
        print_log(
            'All support masks are empty: the model has nothing to look '
            'for and its predictions are meaningless.',
            logger='current',
            level=logging.WARNING)
    packed = rest(dict(episode))['data_samples']
    pre = model.data_preprocessor
    with torch.no_grad():
        # the data preprocessor's device move and normalisation, as for an
        # episode's supports
        encoded = model.encode_supports(
            pre.normalize(pre.cast_data(packed.support_imgs)),
            pre.cast_data(packed.support_masks))
    return SupportSet(
        names=names,
        paths=[s if isinstance(s, str) else None for s in sources],
        imgs=list(episode['support_imgs']),
        masks=list(episode['support_masks']),
        packed=packed,
        encoded=encoded)


#: What reading a query can raise (it is then skipped).
READ_ERRORS = (ValueError, FileNotFoundError, OSError)


def query_batches(queries: Sequence[Tuple[Union[str, np.ndarray], str]],
                  batch_size: int, load: Callable, rest: Callable,
                  collate_fn: Callable, failed: List[str], progress=None):
    """Run queries through the test pipeline, in collated batches.

    A query that cannot be read is logged, added to ``failed`` and skipped
    (``progress``, a ProgressBar, still advances).

    Args:
        queries (Sequence[tuple]): ``(path or array, name)`` pairs.
        batch_size (int): Queries per batch.
        load (callable): The pipeline's steps up to its ``LoadEpisode``.
        rest (callable): Its steps after it.
        collate_fn (callable): The collate function.
        failed (list[str]): Gets the names of unreadable queries.
        progress (ProgressBar, optional): Advanced for skipped queries.

    Yields:
        dict: ``inputs`` and ``data_samples`` (collated), ``indices``
        (positions in ``queries``) and ``imgs`` (the loaded BGR queries,
        for the pictures).
    """
    batch: List[Tuple[int, np.ndarray, dict]] = []

    def collate() -> dict:
        data = collate_fn([packed for _, _, packed in batch])
        data.update(indices=[idx for idx, _, _ in batch],
                    imgs=[img for _, img, _ in batch])
        return data

    for idx, (source, name) in enumerate(queries):
        try:
            loaded = load(episode_input(source, [], [], []))
            packed = rest(dict(loaded))
        except READ_ERRORS as err:
            print_log(f'Skipped query {name!r}: {err}',
                      logger='current', level=logging.ERROR)
            failed.append(name)
            if progress is not None:
                progress.update()
            continue
        batch.append((idx, loaded['img'], packed))
        if len(batch) == batch_size:
            yield collate()
            batch = []
    if batch:
        yield collate()


def episode_input(query, support_imgs: list, support_masks: list,
                  support_paths: list) -> dict:
    """The pipeline input of an episode from paths and/or arrays."""
    is_array = isinstance(query, np.ndarray)
    return dict(
        img=query if is_array else None,
        img_path=None if is_array else query,
        support_imgs=support_imgs,
        support_masks=support_masks,
        support_img_paths=support_paths,
        shots=len(support_imgs))
