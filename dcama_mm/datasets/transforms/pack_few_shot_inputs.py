# Copyright (c) dcama_mm contributors. All rights reserved.
"""Pack a few-shot episode into ``inputs`` and a ``SegDataSample``."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import PixelData

from mmseg.registry import TRANSFORMS
from mmseg.structures import SegDataSample
from ...utils.checks import strict_arguments

IGNORE_INDEX = 255


def _img_to_tensor(img: np.ndarray) -> torch.Tensor:
    """HxWx3 ``uint8`` array -> contiguous 3xHxW tensor (a copy)."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


@TRANSFORMS.register_module()
@strict_arguments
class PackFewShotInputs(BaseTransform):
    """Pack an episode for :class:`FewShotDataPreProcessor`.

    The output is ``dict(inputs=..., data_samples=...)``:

    - ``inputs``: the query image, ``uint8`` tensor ``[3, H, W]`` (BGR).
    - ``data_samples``: a :class:`SegDataSample` with ``gt_sem_seg``
      (``PixelData``, long ``[1, H, W]``, 0/1/255; when the query has a
      mask), ``support_imgs`` (``uint8`` ``[K, 3, H, W]``), ``support_masks``
      (``float32`` ``[K, H, W]``, 0/1, ignore -> 0; both left out for an
      episode without supports, e.g. a query of
      :class:`~dcama_mm.apis.FewShotInferencer`, whose support set is
      encoded once), ``ori_gt_sem_seg`` when the pipeline kept the
      original-size query mask, and the ``meta_keys`` present in the
      results as metainfo.

    All images of an episode must have the same size (use
    :class:`ResizeEpisode` first).

    Args:
        meta_keys (Sequence[str]): Keys copied into the metainfo when
            present. Defaults to ('img_path', 'seg_map_path', 'ori_shape',
            'img_shape', 'scale_factor', 'class_id', 'support_img_paths',
            'episode_index', 'shots').
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('img_path', 'seg_map_path',
                                             'ori_shape', 'img_shape',
                                             'scale_factor', 'class_id',
                                             'support_img_paths',
                                             'episode_index', 'shots')
                 ) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        """Pack the episode.

        Args:
            results (dict): The loaded and resized episode.

        Returns:
            dict: ``inputs`` and ``data_samples``.
        """
        img = results['img']
        shape = img.shape[:2]
        for i, s_img in enumerate(results['support_imgs']):
            if s_img.shape[:2] != shape:
                raise ValueError(
                    f'Support image {i} has size {s_img.shape[:2]} but the '
                    f'query has {shape}; add a `ResizeEpisode` transform '
                    'before `PackFewShotInputs`.')
        data_sample = SegDataSample()
        for key, field in (('gt_seg_map', 'gt_sem_seg'),
                           ('ori_gt_seg_map', 'ori_gt_sem_seg')):
            if key in results:
                data_sample.set_data({
                    field:
                    PixelData(
                        data=torch.from_numpy(
                            results[key][None].astype(np.int64)))
                })
        if results['support_imgs']:
            data_sample.support_imgs = torch.stack(
                [_img_to_tensor(s) for s in results['support_imgs']])
            masks = np.stack(results['support_masks'])
            data_sample.support_masks = torch.from_numpy(
                (masks == 1).astype(np.float32))
        data_sample.set_metainfo(
            {k: results[k]
             for k in self.meta_keys if k in results})
        return dict(inputs=_img_to_tensor(img), data_samples=data_sample)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
