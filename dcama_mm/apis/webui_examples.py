# Copyright (c) dcama_mm contributors. All rights reserved.
"""The example episode the web page (:mod:`dcama_mm.apis.webui`) opens with.

Small synthetic images drawn with :mod:`dcama_mm.datasets.synthetic`'s
building blocks, in the look of the classes the demo model
(``configs/dcama_synthetic_demo.py``, fold 0) has never been trained on:
two classes, each shown by its support images and masks, and query images
that hold one object of each class. They are generated into a cache folder
at start-up (a few kB, in well under a second), so nothing large is kept in
the repository.
"""
import os
import os.path as osp
from typing import List, NamedTuple, Sequence, Tuple

import cv2
import numpy as np

from ..datasets.coco20i import COCO_CATEGORIES
from ..datasets.synthetic.common import (class_texture, paint, place_objects,
                                         random_background, random_blob)

#: Synthetic class ids of the examples: test classes of COCO-20i fold 0
#: (0, 4, 8, ...), unseen by the demo model during training.
EXAMPLE_CLASS_IDS: Tuple[int, ...] = (0, 4)
#: Example image size (h, w).
EXAMPLE_SIZE: Tuple[int, int] = (96, 128)


class WebUIExamples(NamedTuple):
    """Files of the example episode.

    Attributes:
        classes (list): Per class, ``(name, [(image path, mask path), ...])``;
            masks are 0/255 grey PNGs.
        queries (list[str]): Query image paths.
    """
    classes: List[Tuple[str, List[Tuple[str, str]]]]
    queries: List[str]


def _write_png(path: str, img: np.ndarray) -> None:
    """Write a grey, RGB or RGBA ``uint8``-able array as a PNG."""
    img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if img.shape[2] == 4 else cv2.COLOR_RGB2BGR
        img = cv2.cvtColor(img, code)
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    if not cv2.imwrite(path, img):
        raise OSError(f'Cannot write {path!r}.')


def _picture(class_ids: Sequence[int], rng: np.random.Generator
             ) -> Tuple[np.ndarray, List[np.ndarray]]:
    """An RGB picture with one object per class id, and their 0/1 masks."""
    h, w = EXAMPLE_SIZE
    img = random_background(h, w, rng)
    masks = []
    for class_id, (center, radius) in zip(
            class_ids, place_objects(h, w, len(class_ids), rng)):
        obj = random_blob(h, w, rng, center, radius)
        for earlier in masks:  # later objects lie on top of earlier ones
            earlier[obj > 0] = 0
        paint(img, obj, class_texture(class_id, h, w, rng))
        masks.append(obj)
    return img, masks


def make_examples(cache_dir: str, num_shots: Sequence[int] = (2, 1),
                  num_queries: int = 2, seed: int = 0) -> WebUIExamples:
    """Write the example episode under ``cache_dir`` (overwriting it).

    Args:
        cache_dir (str): Folder for the PNGs (created).
        num_shots (Sequence[int]): Support images per example class.
            Defaults to (2, 1).
        num_queries (int): Query images. Defaults to 2.
        seed (int): Random seed (the same files for the same seed).
            Defaults to 0.

    Returns:
        WebUIExamples: The paths written.

    Raises:
        ValueError: More classes than :data:`EXAMPLE_CLASS_IDS`, or a class
            without supports.
    """
    if not 1 <= len(num_shots) <= len(EXAMPLE_CLASS_IDS) or min(
            num_shots) < 1:
        raise ValueError(
            f'num_shots must give 1..{len(EXAMPLE_CLASS_IDS)} classes with '
            f'at least one support each, got {tuple(num_shots)}.')
    rng = np.random.default_rng(seed)
    classes = []
    for class_id, shots in zip(EXAMPLE_CLASS_IDS, num_shots):
        name = COCO_CATEGORIES[class_id][1]
        pairs = []
        for k in range(shots):
            img, (mask, ) = _picture([class_id], rng)
            stem = osp.join(cache_dir, f'{name}_support{k}')
            _write_png(stem + '.png', img)
            _write_png(stem + '_mask.png', mask * np.uint8(255))
            pairs.append((stem + '.png', stem + '_mask.png'))
        classes.append((name, pairs))
    queries = []
    for i in range(num_queries):
        img, _ = _picture(EXAMPLE_CLASS_IDS[:len(num_shots)], rng)
        path = osp.join(cache_dir, f'query{i}.png')
        _write_png(path, img)
        queries.append(path)
    return WebUIExamples(classes, queries)
