# Copyright (c) dcama_mm contributors. All rights reserved.
"""A small synthetic dataset in COCO 2014's real layout and formats."""
import json
import math
import os
import os.path as osp
from typing import Dict, List, Tuple

import numpy as np
from mmengine.logging import print_log
from pycocotools import mask as mask_utils

from ..coco20i import COCO_CATEGORIES
from .common import (class_texture, paint, place_objects,
                     random_background, random_blob, random_polygon,
                     save_rgb)

_SPLITS = (('train2014', 'train'), ('val2014', 'val'))


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE (column-major run lengths, 0-run first)."""
    flat = np.asfortranarray(mask).reshape(-1, order='F').astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0] + counts
    return dict(counts=counts, size=list(mask.shape))


def _split_classes(num_classes: int, images_per_class: int,
                   objects_per_image: int,
                   rng: np.random.Generator) -> List[List[int]]:
    """Class indices of each image: every class in about
    ``images_per_class`` images, the classes of an image distinct."""
    slots = np.concatenate(
        [rng.permutation(num_classes) for _ in range(images_per_class)])
    num_images = math.ceil(len(slots) / objects_per_image)
    images = []
    for j in range(num_images):
        chunk = slots[j * objects_per_image:(j + 1) * objects_per_image]
        images.append(list(dict.fromkeys(int(c) for c in chunk)))
    return images


def _annotation(kind: int, mask_or_polys, h: int, w: int) -> Tuple[dict, int]:
    """Encode an object as COCO ``segmentation`` and ``iscrowd``."""
    if kind == 0:  # polygon(s)
        segm = [[float(v) for v in p.reshape(-1)] for p in mask_or_polys]
        return segm, 0
    if kind == 1:  # compressed RLE
        rle = mask_utils.encode(np.asfortranarray(mask_or_polys))
        return dict(size=[h, w], counts=rle['counts'].decode('ascii')), 0
    return _uncompressed_rle(mask_or_polys), 1  # crowd, uncompressed RLE


def _decode(segm, h: int, w: int) -> np.ndarray:
    """Decode a COCO segmentation as pycocotools does (``annToMask``)."""
    if isinstance(segm, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, h, w))
    elif isinstance(segm['counts'], list):
        rle = mask_utils.frPyObjects(segm, h, w)
    else:
        rle = dict(size=segm['size'], counts=segm['counts'].encode('ascii'))
    return mask_utils.decode(rle)


def make_synthetic_coco(root: str,
                        num_classes: int = 80,
                        images_per_class: Tuple[int, int] = (6, 4),
                        image_size: Tuple[int, int] = (64, 96),
                        objects_per_image: int = 3,
                        seed: int = 0) -> Dict[str, int]:
    """Write a small COCO 2014-format dataset for tests and the demo.

    Creates ``root/train2014/COCO_train2014_<id>.jpg``,
    ``root/val2014/COCO_val2014_<id>.jpg`` and
    ``root/annotations/instances_{train,val}2014.json`` with COCO's real
    category ids and names (the first ``num_classes`` of the 80). Objects are
    random shapes painted with their class's texture (see
    :mod:`.common`) over a varied background, several classes per image.
    Their annotations mix the formats of real COCO: polygons (some objects
    in two parts), compressed RLE, and crowd regions in uncompressed RLE.
    Images are painted from the decoded annotations, so image and masks
    agree exactly; a few objects overlap.

    Args:
        root (str): Output folder (created).
        num_classes (int): Number of categories, 1-80. Defaults to 80.
        images_per_class (tuple[int, int]): Roughly how many train and val
            images contain each class. Defaults to (6, 4).
        image_size (tuple[int, int]): Range (min, max) of image sides in
            pixels; each image draws its height and width in it.
            Defaults to (64, 96).
        objects_per_image (int): Objects (of distinct classes) per image.
            Defaults to 3.
        seed (int): Random seed. Defaults to 0.

    Returns:
        dict: Number of images and annotations written per split, e.g.
        ``{'train2014_images': ..., 'train2014_annotations': ...}``.
    """
    if not 1 <= num_classes <= len(COCO_CATEGORIES):
        raise ValueError(f'`num_classes` must be in 1..80, got {num_classes}.')
    if objects_per_image < 1 or min(images_per_class) < 1:
        raise ValueError('`objects_per_image` and `images_per_class` must be '
                         '>= 1.')
    lo, hi = int(image_size[0]), int(image_size[1])
    if not 16 <= lo <= hi:
        raise ValueError(f'`image_size` must be (min, max) with 16 <= min <= '
                         f'max, got {image_size!r}.')
    rng = np.random.default_rng(seed)
    categories = [
        dict(id=cid, name=name, supercategory='synthetic')
        for cid, name in COCO_CATEGORIES[:num_classes]
    ]
    stats: Dict[str, int] = {}
    image_id = 1
    ann_id = 1
    for (image_dir, split), per_class in zip(_SPLITS, images_per_class):
        images, annotations = [], []
        for class_ids in _split_classes(num_classes, per_class,
                                        min(objects_per_image, num_classes),
                                        rng):
            h, w = (int(v) for v in rng.integers(lo, hi + 1, size=2))
            img = random_background(h, w, rng)
            for class_id, (center, radius) in zip(
                    class_ids, place_objects(h, w, len(class_ids), rng)):
                kind = int(rng.choice(3, p=(0.6, 0.25, 0.15)))
                if kind == 0:
                    polys = [random_polygon(h, w, rng, center, radius)]
                    if rng.uniform() < 0.3:  # a second, small part
                        off = (center[0] + radius * 0.9,
                               center[1] - radius * 0.9)
                        polys.append(
                            random_polygon(h, w, rng, off, radius * 0.35))
                    shape = polys
                else:
                    shape = random_blob(h, w, rng, center, radius)
                segm, iscrowd = _annotation(kind, shape, h, w)
                mask = _decode(segm, h, w)
                if not mask.any():
                    continue
                paint(img, mask, class_texture(class_id, h, w, rng))
                rle = mask_utils.encode(np.asfortranarray(mask))
                annotations.append(
                    dict(
                        id=ann_id,
                        image_id=image_id,
                        category_id=COCO_CATEGORIES[class_id][0],
                        segmentation=segm,
                        area=float(mask_utils.area(rle)),
                        bbox=[float(v) for v in mask_utils.toBbox(rle)],
                        iscrowd=iscrowd))
                ann_id += 1
            file_name = f'COCO_{image_dir}_{image_id:012d}.jpg'
            save_rgb(osp.join(root, image_dir, file_name), img)
            images.append(
                dict(id=image_id, file_name=file_name, height=h, width=w))
            image_id += 1
        os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
        with open(
                osp.join(root, 'annotations', f'instances_{image_dir}.json'),
                'w') as f:
            json.dump(
                dict(
                    info=dict(description='dcama_mm synthetic COCO'),
                    licenses=[],
                    images=images,
                    annotations=annotations,
                    categories=categories), f)
        stats[f'{image_dir}_images'] = len(images)
        stats[f'{image_dir}_annotations'] = len(annotations)
    print_log(f'Synthetic COCO written to {root}: {stats}', logger='current')
    return stats
