# Copyright (c) dcama_mm contributors. All rights reserved.
"""COCO instance annotations to class masks and label maps."""
from collections import defaultdict
from typing import Dict, Sequence, Union

import numpy as np
from pycocotools import mask as mask_utils

__all__ = ['ann_to_rle', 'render_class_masks', 'compose_label_map']


def ann_to_rle(segm: Union[list, dict], h: int, w: int) -> dict:
    """A COCO ``segmentation`` (polygons, RLE or uncompressed RLE) as RLE.

    Args:
        segm (list | dict): The annotation's ``segmentation``.
        h (int): Image height.
        w (int): Image width.

    Returns:
        dict: Compressed RLE.
    """
    if isinstance(segm, list):
        polys = [p for p in segm if len(p) >= 6]
        if not polys:
            return mask_utils.encode(np.zeros((h, w), np.uint8, order='F'))
        return mask_utils.merge(mask_utils.frPyObjects(polys, h, w))
    if isinstance(segm, dict) and isinstance(segm.get('counts'), list):
        return mask_utils.frPyObjects(segm, h, w)
    if isinstance(segm, dict) and isinstance(segm.get('counts'),
                                             (str, bytes)):
        counts = segm['counts']
        return dict(
            size=list(segm['size']),
            counts=counts.encode('ascii') if isinstance(counts, str) else
            counts)
    raise ValueError(f'Unknown segmentation format {type(segm).__name__}.')


def render_class_masks(anns: Sequence[dict], h: int, w: int,
                       cat_to_class: Dict[int, int]) -> Dict[int, np.ndarray]:
    """The union mask of every class present in one image.

    Args:
        anns (Sequence[dict]): The image's annotations.
        h (int): Image height.
        w (int): Image width.
        cat_to_class (dict[int, int]): COCO category id -> class index.

    Returns:
        dict[int, np.ndarray]: class index -> ``uint8`` HxW 0/1 mask.
    """
    rles = defaultdict(list)
    for ann in anns:
        rles[cat_to_class[ann['category_id']]].append(
            ann_to_rle(ann['segmentation'], h, w))
    return {
        c: mask_utils.decode(mask_utils.merge(r, intersect=False))
        for c, r in rles.items()
    }


def compose_label_map(masks: Dict[int, np.ndarray], h: int,
                      w: int) -> np.ndarray:
    """One label map from class masks, smaller classes drawn on top.

    Args:
        masks (dict[int, np.ndarray]): class index -> 0/1 mask.
        h (int): Height.
        w (int): Width.

    Returns:
        np.ndarray: ``uint8`` HxW, class index + 1, 0 = background.
    """
    label = np.zeros((h, w), dtype=np.uint8)
    for c in sorted(masks, key=lambda k: (-int(masks[k].sum()), k)):
        label[masks[c].astype(bool)] = c + 1
    return label
