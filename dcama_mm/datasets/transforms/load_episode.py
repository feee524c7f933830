# Copyright (c) dcama_mm contributors. All rights reserved.
"""Load the images and masks of a few-shot episode."""
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine import fileio

from mmseg.registry import TRANSFORMS
from ...utils.checks import strict_arguments
from .binary_mask import to_binary_mask
from .image_modes import decode_image, decode_mask

Source = Union[str, Path, np.ndarray]


def _read_bytes(path: str, backend_args: Optional[dict], what: str) -> bytes:
    """Read a file, raising ``FileNotFoundError`` that names it."""
    try:
        return fileio.get(path, backend_args=backend_args)
    except (FileNotFoundError, IsADirectoryError) as err:
        raise FileNotFoundError(
            f'The {what} {path!r} does not exist (for a dataset: check '
            '`data_root` and the annotation/list files, and re-run the '
            'dataset converter if masks are missing).') from err


@TRANSFORMS.register_module()
@strict_arguments
class LoadEpisode(BaseTransform):
    """Load the query and support images and masks of an episode.

    Reads the paths written by
    :meth:`~dcama_mm.datasets.BaseFewShotDataset.get_episode_info` and turns
    each mask PNG into the episode class's mask with the episode's
    ``seg_lut`` (pixel value -> 0 background, 1 foreground, 255 ignore), or,
    when ``seg_lut`` is None or absent, with the binary-mask rule of
    :mod:`~dcama_mm.datasets.transforms.binary_mask`.

    Images and masks already in memory are taken as they are, as mmseg's
    ``LoadImageFromNDArray`` does (this is how
    :class:`~dcama_mm.apis.FewShotInferencer` feeds a user's arrays through
    the test pipeline): the query as ``img`` (``uint8`` ``HxWx3`` BGR, or
    ``HxW`` grey) instead of ``img_path``; the supports as ``support_imgs``
    / ``support_masks``, lists whose items are arrays or paths, instead of
    ``support_img_paths`` / ``support_seg_map_paths``. Without
    ``seg_map_path`` (inference) the query has no ground truth.

    Image files of every mode (16-bit, palette, grey + alpha, 1-bit,
    float TIFF) are read as ``uint8`` BGR by the rule of
    :mod:`~dcama_mm.datasets.transforms.image_modes`, turned upright by
    their EXIF orientation unless the episode says ``exif_orientation=
    False`` (the benchmark datasets do: their annotations are drawn on the
    stored pixels, and the reference reads them unturned).

    Required keys: ``img_path`` or ``img``; ``support_img_paths`` or
    ``support_imgs``; ``support_seg_map_paths`` or ``support_masks``.
    Optional: ``seg_map_path``, ``seg_lut``, ``support_mask_labels`` (per
    support, the object's label in its mask, or None: rule 1 of the
    binary-mask rule; ignored with a ``seg_lut``),
    ``support_masks_nonempty`` (True: a support mask without foreground is
    refused, naming it and its values; the inferencer sets it),
    ``exif_orientation`` (bool, default True: images and masks as
    displayed; False: as stored).

    Added keys:

    - ``img`` (np.ndarray): query image, ``uint8`` HxWx3 BGR.
    - ``gt_seg_map`` (np.ndarray): query mask, ``uint8`` HxW, 0/1/255
      (only with ``seg_map_path``).
    - ``support_imgs`` (list[np.ndarray]): support images, like ``img``.
    - ``support_masks`` (list[np.ndarray]): support masks, like
      ``gt_seg_map``.
    - ``ori_shape``, ``img_shape`` (tuple[int, int]): query size (h, w).
    - ``seg_fields`` (list[str]): ``['gt_seg_map']`` (empty without it).

    Label mask PNGs must be single channel (a palette PNG gives its
    indices); for a 3-channel label mask the first channel is used.

    Args:
        imdecode_backend (str): Image decoding backend
            (:func:`~dcama_mm.datasets.transforms.image_modes.decode_image`:
            'cv2', with Pillow for what cv2 cannot read, or 'pillow').
            Defaults to 'cv2'.
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

    def _load_image(self, source: Source, what: str,
                    exif_orientation: bool = True) -> np.ndarray:
        if isinstance(source, np.ndarray):
            return as_image_array(source, what)
        path = str(source)
        content = _read_bytes(path, self.backend_args, what)
        return decode_image(content, f'{what} {path!r}',
                            self.imdecode_backend, exif_orientation)

    @staticmethod
    def _named(what: str, source: Source) -> str:
        """``what`` and the path for messages (an array: ``what`` alone)."""
        if isinstance(source, np.ndarray):
            return what
        return f'{what} {str(source)!r}'

    def _load_mask(self, source: Source, lut: Optional[np.ndarray],
                   img_shape: Tuple[int, int], img_name: str, what: str,
                   label: Optional[int] = None,
                   nonempty: bool = False,
                   exif_orientation: bool = True) -> np.ndarray:
        """Read a mask with ``lut`` (None: the binary-mask rule, with the
        object's ``label`` when given; ``nonempty``: refuse a mask without
        foreground); ``what`` and ``img_name`` name it and its image in
        messages."""
        name = self._named(what, source)
        palette = False
        if isinstance(source, np.ndarray):
            raw = source
        else:
            content = _read_bytes(str(source), self.backend_args, what)
            raw, palette = decode_mask(content, name,
                                       self.seg_imdecode_backend,
                                       exif_orientation)
        if lut is None:
            mask = to_binary_mask(raw, name, label=label, palette=palette,
                                  require_object=nonempty)
        else:
            if raw.ndim == 3:
                raw = raw[..., 0]
            if raw.dtype != np.uint8:
                if raw.min() < 0 or raw.max() > 255:
                    raise ValueError(
                        f'The {name} has values outside 0..255 (dtype '
                        f'{raw.dtype}); label masks must be 8-bit PNGs.')
                raw = raw.astype(np.uint8)
            mask = lut[raw]
        if mask.shape != tuple(img_shape):
            raise ValueError(_size_mismatch(name, mask.shape, img_name,
                                            img_shape))
        return mask

    def transform(self, results: dict) -> dict:
        """Load the episode's images and masks.

        Args:
            results (dict): The episode description.

        Returns:
            dict: A new dict with the loaded arrays added.
        """
        results = dict(results)
        lut = results.get('seg_lut')
        if lut is not None:
            lut = np.asarray(lut, dtype=np.uint8)
            if lut.shape != (256, ):
                raise ValueError('`seg_lut` must have 256 entries, got '
                                 f'shape {lut.shape}.')
        query = results['img'] if results.get('img') is not None else \
            results['img_path']
        upright = bool(results.get('exif_orientation', True))
        img = self._load_image(query, 'image', upright)
        if results.get('seg_map_path') is not None:
            results['gt_seg_map'] = self._load_mask(
                results['seg_map_path'], lut, img.shape[:2],
                self._named('image', query), 'mask',
                exif_orientation=upright)
            results['seg_fields'] = ['gt_seg_map']
        else:
            results['seg_fields'] = []
        support_imgs: List[np.ndarray] = []
        support_masks: List[np.ndarray] = []
        sources = results.get('support_imgs',
                              results.get('support_img_paths'))
        mask_sources = results.get('support_masks',
                                   results.get('support_seg_map_paths'))
        labels = results.get('support_mask_labels') or [None] * len(sources)
        if len(labels) != len(sources):
            raise ValueError(
                f'`support_mask_labels` has {len(labels)} entries for '
                f'{len(sources)} supports: give one (or None) per support.')
        for k, (source, mask_source, label) in enumerate(
                zip(sources, mask_sources, labels)):
            s_img = self._load_image(source, f'support image #{k}', upright)
            support_imgs.append(s_img)
            support_masks.append(
                self._load_mask(mask_source, lut, s_img.shape[:2],
                                self._named(f'support image #{k}', source),
                                f'support mask #{k}', label,
                                bool(results.get('support_masks_nonempty')),
                                upright))
        results.update(
            img=img,
            support_imgs=support_imgs,
            support_masks=support_masks,
            ori_shape=img.shape[:2],
            img_shape=img.shape[:2])
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}('
                f'imdecode_backend={self.imdecode_backend!r}, '
                f'seg_imdecode_backend={self.seg_imdecode_backend!r}, '
                f'backend_args={self.backend_args})')


def _size_mismatch(name: str, mask_shape: Tuple[int, int], img_name: str,
                   img_shape: Tuple[int, int]) -> str:
    """The message for a mask of another size than its image (``img_name``
    is e.g. ``"image 'a.jpg'"``); a mask of the image's size turned by 90
    degrees gets the EXIF hint (images are read as displayed)."""
    message = (f'The {name} has size {mask_shape[0]}x{mask_shape[1]} (h x w) '
               f'but its {img_name} has size {img_shape[0]}x{img_shape[1]}'
               ': a mask must have the size of its image')
    if tuple(mask_shape[:2]) == tuple(img_shape[1::-1]):
        message += (
            ' as displayed. If the image carries an EXIF rotation (phone '
            'photos), it is read as displayed, turned upright: draw the '
            'mask on the image as displayed, or save the image upright '
            'without the tag')
    return message + '.'


def as_image_array(img: np.ndarray, what: str) -> np.ndarray:
    """Check an in-memory image: ``uint8`` ``HxWx3`` BGR (``HxW`` grey is
    expanded to 3 channels, in a new array)."""
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(
            f'The {what} must be a uint8 HxWx3 (BGR) or HxW array, got '
            f'dtype {img.dtype} and shape {tuple(img.shape)} (give a 16-bit '
            'or float image as a file, or convert it with dcama_mm.datasets.'
            'transforms.image_modes.to_uint8_image).')
    if min(img.shape[:2]) < 1:
        raise ValueError(f'The {what} is empty: shape {tuple(img.shape)}.')
    return img
