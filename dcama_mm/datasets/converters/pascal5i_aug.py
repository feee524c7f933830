# Copyright (c) dcama_mm contributors. All rights reserved.
"""Build PASCAL-5i's ``SegmentationClassAug`` from VOC2012 and SBD.

The standard construction: every image with a VOC2012 mask
(``SegmentationClass/*.png``, palette PNGs whose indices are the class
numbers, 255 on object boundaries) keeps it, indices as they are; every
other image of SBD (``benchmark_RELEASE/dataset/cls/*.mat``, the class map
``GTcls.Segmentation``, no boundaries) gets SBD's mask. The output is one
single-channel PNG per image, pixel = class index + 1 (0 background, 255
boundary), the format :class:`~dcama_mm.datasets.PascalVOC5iDataset` reads.
"""
import os
import os.path as osp
import sys
import time
from typing import List, Optional

import cv2
import numpy as np
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from PIL import Image

__all__ = ['find_sbd_cls_dir', 'read_voc_mask', 'read_sbd_mask',
           'build_segmentation_class_aug']

#: The 20 PASCAL VOC classes, pixel value - 1.
VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
               'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
               'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
               'train', 'tvmonitor')


def find_sbd_cls_dir(sbd_dir: str) -> str:
    """SBD's ``cls`` folder under ``sbd_dir``.

    Accepts the folder holding ``benchmark_RELEASE`` or
    ``benchmark_RELEASE`` itself.

    Raises:
        FileNotFoundError: If neither layout is there.
    """
    for sub in (('benchmark_RELEASE', 'dataset', 'cls'), ('dataset', 'cls')):
        path = osp.join(sbd_dir, *sub)
        if osp.isdir(path):
            return path
    raise FileNotFoundError(
        f'SBD_DIR {sbd_dir!r}: no benchmark_RELEASE/dataset/cls/ folder '
        '(the .mat class masks of the SBD archive benchmark.tgz) in it.')


def read_voc_mask(path: str) -> np.ndarray:
    """A VOC2012 ``SegmentationClass`` PNG as class numbers (palette
    indices; 255 = boundary).

    Raises:
        ValueError: If it is not a palette (or grey) PNG.
    """
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            mask = np.array(img)
    except OSError as err:
        raise ValueError(f'Cannot read the VOC mask {path!r}: {err}') from err
    if mode not in ('P', 'L'):
        raise ValueError(
            f'The VOC mask {path!r} is a {mode!r} image; VOC2012\'s '
            'SegmentationClass/ PNGs are palette images whose indices are '
            'the class numbers (was it converted to RGB?).')
    return mask.astype(np.uint8)


def read_sbd_mask(path: str) -> np.ndarray:
    """An SBD ``cls/*.mat`` file's ``GTcls.Segmentation`` class map.

    Raises:
        ValueError: If the file cannot be read or lacks that field.
    """
    from scipy.io import loadmat
    try:
        data = loadmat(path, squeeze_me=True, struct_as_record=False)
        mask = np.asarray(data['GTcls'].Segmentation)
    except (KeyError, AttributeError) as err:
        raise ValueError(
            f'The SBD file {path!r} has no GTcls.Segmentation (is it from '
            'benchmark_RELEASE/dataset/cls/?).') from err
    except Exception as err:  # scipy raises many types on a bad file
        raise ValueError(
            f'Cannot read the SBD file {path!r} as a MATLAB file: '
            f'{err!r}.') from err
    if mask.ndim != 2 or mask.size == 0 or mask.min() < 0 or (
            mask.max() > len(VOC_CLASSES)):
        raise ValueError(
            f'The SBD file {path!r}: GTcls.Segmentation must be a 2-D map '
            f'of class numbers 0..{len(VOC_CLASSES)}, got shape '
            f'{mask.shape}.')
    return mask.astype(np.uint8)


def build_segmentation_class_aug(voc_dir: str,
                                 sbd_dir: str,
                                 out_dir: Optional[str] = None,
                                 force: bool = False) -> dict:
    """Write ``SegmentationClassAug/`` from VOC2012 and SBD.

    Args:
        voc_dir (str): ``VOCdevkit/VOC2012`` (with ``SegmentationClass/``).
        sbd_dir (str): The SBD folder (with ``benchmark_RELEASE/``).
        out_dir (str, optional): Output folder. Defaults to None,
            ``voc_dir/SegmentationClassAug``.
        force (bool): Overwrite an existing non-empty output folder.
            Defaults to False.

    Returns:
        dict: Summary: ``voc`` and ``sbd`` (images from each source),
        ``classes`` (names of the classes seen), ``missing_images`` (masks
        without a ``JPEGImages/`` image), ``out_dir``, ``seconds``.
    """
    start = time.time()
    voc_mask_dir = osp.join(voc_dir, 'SegmentationClass')
    if not osp.isdir(voc_mask_dir):
        raise FileNotFoundError(
            f'VOC2012_DIR {voc_dir!r}: no SegmentationClass/ folder; give '
            'the VOCdevkit/VOC2012 folder of the VOC2012 trainval archive.')
    cls_dir = find_sbd_cls_dir(sbd_dir)
    out_dir = out_dir or osp.join(voc_dir, 'SegmentationClassAug')
    if osp.isdir(out_dir) and os.listdir(out_dir) and not force:
        raise FileExistsError(
            f'{out_dir!r} already exists and is not empty; pass --force to '
            'overwrite it.')
    voc = sorted(n[:-4] for n in os.listdir(voc_mask_dir)
                 if n.endswith('.png'))
    if not voc:
        raise FileNotFoundError(
            f'VOC2012_DIR {voc_dir!r}: SegmentationClass/ holds no .png.')
    known = set(voc)
    sbd = sorted(n[:-4] for n in os.listdir(cls_dir)
                 if n.endswith('.mat') and n[:-4] not in known)
    os.makedirs(out_dir, exist_ok=True)
    seen = np.zeros(256, dtype=bool)
    jobs: List[tuple] = [(s, osp.join(voc_mask_dir, s + '.png'), True)
                         for s in voc]
    jobs += [(s, osp.join(cls_dir, s + '.mat'), False) for s in sbd]
    print_log(
        f'Writing {len(jobs)} masks ({len(voc)} from VOC2012, {len(sbd)} '
        f'from SBD) to {out_dir}',
        logger='current')
    bar = ProgressBar(len(jobs))
    missing = 0
    for stem, path, from_voc in jobs:
        mask = read_voc_mask(path) if from_voc else read_sbd_mask(path)
        seen[np.unique(mask)] = True
        cv2.imwrite(osp.join(out_dir, stem + '.png'), mask)
        missing += not osp.isfile(osp.join(voc_dir, 'JPEGImages',
                                           stem + '.jpg'))
        bar.update()
    sys.stdout.write('\n')
    return dict(
        voc=len(voc),
        sbd=len(sbd),
        classes=[c for i, c in enumerate(VOC_CLASSES) if seen[i + 1]],
        missing_images=missing,
        out_dir=out_dir,
        seconds=round(time.time() - start, 1))
