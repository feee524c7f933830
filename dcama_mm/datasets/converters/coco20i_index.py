# Copyright (c) dcama_mm contributors. All rights reserved.
"""The files of the COCO-20i conversion: COCO instance files and the
reference split files in, class index files out."""
import json
import os.path as osp
import pickle
from collections import defaultdict
from typing import Dict, List

import numpy as np

from ..coco20i import CLASS_INDEX_FORMAT, NUM_FOLDS

__all__ = [
    'FORMAT', 'SPLITS', 'REF_SPLIT_NAMES', 'instances_path',
    'load_instances', 'load_ref_split', 'find_ref_splits', 'load_ref_lists',
    'write_class_index'
]

FORMAT = CLASS_INDEX_FORMAT
SPLITS = ('train2014', 'val2014')
#: Folder of a split in the reference split files -> COCO image folder.
REF_SPLIT_NAMES = dict(trn='train2014', val='val2014')


def instances_path(coco_root: str, image_dir: str) -> str:
    """``COCO_ROOT/annotations/instances_<image_dir>.json``."""
    return osp.join(coco_root, 'annotations', f'instances_{image_dir}.json')


def load_instances(json_path: str) -> dict:
    """Read and check a COCO instances JSON file.

    Args:
        json_path (str): ``instances_*.json``.

    Returns:
        dict: The parsed JSON.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: It is not valid JSON or lacks COCO's keys.
    """
    if not osp.isfile(json_path):
        raise FileNotFoundError(
            f'COCO annotation file {json_path!r} does not exist; expected '
            'COCO_ROOT/annotations/instances_{train,val}2014.json.')
    try:
        with open(json_path, encoding='utf-8') as f:
            data = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f'COCO annotation file {json_path!r} is not valid '
                         f'JSON: {err}.') from err
    missing = [
        k for k in ('images', 'annotations', 'categories')
        if not isinstance(data, dict) or not isinstance(data.get(k), list)
    ]
    if missing:
        raise ValueError(f'COCO annotation file {json_path!r} lacks the '
                         f'list(s) {missing}; is it an instances file?')
    return data


def load_ref_split(pkl_path: str, num_classes: int) -> List[List[str]]:
    """Read a reference class-wise split file (``fold<i>.pkl``).

    Args:
        pkl_path (str): The pickle file.
        num_classes (int): Number of classes (80).

    Returns:
        list[list[str]]: Per class index, the image names in file order.
    """
    try:
        with open(pkl_path, 'rb') as f:
            data = pickle.load(f)
    except FileNotFoundError:
        raise
    except Exception as err:  # unpickling raises many types
        raise ValueError(f'Cannot read the split file {pkl_path!r}: '
                         f'{err!r}.') from err
    if not isinstance(data, dict) or not all(
            isinstance(k, (int, np.integer)) and 0 <= int(k) < num_classes
            and isinstance(v, (list, tuple)) and all(
                isinstance(n, str) for n in v) for k, v in data.items()):
        raise ValueError(
            f'The split file {pkl_path!r} is malformed: expected a dict '
            f'class index (0..{num_classes - 1}) -> list of image names.')
    lists: List[List[str]] = [[] for _ in range(num_classes)]
    for k, v in data.items():
        lists[int(k)] = list(v)
    return lists


def find_ref_splits(ref_dir: str) -> Dict[str, Dict[int, str]]:
    """The reference split files ``ref_dir/{trn,val}/fold{0..3}.pkl``.

    Args:
        ref_dir (str): The folder of the reference split lists.

    Returns:
        dict[str, dict[int, str]]: COCO image folder -> fold -> file, for
        the files that exist.

    Raises:
        FileNotFoundError: If there is none.
    """
    found: Dict[str, Dict[int, str]] = defaultdict(dict)
    for ref_name, image_dir in REF_SPLIT_NAMES.items():
        for fold in range(NUM_FOLDS):
            path = osp.join(ref_dir, ref_name, f'fold{fold}.pkl')
            if osp.isfile(path):
                found[image_dir][fold] = path
    if not found:
        raise FileNotFoundError(
            f'No reference split file found under {ref_dir!r}; '
            'expected trn/fold0.pkl ... val/fold3.pkl.')
    return found


def load_ref_lists(coco_root: str, image_dir: str,
                   paths: Dict[int, str]) -> Dict[int, List[List[str]]]:
    """Read the reference split files of one COCO split.

    Args:
        coco_root (str): COCO root with ``annotations/instances_*.json``
            (for the number of classes).
        image_dir (str): 'train2014' or 'val2014'.
        paths (dict[int, str]): fold -> split file.

    Returns:
        dict[int, list[list[str]]]: fold -> per class, the image names.
    """
    data = load_instances(instances_path(coco_root, image_dir))
    num_classes = len(data['categories'])
    return {
        fold: load_ref_split(path, num_classes)
        for fold, path in paths.items()
    }


def write_class_index(path: str, header: dict,
                      class_images: List[List[str]],
                      multilabel: Dict[int, Dict[str, str]]) -> None:
    """Write a class index file.

    Args:
        path (str): The JSON file.
        header (dict): ``image_dir``, ``mask_dir``, ``classes``,
            ``category_ids`` and ``min_area``, in this order.
        class_images (list[list[str]]): Per class, the images listed.
        multilabel (dict[int, dict[str, str]]): class -> image -> path of
            the class's own mask, where the label PNG does not hold it.
    """
    index = dict(
        format=FORMAT,
        version=1,
        **header,
        class_images=class_images,
        multilabel_masks={
            str(c): dict(sorted(m.items()))
            for c, m in sorted(multilabel.items()) if m
        })
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(index, f)
