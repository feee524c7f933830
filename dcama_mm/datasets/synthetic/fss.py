# Copyright (c) dcama_mm contributors. All rights reserved.
"""A tiny synthetic FSS-1000 in the real format."""
import os
import os.path as osp
from typing import Dict, List, Tuple

import numpy as np

from .common import one_object_image, save_mask, save_rgb


def make_synthetic_fss1000(root: str,
                           num_classes: Tuple[int, int, int] = (4, 2, 2),
                           images_per_class: int = 5,
                           size_range: Tuple[int, int] = (64, 96),
                           seed: int = 0) -> Dict[str, object]:
    """Write a tiny FSS-1000 in the real format.

    Layout (the one :class:`~dcama_mm.datasets.FSS1000Dataset` reads)::

        root/
        ├── <class>/1.jpg, 1.png, ..., <n>.jpg, <n>.png   masks 0/255
        └── splits/trn.txt, val.txt, test.txt             class names

    Each image shows one object of its class (class appearance from
    :func:`class_texture`, so the task is learnable) on a random background;
    its mask is a grey PNG with 255 on the object and 0 elsewhere.

    Args:
        root (str): Output folder (the dataset's ``data_root``).
        num_classes (tuple[int, int, int]): Classes in the train, val and
            test lists. Defaults to (4, 2, 2).
        images_per_class (int): Images per class (FSS-1000 has 10).
            Defaults to 5.
        size_range (tuple[int, int]): Range of image heights and widths.
            Defaults to (64, 96).
        seed (int): Random seed. Defaults to 0.

    Returns:
        dict: ``data_root`` (str), ``split_dir`` (str) and ``classes``
        (``{'trn' | 'val' | 'test': [class names]}``).
    """
    rng = np.random.default_rng(seed)
    classes: Dict[str, List[str]] = {}
    class_id = 0
    for split, num in zip(('trn', 'val', 'test'), num_classes):
        classes[split] = []
        for _ in range(num):
            name = f'synth_{class_id:03d}'
            classes[split].append(name)
            for n in range(1, images_per_class + 1):
                img, obj = one_object_image(class_id, size_range, rng)
                save_rgb(osp.join(root, name, f'{n}.jpg'), img)
                save_mask(
                    osp.join(root, name, f'{n}.png'),
                    obj.astype(np.uint8) * 255)
            class_id += 1
    split_dir = osp.join(root, 'splits')
    os.makedirs(split_dir, exist_ok=True)
    for split, names in classes.items():
        with open(osp.join(split_dir, f'{split}.txt'), 'w') as f:
            f.writelines(f'{name}\n' for name in names)
    return dict(data_root=root, split_dir=split_dir, classes=classes)
