# Copyright (c) dcama_mm contributors. All rights reserved.
"""Random few-shot episodes for timing and counting a model."""
from typing import Dict, Sequence, Union

import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample


def make_episodes(batch: int,
                  shots: int,
                  size: Sequence[int],
                  device: Union[str, torch.device] = 'cpu',
                  seed: int = 0) -> Dict[str, object]:
    """Random normalised episodes with rectangular 0/1 masks.

    The images are standard normal noise (what normalised images look like
    to the model's arithmetic); each mask is a rectangle of half the height
    and width at a random place. The episodes are a function of ``seed``
    only (a local generator; torch's global one is not touched).

    Args:
        batch (int): Episodes B.
        shots (int): Supports K per episode.
        size (Sequence[int]): Image size ``(H, W)``.
        device (str | torch.device): Device of the tensors.
            Defaults to 'cpu'.
        seed (int): Random seed. Defaults to 0.

    Returns:
        dict: ``query_imgs`` ``[B, 3, H, W]``, ``support_imgs``
        ``[B, K, 3, H, W]``, ``support_masks`` ``[B, K, H, W]`` (0/1
        float), ``query_masks`` ``[B, H, W]`` (long) and ``data_samples``
        (B :class:`SegDataSample` with ``gt_sem_seg``, ``support_imgs`` and
        ``support_masks``, as ``FewShotSegmentor.loss`` takes them).
    """
    h, w = size
    gen = torch.Generator().manual_seed(seed)
    query = torch.randn(batch, 3, h, w, generator=gen)
    supports = torch.randn(batch, shots, 3, h, w, generator=gen)
    masks = torch.zeros(batch, shots + 1, h, w)
    corners = torch.rand(batch, shots + 1, 2, generator=gen)
    for b in range(batch):
        for k in range(shots + 1):
            y0 = int(corners[b, k, 0] * h / 2)
            x0 = int(corners[b, k, 1] * w / 2)
            masks[b, k, y0:y0 + h // 2, x0:x0 + w // 2] = 1
    episodes: Dict[str, object] = dict(
        query_imgs=query.to(device),
        support_imgs=supports.to(device),
        support_masks=masks[:, 1:].contiguous().to(device),
        query_masks=masks[:, 0].long().to(device))
    samples = []
    for b in range(batch):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=episodes['query_masks'][b][None])
        sample.support_imgs = episodes['support_imgs'][b]
        sample.support_masks = episodes['support_masks'][b]
        samples.append(sample)
    episodes['data_samples'] = samples
    return episodes
