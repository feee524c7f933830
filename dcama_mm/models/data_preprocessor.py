# Copyright (c) dcama_mm contributors. All rights reserved.
from typing import Any, Dict, Optional, Sequence

import torch
from mmengine.model import ImgDataPreprocessor
from mmseg.registry import MODELS
from ..utils.checks import strict_arguments
from torch import Tensor


@MODELS.register_module()
@strict_arguments
class FewShotDataPreProcessor(ImgDataPreprocessor):
    """Normalise the query images and the support images of episodes.

    Moves the batch to the model's device, stacks the query images
    (``inputs``, a list of ``[3, H, W]`` tensors or a ``[B, 3, H, W]``
    tensor) into ``[B, 3, H, W]`` float, optionally flips BGR to RGB and
    normalises them; each data sample's ``support_imgs`` (``[K, 3, H, W]``)
    is converted and normalised the same way and stored back (as float) on
    the moved data sample, the caller's samples are left unchanged. Every
    episode of a batch must have the same K and image size.

    Both are normalised by mmengine's :class:`ImgDataPreprocessor` (without
    padding), through :meth:`normalize`; this class adds the supports and
    the checks of an episode batch.

    Args:
        mean (Sequence[float], optional): Per-channel mean (in the output
            channel order). Defaults to None (no normalisation).
        std (Sequence[float], optional): Per-channel std. Defaults to None.
        bgr_to_rgb (bool): Flip the channel order of the inputs.
            Defaults to False.
        rgb_to_bgr (bool): Same flip, for RGB inputs. Defaults to False.
        non_blocking (bool): Non-blocking device transfer.
            Defaults to False.
    """

    def __init__(self,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 bgr_to_rgb: bool = False,
                 rgb_to_bgr: bool = False,
                 non_blocking: bool = False) -> None:
        if bgr_to_rgb and rgb_to_bgr:
            raise ValueError(
                '`bgr_to_rgb` and `rgb_to_bgr` cannot both be true.')
        if (mean is None) != (std is None):
            raise ValueError('mean and std must be given together.')
        if mean is not None and (len(mean) != 3 or len(std) != 3):
            raise ValueError('mean and std need 3 values (one per '
                             f'channel), got mean={mean}, std={std}.')
        super().__init__(
            mean=mean,
            std=std,
            bgr_to_rgb=bgr_to_rgb,
            rgb_to_bgr=rgb_to_bgr,
            non_blocking=non_blocking)

    def normalize(self, imgs: Tensor) -> Tensor:
        """Float conversion, channel flip and normalisation.

        Args:
            imgs (Tensor): Images ``[..., 3, H, W]`` (any dtype).

        Returns:
            Tensor: A new float tensor of the same shape.
        """
        if imgs.dim() < 3 or imgs.shape[-3] != 3:
            raise ValueError(
                f'Expected images [..., 3, H, W], got {tuple(imgs.shape)}.')
        batch = imgs.reshape(-1, *imgs.shape[-3:])
        return super().forward(dict(inputs=batch))['inputs'].view(imgs.shape)

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        """Preprocess a batch from the dataloader.

        Args:
            data (dict): ``inputs`` and ``data_samples`` from
                ``pseudo_collate``.
            training (bool): Unused (no batch augmentation).
                Defaults to False.

        Returns:
            dict: ``inputs`` ``[B, 3, H, W]`` float and the moved
            ``data_samples`` with normalised ``support_imgs``.
        """
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, Tensor):
            if inputs.dim() == 3:
                inputs = inputs.unsqueeze(0)
        else:
            shapes = {tuple(img.shape) for img in inputs}
            if len(shapes) != 1:
                raise ValueError(
                    'The query images of a batch have different shapes '
                    f'{sorted(shapes)}; resize episodes to one network size '
                    'in the pipeline (ResizeEpisode).')
            inputs = torch.stack(list(inputs))
        inputs = self.normalize(inputs)

        data_samples = data.get('data_samples')
        if data_samples is not None:
            if len(data_samples) != inputs.shape[0]:
                raise ValueError(f'{inputs.shape[0]} query images but '
                                 f'{len(data_samples)} data samples.')
            support_shapes = set()
            for sample in data_samples:
                if 'support_imgs' in sample:
                    support_shapes.add(tuple(sample.support_imgs.shape))
                    sample.support_imgs = self.normalize(sample.support_imgs)
                sample.set_metainfo(
                    dict(batch_input_shape=tuple(inputs.shape[-2:])))
            if len(support_shapes) > 1:
                raise ValueError(
                    'The episodes of a batch must have the same number of '
                    'shots K and support image size, got support_imgs '
                    f'shapes {sorted(support_shapes)}.')
            if support_shapes and next(iter(support_shapes))[-2:] != tuple(
                    inputs.shape[-2:]):
                raise ValueError(
                    'Support images are '
                    f'{next(iter(support_shapes))[-2:]} but query images '
                    f'are {tuple(inputs.shape[-2:])}; resize both to the '
                    'same network size.')
        return dict(inputs=inputs, data_samples=data_samples)
