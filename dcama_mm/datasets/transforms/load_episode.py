# Copyright (c) dcama_mm contributors. All rights reserved.
"""Load the images and masks of a few-shot episode."""
from typing import List, Optional, Tuple

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine import fileio

from mmseg.registry import TRANSFORMS


def _read_bytes(path: str, backend_args: Optional[dict], what: str) -> bytes:
    """Read a file, raising ``FileNotFoundError`` that names it."""
    try:
        return fileio.get(path, backend_args=backend_args)
    except (FileNotFoundError, IsADirectoryError) as err:
        raise FileNotFoundError(
            f'The {what} {path!r} of a few-shot episode does not exist; '
            'check `data_root` and the annotation/list files (re-run the '
            'dataset converter if the masks are missing).') from err


@TRANSFORMS.register_module()
class LoadEpisode(BaseTransform):
    """Load the query and support images and masks of an episode.

    Reads the paths written by
    :meth:`~dcama_mm.datasets.BaseFewShotDataset.get_episode_info` and turns
    each mask PNG into the episode class's mask with the episode's
    ``seg_lut`` (pixel value -> 0 background, 1 foreground, 255 ignore).

    Required keys: ``img_path``, ``seg_map_path``, ``support_img_paths``,
    ``support_seg_map_paths``, ``seg_lut``.

    Added keys:

    - ``img`` (np.ndarray): query image, ``uint8`` HxWx3 BGR.
    - ``gt_seg_map`` (np.ndarray): query mask, ``uint8`` HxW, 0/1/255.
    - ``support_imgs`` (list[np.ndarray]): support images, like ``img``.
    - ``support_masks`` (list[np.ndarray]): support masks, like
      ``gt_seg_map``.
    - ``ori_shape``, ``img_shape`` (tuple[int, int]): query size (h, w).
    - ``seg_fields`` (list[str]): ``['gt_seg_map']``.

    Mask PNGs must be single channel (a palette PNG gives its indices); for
    a 3-channel mask the first channel is used.

    Args:
        imdecode_backend (str): Image decoding backend of
            :func:`mmcv.imfrombytes`. Defaults to 'cv2'.
        seg_imdecode_backend (str): Decoding backend of the mask PNGs.
            'pillow' keeps the indices of palette PNGs. Defaults to 'pillow'.
        backend_args (dict, optional): File backend arguments of
            :func:`mmengine.fileio.get`. Defaults to None.
    """

    def __init__(self,
                 imdecode_backend: str = 'cv2',
                 seg_imdecode_backend: str = 'pillow',
                 backend_args: Optional[dict] = None) -> None:
        self.imdecode_backend = imdecode_backend
        self.seg_imdecode_backend = seg_imdecode_backend
        self.backend_args = None if backend_args is None else dict(
            backend_args)

    def _load_image(self, path: str) -> np.ndarray:
        content = _read_bytes(path, self.backend_args, 'image')
        try:
            img = mmcv.imfrombytes(
                content, flag='color', backend=self.imdecode_backend)
        except Exception as err:  # decoders raise various types
            raise ValueError(f'Cannot decode the image {path!r}: {err}; '
                             'the file is corrupt or not an image.') from err
        if img is None or img.ndim != 3 or img.size == 0:
            raise ValueError(f'Cannot decode the image {path!r}; the file is '
                             'corrupt or not an image.')
        return img

    def _load_mask(self, path: str, lut: np.ndarray,
                   img_shape: Tuple[int, int], img_path: str) -> np.ndarray:
        content = _read_bytes(path, self.backend_args, 'mask')
        try:
            raw = mmcv.imfrombytes(
                content, flag='unchanged', backend=self.seg_imdecode_backend)
        except Exception as err:
            raise ValueError(f'Cannot decode the mask {path!r}: {err}; the '
                             'file is corrupt or not an image.') from err
        if raw is None or raw.size == 0:
            raise ValueError(f'Cannot decode the mask {path!r}; the file is '
                             'corrupt or not an image.')
        if raw.ndim == 3:
            raw = raw[..., 0]
        if raw.dtype != np.uint8:
            if raw.min() < 0 or raw.max() > 255:
                raise ValueError(
                    f'The mask {path!r} has values outside 0..255 '
                    f'(dtype {raw.dtype}); masks must be 8-bit label PNGs.')
            raw = raw.astype(np.uint8)
        if raw.shape != tuple(img_shape):
            raise ValueError(
                f'The mask {path!r} has size {raw.shape} but its image '
                f'{img_path!r} has size {tuple(img_shape)}.')
        return lut[raw]

    def transform(self, results: dict) -> dict:
        """Load the episode's images and masks.

        Args:
            results (dict): The episode description.

        Returns:
            dict: A new dict with the loaded arrays added.
        """
        results = dict(results)
        lut = np.asarray(results['seg_lut'], dtype=np.uint8)
        if lut.shape != (256, ):
            raise ValueError('`seg_lut` must have 256 entries, got shape '
                             f'{lut.shape}.')
        img = self._load_image(results['img_path'])
        gt = self._load_mask(results['seg_map_path'], lut, img.shape[:2],
                             results['img_path'])
        support_imgs: List[np.ndarray] = []
        support_masks: List[np.ndarray] = []
        for img_path, seg_path in zip(results['support_img_paths'],
                                      results['support_seg_map_paths']):
            s_img = self._load_image(img_path)
            support_imgs.append(s_img)
            support_masks.append(
                self._load_mask(seg_path, lut, s_img.shape[:2], img_path))
        results.update(
            img=img,
            gt_seg_map=gt,
            support_imgs=support_imgs,
            support_masks=support_masks,
            ori_shape=img.shape[:2],
            img_shape=img.shape[:2],
            seg_fields=['gt_seg_map'])
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}('
                f'imdecode_backend={self.imdecode_backend!r}, '
                f'seg_imdecode_backend={self.seg_imdecode_backend!r}, '
                f'backend_args={self.backend_args})')
