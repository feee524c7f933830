# Copyright (c) dcama_mm contributors. All rights reserved.
"""Index the reference's pre-rendered COCO-20i label PNGs (no rendering).

The reference DCAMA/HSNet code distributes one label PNG per COCO 2014
image, ``<label dir>/{train2014,val2014}/<image stem>.png`` with pixel =
class index + 1 (0 = background). This module writes the class index files
of :class:`~dcama_mm.datasets.COCO20iDataset` pointing at those PNGs, from
the reference's split files (``--ref-splits``: no file is read but the
pickles, the PNGs are only checked to exist) or, without them, from a scan
of the PNGs' pixel values.
"""
import logging
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional

import cv2
import numpy as np
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from ..coco20i import COCO_CATEGORIES
from .coco20i_index import load_ref_split, write_class_index

__all__ = ['index_label_pngs']

_OPTION = '--use-label-pngs'


def _label_folder(coco_root: str, label_dir: str, image_dir: str) -> str:
    """The split's PNG folder; an error naming the option if it has none."""
    folder = osp.join(coco_root, label_dir, image_dir)
    if not osp.isdir(folder):
        raise FileNotFoundError(
            f'{_OPTION} {label_dir}: the folder {folder!r} does not exist; '
            'expected the label PNGs as <COCO_ROOT>/<dir>/{train2014,'
            'val2014}/<image stem>.png (e.g. --use-label-pngs annotations).')
    if not any(name.endswith('.png') for name in os.listdir(folder)):
        raise FileNotFoundError(
            f'{_OPTION} {label_dir}: the folder {folder!r} holds no .png '
            'file; it must hold the label PNGs (pixel = class index + 1).')
    return folder


def _scan(folder: str, image_dir: str, min_area: int,
          num_classes: int) -> List[List[str]]:
    """Per class, the images whose PNG has >= ``min_area`` of its pixels."""
    names = sorted(n for n in os.listdir(folder) if n.endswith('.png'))
    class_images: List[List[str]] = [[] for _ in range(num_classes)]
    bar = ProgressBar(len(names))
    for name in names:
        path = osp.join(folder, name)
        label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if label is None or label.ndim != 2 or label.dtype != np.uint8:
            raise ValueError(
                f'{_OPTION}: {path!r} is not a single-channel 8-bit label '
                'PNG (pixel = class index + 1).')
        counts = np.bincount(label.reshape(-1), minlength=256)
        if counts[num_classes + 1:255].any():
            raise ValueError(
                f'{_OPTION}: {path!r} has pixel values above '
                f'{num_classes} (other than 255); expected class index + 1 '
                f'in 1..{num_classes}.')
        stem = name[:-len('.png')]
        for c in np.flatnonzero(counts[1:num_classes + 1] >= min_area):
            class_images[c].append(f'{image_dir}/{stem}.jpg')
        bar.update()
    sys.stdout.write('\n')
    return class_images


def index_label_pngs(coco_root: str,
                     label_dir: str,
                     image_dir: str,
                     out_dir: str,
                     ref_split_files: Optional[Dict[int, str]] = None,
                     min_area: int = 1,
                     force: bool = False) -> dict:
    """Write the class index file(s) of one split over existing label PNGs.

    Args:
        coco_root (str): COCO root, with ``<image_dir>/*.jpg``.
        label_dir (str): Folder of the label PNGs, relative to ``coco_root``
            (or absolute), holding ``<image_dir>/<stem>.png``.
        image_dir (str): 'train2014' or 'val2014'.
        out_dir (str): Where the index files go.
        ref_split_files (dict[int, str], optional): fold -> the reference's
            ``fold<i>.pkl`` of this split: write
            ``<image_dir>_class_index_fold<i>.json`` with its lists, in its
            order. Defaults to None: scan the PNGs and write
            ``<image_dir>_class_index.json``.
        min_area (int): With a scan, the minimum number of pixels of a class
            for an image to be listed for it. Defaults to 1.
        force (bool): Overwrite existing index files. Defaults to False.

    Returns:
        dict: Summary (split, images, classes, written files, ...).
    """
    start = time.time()
    folder = _label_folder(coco_root, label_dir, image_dir)
    classes = [name for _, name in COCO_CATEGORIES]
    header = dict(
        image_dir=image_dir,
        mask_dir=osp.relpath(folder, coco_root).replace(os.sep, '/'),
        classes=classes,
        category_ids=[cid for cid, _ in COCO_CATEGORIES],
        min_area=min_area)
    if ref_split_files:
        targets = {
            fold: osp.join(out_dir, f'{image_dir}_class_index_fold{fold}.json')
            for fold in sorted(ref_split_files)
        }
    else:
        targets = {None: osp.join(out_dir, f'{image_dir}_class_index.json')}
    existing = [p for p in targets.values() if osp.exists(p)]
    if existing and not force:
        raise FileExistsError(
            f'{existing[0]!r} already exists; pass --force to overwrite it.')
    os.makedirs(out_dir, exist_ok=True)
    stems = {
        n[:-len('.png')]
        for n in os.listdir(folder) if n.endswith('.png')
    }
    lists_per_target: Dict[Optional[int], List[List[str]]] = {}
    if ref_split_files:
        for fold, pkl in sorted(ref_split_files.items()):
            lists = load_ref_split(pkl, len(classes))
            for names in lists:
                for name in names:
                    stem = osp.splitext(osp.basename(name))[0]
                    if not name.startswith(f'{image_dir}/'):
                        raise ValueError(
                            f'The split file {pkl!r} lists {name!r}, not an '
                            f'image of {image_dir}/; does it belong to the '
                            'other split?')
                    if stem not in stems:
                        raise FileNotFoundError(
                            f'The split file {pkl!r} lists {name!r} but '
                            f'{_OPTION} has no {stem}.png in {folder!r}.')
            lists_per_target[fold] = lists
    else:
        print_log(f'Scanning {len(stems)} label PNGs of {folder}',
                  logger='current')
        lists_per_target[None] = _scan(folder, image_dir, max(min_area, 1),
                                       len(classes))
    missing = sorted({
        n for lists in lists_per_target.values() for names in lists
        for n in names if not osp.isfile(osp.join(coco_root, n))
    })
    if missing:
        print_log(
            f'{len(missing)} listed {image_dir} image(s) are not in '
            f'{coco_root!r}, e.g. {missing[0]!r}; episodes using them will '
            'fail to load.',
            logger='current',
            level=logging.WARNING)
    for target, lists in lists_per_target.items():
        write_class_index(targets[target], header, lists, {})
    listed = {n for lists in lists_per_target.values() for names in lists
              for n in names}
    return dict(
        split=image_dir,
        label_pngs=len(stems),
        images=len(listed),
        classes=sum(1 for c in range(len(classes)) if any(
            lists[c] for lists in lists_per_target.values())),
        missing_images=len(missing),
        seconds=round(time.time() - start, 1),
        written=list(targets.values()))
