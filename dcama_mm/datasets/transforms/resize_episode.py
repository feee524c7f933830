# Copyright (c) dcama_mm contributors. All rights reserved.
"""Resize every image and mask of a few-shot episode."""
from typing import Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from mmseg.registry import TRANSFORMS
from ...utils.checks import strict_arguments

#: The largest stride of the backbones (ResNet's and Swin's last stage): a
#: network size below it leaves the deepest features no room, and the
#: masks come out empty. Larger sizes need not be multiples of it.
BACKBONE_STRIDE = 32


def network_size_problem(size: Tuple[int, int]) -> Optional[str]:
    """Why a network size ``(h, w)`` cannot work, or None when it can.

    The one wording of the rule, used by the inferencer's ``img_size``
    check and by the config checks of the tools' pipelines.

    Args:
        size (tuple[int, int]): The network size ``(h, w)``.

    Returns:
        str | None: ``'<h>x<w> (h x w): each side must be at least the
        backbone's largest stride, 32, ...'`` for a side below
        :data:`BACKBONE_STRIDE`; None otherwise.
    """
    if min(size) >= BACKBONE_STRIDE:
        return None
    return (f'{size[0]}x{size[1]} (h x w): each side must be at least the '
            f"backbone's largest stride, {BACKBONE_STRIDE}, or the deepest "
            'features have no room and the masks come out empty.')


def as_size_pair(size: Union[int, Sequence[int]], name: str,
                 order: str) -> Tuple[int, int]:
    """``size`` as a pair of positive ints (an int means a square).

    Args:
        size (int | Sequence[int]): The size given.
        name (str): The option, for the message.
        order (str): What the pair holds, e.g. ``'(width, height)'``.

    Raises:
        ValueError: Naming ``name``, when it is not such a size.
    """
    pair = (size, size) if isinstance(size, int) else tuple(
        int(s) for s in size)
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f'{name} must be a positive int or a pair {order}, '
                         f'but got {size!r}.')
    return pair


@TRANSFORMS.register_module()
@strict_arguments
class ResizeEpisode(BaseTransform):
    """Resize the query and the supports of an episode to one fixed size.

    Images are resized with ``interpolation`` (PIL bilinear by default, as
    the reference's torchvision ``Resize`` on PIL images), masks with
    nearest neighbour (``floor(dst * src / dst)``, as ``torch``'s
    ``interpolate(mode='nearest')``). The aspect ratio is not kept, as in the
    reference.

    Required keys: ``img``, ``support_imgs``, ``support_masks``; optional
    ``gt_seg_map`` (absent at inference).

    Modified keys: ``img``, ``gt_seg_map``, ``support_imgs``,
    ``support_masks``, ``img_shape``.

    Added keys: ``scale_factor`` (w, h) of the query, and
    ``ori_gt_seg_map`` (the query mask at its original size) when
    ``keep_ori_seg`` is True.

    Args:
        scale (Sequence[int] | int): Output size ``(width, height)``, as in
            mmcv; an int means a square. Defaults to (384, 384).
        interpolation (str): Image interpolation of :func:`mmcv.imresize`.
            Defaults to 'bilinear'.
        backend (str): Image resize backend, 'pillow' or 'cv2'.
            Defaults to 'pillow'.
        keep_ori_seg (bool): Whether to keep the query mask at its original
            size as ``ori_gt_seg_map`` (for original-size evaluation).
            Defaults to True.
    """

    def __init__(self,
                 scale: Sequence[int] = (384, 384),
                 interpolation: str = 'bilinear',
                 backend: str = 'pillow',
                 keep_ori_seg: bool = True) -> None:
        scale = as_size_pair(scale, '`scale`', '(width, height)')
        if backend not in ('pillow', 'cv2'):
            raise ValueError(
                f"`backend` must be 'pillow' or 'cv2', but got {backend!r}.")
        self.scale: Tuple[int, int] = scale
        self.interpolation = interpolation
        self.backend = backend
        self.keep_ori_seg = keep_ori_seg

    def _resize_img(self, img: np.ndarray) -> np.ndarray:
        return mmcv.imresize(
            img,
            self.scale,
            interpolation=self.interpolation,
            backend=self.backend)

    def _resize_mask(self, mask: np.ndarray) -> np.ndarray:
        return mmcv.imresize(
            mask, self.scale, interpolation='nearest', backend='cv2')

    def transform(self, results: dict) -> dict:
        """Resize the episode.

        Args:
            results (dict): The loaded episode.

        Returns:
            dict: A new dict with the resized arrays.
        """
        results = dict(results)
        h, w = results['img'].shape[:2]
        if 'gt_seg_map' in results:
            if self.keep_ori_seg:
                results['ori_gt_seg_map'] = results['gt_seg_map']
            results['gt_seg_map'] = self._resize_mask(results['gt_seg_map'])
        results['img'] = self._resize_img(results['img'])
        results['support_imgs'] = [
            self._resize_img(img) for img in results['support_imgs']
        ]
        results['support_masks'] = [
            self._resize_mask(mask) for mask in results['support_masks']
        ]
        results['img_shape'] = results['img'].shape[:2]
        results['scale_factor'] = (self.scale[0] / w, self.scale[1] / h)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scale={self.scale}, '
                f'interpolation={self.interpolation!r}, '
                f'backend={self.backend!r}, '
                f'keep_ori_seg={self.keep_ori_seg})')
