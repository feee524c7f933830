# Copyright (c) dcama_mm contributors. All rights reserved.
"""Checks and plumbing of the episode tensors of :class:`FewShotSegmentor`."""
from typing import List, Optional, Tuple

import torch
from mmseg.utils import OptSampleList
from torch import Tensor, nn

from ...structures import BlockFeatures, EncodedSupports


def take_images(chunks: List[BlockFeatures], start: int,
                stop: int) -> BlockFeatures:
    """Features of images ``[start, stop)`` from the backbone chunks: a
    view where one chunk holds them all (no copy of the features), else
    a concatenation."""
    bounds = []
    offset = 0
    for chunk in chunks:
        size = chunk[0][0].shape[0]
        lo, hi = max(start - offset, 0), min(stop - offset, size)
        if lo < hi:
            bounds.append((chunk, lo, hi))
        offset += size

    def take(stage: int, block: int) -> Tensor:
        pieces = [c[stage][block][lo:hi] for c, lo, hi in bounds]
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces)

    return tuple([take(stage, block) for block in range(len(feats))]
                 for stage, feats in enumerate(chunks[0]))


def check_images(name: str, imgs: Tensor, rank: int) -> None:
    """Refuse anything but float images ``[B, 3, H, W]`` (rank 4) or
    ``[B, K, 3, H, W]`` (rank 5), naming ``name``."""
    if not isinstance(imgs, Tensor):
        raise ValueError(f'{name} must be a tensor, got {type(imgs)}.')
    if not imgs.is_floating_point():
        raise ValueError(
            f'{name} must be float (normalised) images, got '
            f'{imgs.dtype}; run them through FewShotDataPreProcessor '
            'first.')
    if imgs.dim() != rank or imgs.shape[-3] != 3:
        shape = '[B, 3, H, W]' if rank == 4 else '[B, K, 3, H, W]'
        raise ValueError(
            f'{name} must have shape {shape}, got {tuple(imgs.shape)}.')


def check_masks(support_imgs: Tensor, support_masks: Tensor) -> Tensor:
    """Check ``[B, K, H, W]`` masks against their images; as their dtype."""
    if not isinstance(support_masks, Tensor) or support_masks.dim() != 4:
        raise ValueError(
            'support_masks must be a [B, K, H, W] tensor, got '
            f'{getattr(support_masks, "shape", type(support_masks))}.')
    if support_imgs.shape[1] == 0:
        raise ValueError('An episode needs at least one support image '
                         '(K >= 1), got K = 0.')
    expected = (support_imgs.shape[0], support_imgs.shape[1],
                *support_imgs.shape[-2:])
    if tuple(support_masks.shape) != expected:
        raise ValueError(
            f'support_masks shape {tuple(support_masks.shape)} does not '
            f'match the support images: expected {expected} '
            '([B, K, H, W] at the image size).')
    return support_masks.to(support_imgs.dtype)


def check_episode(query_imgs: Tensor, support_imgs: Optional[Tensor],
                  support_masks: Optional[Tensor]) -> Tensor:
    """Check a batch of episodes given as tensors; the masks as the
    supports' dtype."""
    if support_imgs is None or support_masks is None:
        raise ValueError(
            'predict_logits needs support_imgs and support_masks (or '
            'supports from encode_supports).')
    check_images('support_imgs', support_imgs, 5)
    masks = check_masks(support_imgs, support_masks)
    batch = query_imgs.shape[0]
    if support_imgs.shape[0] != batch:
        raise ValueError(f'Batch mismatch: {batch} query images but '
                         f'{support_imgs.shape[0]} support sets.')
    if support_imgs.shape[-2:] != query_imgs.shape[-2:]:
        raise ValueError(
            f'Query images are {tuple(query_imgs.shape[-2:])} but support '
            f'images are {tuple(support_imgs.shape[-2:])}: resize them to '
            'the same size.')
    return masks


def stack_supports(inputs: Tensor,
                   data_samples: OptSampleList) -> Tuple[Tensor, Tensor]:
    """Stack ``support_imgs`` / ``support_masks`` of the samples."""
    if not data_samples:
        raise ValueError(
            'FewShotSegmentor needs data_samples carrying support_imgs '
            'and support_masks (see PackFewShotInputs).')
    if len(data_samples) != inputs.shape[0]:
        raise ValueError(f'{inputs.shape[0]} query images but '
                         f'{len(data_samples)} data samples.')
    for sample in data_samples:
        if 'support_imgs' not in sample or 'support_masks' not in sample:
            raise ValueError(
                'Every data sample needs support_imgs and support_masks; '
                'use PackFewShotInputs and FewShotDataPreProcessor.')
    imgs = [s.support_imgs for s in data_samples]
    masks = [s.support_masks for s in data_samples]
    if (len({tuple(i.shape) for i in imgs}) != 1
            or len({tuple(m.shape) for m in masks}) != 1):
        raise ValueError(
            'All episodes of a batch need the same number of shots and '
            'image size, got support_imgs shapes '
            f'{[tuple(i.shape) for i in imgs]}.')
    return torch.stack(imgs), torch.stack(masks)


def check_encoded(supports: EncodedSupports, query_imgs: Tensor) -> None:
    """Refuse anything but an :class:`EncodedSupports` of the queries'
    size."""
    if not isinstance(supports, EncodedSupports):
        raise ValueError(
            'supports must be an EncodedSupports (from encode_supports), '
            f'got {type(supports).__name__}.')
    if supports.size != tuple(query_imgs.shape[-2:]):
        raise ValueError(
            f'The encoded supports are {supports.size} but the queries are '
            f'{tuple(query_imgs.shape[-2:])}: resize them to the same '
            'size.')


def check_backbone_and_head(backbone: nn.Module, head: nn.Module) -> None:
    """Check that the head was built for the backbone's features."""
    for attr in ('num_blocks', 'out_channels'):
        if not hasattr(backbone, attr):
            raise ValueError(
                f'FewShotSegmentor needs a block-feature backbone '
                f'exposing `{attr}` (e.g. BlockFeatureSwin, '
                f'BlockFeatureResNet); got '
                f'{type(backbone).__name__}.')
    head_blocks = getattr(head, 'num_blocks', None)
    if head_blocks is not None and tuple(head_blocks) != tuple(
            backbone.num_blocks):
        raise ValueError(
            f'decode_head.num_blocks={tuple(head_blocks)} does not match '
            f'the backbone\'s blocks per stage '
            f'{tuple(backbone.num_blocks)}: set them equal in the '
            'config.')
    head_channels = head.in_channels
    if tuple(head_channels) != tuple(backbone.out_channels):
        raise ValueError(
            f'decode_head.in_channels={tuple(head_channels)} does not '
            f'match the backbone\'s out_channels '
            f'{tuple(backbone.out_channels)}: set them equal in the '
            'config.')


def check_speed_options(cpu_parallel_images, fast_paths) -> None:
    """Validate the segmentor's ``cpu_parallel_images`` and
    ``fast_paths``."""
    value = cpu_parallel_images
    if value is not None and (not isinstance(value, int)
                              or isinstance(value, bool) or value < 1):
        raise ValueError(
            'FewShotSegmentor: cpu_parallel_images must be a positive '
            f'integer or None, got {value!r}.')
    if fast_paths not in (None, True, False):
        raise ValueError('FewShotSegmentor: fast_paths must be True, '
                         f'False or None, got {fast_paths!r}.')
