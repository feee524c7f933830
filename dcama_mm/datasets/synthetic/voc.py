# Copyright (c) dcama_mm contributors. All rights reserved.
"""A tiny synthetic PASCAL-5i in the real VOC2012 / SBD formats."""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image

from .common import (class_texture, paint, place_objects, random_background,
                     random_blob, save_rgb)

#: Value of the boundary band around objects (ignored by the metric).
BOUNDARY = 255


def voc_palette() -> List[int]:
    """The PASCAL VOC colour map, as a flat 768-entry PIL palette."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette += [r, g, b]
    return palette


def save_palette_mask(path: str, mask: np.ndarray) -> None:
    """Write a label mask as a VOC palette PNG (mode 'P').

    Args:
        path (str): Output file; its folder is created.
        mask (np.ndarray): HxW ``uint8`` class indices.
    """
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    img = Image.fromarray(mask.astype(np.uint8))
    img.putpalette(voc_palette())  # turns the 'L' image into a 'P' one
    img.save(path)


def _draw_image(classes: Sequence[int], size: Tuple[int, int],
                rng: np.random.Generator,
                boundary: bool) -> Tuple[np.ndarray, np.ndarray]:
    """One RGB image with one object per entry of ``classes`` and its mask
    (class index + 1 per pixel, 255 on a 1-pixel band at object borders)."""
    h, w = size
    img = random_background(h, w, rng)
    label = np.zeros((h, w), dtype=np.uint8)
    for class_id, (center, radius) in zip(
            classes, place_objects(h, w, len(classes), rng)):
        obj = random_blob(h, w, rng, center, radius)
        paint(img, obj, class_texture(class_id, h, w, rng))
        label[obj.astype(bool)] = class_id + 1
    if boundary:
        kernel = np.ones((3, 3), dtype=np.uint8)
        fg = (label > 0).astype(np.uint8)
        edges = (cv2.dilate(fg, kernel) != cv2.erode(fg, kernel))
        # Only the borders between object and background, or two objects.
        grad = cv2.dilate(label, kernel) != cv2.erode(label, kernel)
        label[edges | (grad & (label > 0))] = BOUNDARY
    return img, label


def make_synthetic_pascal5i(root: str,
                            train_images_per_class: int = 4,
                            test_images_per_class: int = 3,
                            num_classes: int = 20,
                            size_range: Tuple[int, int] = (64, 96),
                            second_object_prob: float = 0.3,
                            boundary: bool = True,
                            seed: int = 0,
                            skip_classes: Optional[Sequence[int]] = None
                            ) -> Dict[str, object]:
    """Write a tiny PASCAL-5i in the real formats.

    Layout (the one :class:`~dcama_mm.datasets.PascalVOC5iDataset` reads)::

        root/
        ├── JPEGImages/<name>.jpg
        ├── SegmentationClassAug/<name>.png   palette PNG, class + 1, 255
        └── splits/trn/fold{0-3}.txt, splits/val/fold{0-3}.txt

    Every class gets ``train_images_per_class`` training images and
    ``test_images_per_class`` test images in which it is the main object
    (class appearance from :func:`class_texture`, so the task is
    learnable); with probability ``second_object_prob`` an image also shows
    an object of another class, and lists it for that class too, as VOC
    images do. ``trn/fold{j}.txt`` lists the training (image, class) pairs
    of fold ``j``'s classes, ``val/fold{j}.txt`` the test pairs, as lines
    ``<name>__<class + 1, two digits>``.

    Args:
        root (str): Output folder (the dataset's ``data_root``).
        train_images_per_class (int): Training images per class.
            Defaults to 4.
        test_images_per_class (int): Test images per class. Defaults to 3.
        num_classes (int): Number of classes (a multiple of 4).
            Defaults to 20.
        size_range (tuple[int, int]): Range of image heights and widths.
            Defaults to (64, 96).
        second_object_prob (float): Probability of a second object of
            another class. Defaults to 0.3.
        boundary (bool): Whether to draw a 255 band around objects (as
            SegmentationClassAug). Defaults to True.
        seed (int): Random seed. Defaults to 0.
        skip_classes (Sequence[int], optional): Classes that get no image as
            main object (to test small classes). Defaults to None.

    Returns:
        dict: ``data_root`` (str), ``split_dir`` (str),
        ``pairs`` (``{'trn' | 'val': [(name, class_id), ...]}``) and
        ``num_images`` (int).
    """
    if num_classes % 4:
        raise ValueError(
            f'num_classes must be a multiple of 4, got {num_classes}.')
    rng = np.random.default_rng(seed)
    skip = set(skip_classes or ())
    img_dir = osp.join(root, 'JPEGImages')
    seg_dir = osp.join(root, 'SegmentationClassAug')
    pairs: Dict[str, List[Tuple[str, int]]] = dict(trn=[], val=[])
    count = 0
    for split, per_class in (('trn', train_images_per_class),
                             ('val', test_images_per_class)):
        for class_id in range(num_classes):
            if class_id in skip:
                continue
            for _ in range(per_class):
                classes = [class_id]
                if rng.uniform() < second_object_prob:
                    other = int(rng.integers(num_classes - 1))
                    other += other >= class_id
                    if other not in skip:
                        classes.append(other)
                size = tuple(int(s) for s in rng.integers(
                    size_range[0], size_range[1] + 1, size=2))
                img, label = _draw_image(classes, size, rng, boundary)
                name = f'{2007 + count % 6}_{count:06d}'
                count += 1
                save_rgb(osp.join(img_dir, name + '.jpg'), img)
                save_palette_mask(osp.join(seg_dir, name + '.png'), label)
                present = set(np.unique(label).tolist()) - {0, BOUNDARY}
                for c in classes:
                    if c + 1 in present:
                        pairs[split].append((name, c))
    per_fold = num_classes // 4
    split_dir = osp.join(root, 'splits')
    for split, split_pairs in pairs.items():
        os.makedirs(osp.join(split_dir, split), exist_ok=True)
        for fold in range(4):
            fold_classes = range(fold * per_fold, (fold + 1) * per_fold)
            lines = [
                f'{name}__{c + 1:02d}\n' for name, c in sorted(split_pairs)
                if c in fold_classes
            ]
            with open(osp.join(split_dir, split, f'fold{fold}.txt'),
                      'w') as f:
                f.writelines(lines)
    return dict(
        data_root=root, split_dir=split_dir, pairs=pairs, num_images=count)
