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
from ..datasets.transforms.resize_episode import (BACKBONE_STRIDE,
                                                  as_size_pair,
                                                  network_size_problem)
from ..engine.pipeline_checks import check_resize_scales
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
        ValueError: Not one ``LoadEpisode`` step, a bad ``img_size``,
            ``img_size`` without a ``ResizeEpisode`` step, or (without
            ``img_size``) a pipeline scale below the backbone's stride.
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
    if img_size is None:  # the config's own size: it must work too
        check_resize_scales(
            pipeline, 'test_dataloader.dataset.pipeline',
            getattr(cfg, 'filename', None),
            also=', or pass img_size=384 (tools/infer.py: --img-size 384)')
    else:
        size = as_size_pair(img_size, 'img_size', '(h, w)')
        if not resizes:
            raise ValueError('img_size was given but the test pipeline has '
                             'no ResizeEpisode step to resize to it.')
        check_network_size(img_size, size, resizes[0].scale)
        for resize in resizes:
            resize.scale = (size[1], size[0])  # (w, h)
    return (Compose(transforms[:loads[0] + 1]),
            Compose(transforms[loads[0] + 1:]), resizes)


def check_network_size(given: Union[int, Sequence[int]],
                       size: Tuple[int, int],
                       config_scale: Tuple[int, int]) -> None:
    """Refuse a network size ``(h, w)`` with a side below
    :data:`BACKBONE_STRIDE`.

    Args:
        given (int | Sequence[int]): The size as the user gave it.
        size (tuple[int, int]): It as ``(h, w)``.
        config_scale (tuple[int, int]): The pipeline's own
            ``ResizeEpisode`` scale ``(w, h)``, for the message.

    Raises:
        ValueError: Naming ``img_size`` and ``--img-size``, the stride and
            the config's size.
    """
    problem = network_size_problem(size)
    if problem is None:
        return
    cli = ' '.join(str(v) for v in ((given, ) if isinstance(given, int)
                                    else given))
    raise ValueError(
        f'The network size img_size={given!r} (tools/infer.py: --img-size '
        f"{cli}) is {problem} The config's size is "
        f'{config_scale[1]}x{config_scale[0]} (h x w); '
        'leave the option out to use it, or give a larger size (it need '
        f'not be a multiple of {BACKBONE_STRIDE}).')


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


#: The object's label in each support mask (see :func:`as_labels`).
LabelsType = Optional[Union[int, Sequence[Optional[int]]]]


def as_labels(labels: LabelsType, shots: int) -> List[Optional[int]]:
    """One label (or None) per support: None -> all None; an int -> the
    same label for every mask; a sequence -> one per support.

    Raises:
        ValueError: A sequence of another length, or a label that is not
            a non-negative integer.
    """
    if labels is None:
        return [None] * shots
    if isinstance(labels, (int, np.integer)) and not isinstance(
            labels, bool):
        labels = [labels] * shots
    labels = list(labels)
    if len(labels) != shots:
        raise ValueError(
            f'support_labels has {len(labels)} entries for {shots} support '
            'masks: give one label for all, or one (or None) per mask.')
    for label in labels:
        if label is not None and (isinstance(label, bool) or not isinstance(
                label, (int, np.integer)) or label < 0):
            raise ValueError('A support label must be a non-negative '
                             f'integer (a pixel value), got {label!r}.')
    return [None if label is None else int(label) for label in labels]


def load_support_set(support_imgs: Union[ImageType, Sequence[ImageType]],
                     support_masks: Union[ImageType, Sequence[ImageType]],
                     load: Callable, rest: Callable,
                     model: nn.Module,
                     labels: LabelsType = None) -> SupportSet:
    """Load, check and encode a support set.

    The supports go through the test pipeline as one episode whose query is
    the first support (``load``: the pipeline up to its loading step;
    ``rest``: the steps after it), are normalised by the model's data
    preprocessor (``normalize``) and encoded by ``encode_supports``.

    Args:
        support_imgs (str | np.ndarray | Sequence): K >= 1 support images.
        support_masks (str | np.ndarray | Sequence): Their masks (the
            binary-mask rule of
            :mod:`~dcama_mm.datasets.transforms.binary_mask`).
        load (callable): The pipeline's steps up to its ``LoadEpisode``.
        rest (callable): Its steps after it.
        model (nn.Module): The few-shot segmentor.
        labels (int | Sequence, optional): The object's label in the masks
            (one for all, or one or None per mask; see :func:`as_labels`).
            Defaults to None: the masks are binary.

    Returns:
        SupportSet: The loaded and encoded supports.

    Raises:
        ValueError: No support, a support without a mask (or a mask
            without a support), an unreadable file, a mask whose size
            differs from its image, a label mask without a label, or a
            mask without foreground (at its size or the network size).
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
                       for s, n in zip(sources, names)],
                      as_labels(labels, len(imgs))))
    packed = rest(dict(episode))['data_samples']
    check_network_size_masks(packed, mask_names, names)
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


def check_network_size_masks(packed: SegDataSample, mask_names: List[str],
                             names: List[str]) -> None:
    """Refuse a support whose object vanishes at the network size.

    Raises:
        ValueError: Naming the mask, its image and the network size.
    """
    masks = packed.support_masks
    for k, (mask_name, name) in enumerate(zip(mask_names, names)):
        if not bool(masks[k].any()):
            raise ValueError(
                f'The object of the support mask {mask_name!r} (of '
                f'{name!r}) is too small: it vanishes when the support is '
                f'resized to the network size {tuple(masks.shape[-2:])}. '
                'Give a support where the object is larger, or a larger '
                'img_size (--img-size).')


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


def episode_input(query,
                  support_imgs: list,
                  support_masks: list,
                  support_paths: list,
                  support_labels: Optional[list] = None) -> dict:
    """The pipeline input of an episode from paths and/or arrays (support
    masks without foreground are refused)."""
    is_array = isinstance(query, np.ndarray)
    return dict(
        img=query if is_array else None,
        img_path=None if is_array else query,
        support_imgs=support_imgs,
        support_masks=support_masks,
        support_img_paths=support_paths,
        support_mask_labels=support_labels,
        support_masks_nonempty=True,
        shots=len(support_imgs))
