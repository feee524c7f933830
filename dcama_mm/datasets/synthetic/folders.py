# Copyright (c) dcama_mm contributors. All rights reserved.
"""A tiny synthetic dataset in the class-folder layout of your own data."""
import os.path as osp
from typing import Dict, List, Tuple

import numpy as np

from .common import one_object_image, save_mask, save_rgb


def make_synthetic_class_folders(root: str,
                                 num_classes: int = 6,
                                 images_per_class: int = 6,
                                 size_range: Tuple[int, int] = (64, 96),
                                 mask_suffix: str = '_mask.png',
                                 first_class_id: int = 0,
                                 seed: int = 0) -> Dict[str, List[str]]:
    """Write ``root/<class>/<n>.jpg`` + ``<n><mask_suffix>`` (0/255).

    The layout :class:`~dcama_mm.datasets.FewShotFolderDataset` reads; each
    image shows one object of its class (its own colours and texture) on a
    random background.

    Args:
        root (str): Output folder (the dataset's ``data_root``).
        num_classes (int): Class folders. Defaults to 6.
        images_per_class (int): Images per class. Defaults to 6.
        size_range (tuple[int, int]): Range of heights and widths.
            Defaults to (64, 96).
        mask_suffix (str): Mask name = image stem + this. Defaults to
            '_mask.png'.
        first_class_id (int): Appearance index of the first class (80 and
            up: looks no synthetic COCO class has). Defaults to 0.
        seed (int): Random seed. Defaults to 0.

    Returns:
        dict: ``{class name: [image paths]}``.
    """
    rng = np.random.default_rng(seed)
    written: Dict[str, List[str]] = {}
    for class_id in range(first_class_id, first_class_id + num_classes):
        name = f'thing_{class_id:02d}'
        written[name] = []
        for n in range(1, images_per_class + 1):
            img, obj = one_object_image(class_id, size_range, rng)
            img_path = osp.join(root, name, f'{n}.jpg')
            save_rgb(img_path, img)
            save_mask(
                osp.join(root, name, f'{n}{mask_suffix}'),
                obj.astype(np.uint8) * 255)
            written[name].append(img_path)
    return written
