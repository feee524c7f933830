# Copyright (c) dcama_mm contributors. All rights reserved.
"""Convert one COCO 2014 split for COCO-20i (see
``tools/dataset_converters/coco20i.py`` for the output layout)."""
import logging
import multiprocessing
import os
import os.path as osp
import sys
import time
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Set, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from .coco20i_index import instances_path, load_instances, write_class_index
from .coco_masks import compose_label_map, render_class_masks

__all__ = ['convert_split']

# State shared with the worker processes (inherited through fork).
_STATE: dict = {}

#: The keys every COCO image entry needs.
_IMAGE_KEYS = ('id', 'file_name', 'height', 'width')

#: What a worker returns for one image: its name, the area of each class's
#: mask, the extra multi-label mask files and whether the image exists.
ImageResult = Tuple[str, Dict[int, int], Dict[int, str], bool]


def _convert_image(img_id: int) -> ImageResult:
    """Worker: render and write the masks of one image."""
    info = _STATE['images'][img_id]
    h, w = int(info['height']), int(info['width'])
    name = f"{_STATE['image_dir']}/{info['file_name']}"
    stem = osp.splitext(osp.basename(info['file_name']))[0]
    try:
        masks = render_class_masks(_STATE['anns'].get(img_id, ()), h, w,
                                   _STATE['cat_to_class'])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{_STATE['json_path']}: bad annotation of image "
                         f'{img_id} ({name}): {err!r}') from err
    label = compose_label_map(masks, h, w)
    cv2.imwrite(osp.join(_STATE['mask_dir'], f'{stem}.png'), label)
    areas, multilabel = {}, {}
    for c, mask in masks.items():
        area = int(mask.sum())
        areas[c] = area
        if area and int((label == c + 1).sum()) != area:
            out = osp.join(_STATE['multilabel_dir'], f'{stem}_c{c}.png')
            cv2.imwrite(out, mask * np.uint8(c + 1))
            multilabel[c] = out
    exists = osp.isfile(osp.join(_STATE['coco_root'], name))
    return name, areas, multilabel, exists


def _rel(path: str, root: str) -> str:
    return osp.relpath(path, root).replace(os.sep, '/')


def _index_images(data: dict, json_path: str) -> Dict[int, dict]:
    """Image id -> image entry of a COCO instances file, each entry checked
    (an error names the entry: its position, id and file name)."""
    images: Dict[int, dict] = {}
    for pos, img in enumerate(data['images']):
        if not isinstance(img, dict):
            raise ValueError(f'{json_path}: image entry #{pos} is not an '
                             f'object but {type(img).__name__}.')
        name = (f'image entry #{pos} (id {img.get("id")!r}, file_name '
                f'{img.get("file_name")!r})')
        lacks = [k for k in _IMAGE_KEYS if k not in img]
        if lacks:
            raise ValueError(
                f'{json_path}: {name} has no {", ".join(map(repr, lacks))}; '
                'every COCO image entry needs "id", "file_name", "height" '
                'and "width" (the image size the masks are rendered at).')
        size = (img['height'], img['width'])
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                   for v in size):
            raise ValueError(
                f'{json_path}: {name} has height {size[0]!r} and width '
                f'{size[1]!r}; both must be positive integers (pixels).')
        if img['id'] in images:
            raise ValueError(f'{json_path}: {name} repeats the id of an '
                             'earlier image entry; image ids must be unique.')
        images[img['id']] = img
    return images


def _group_annotations(data: dict, json_path: str, images: Dict[int, dict]
                       ) -> Tuple[List[dict], Dict[int, int], dict,
                                  List[dict]]:
    """Categories sorted by id, category id -> class index, image id ->
    annotations of a COCO instances file, and the annotations dropped
    because their ``image_id`` is not in ``images`` (logged)."""
    cats = sorted(data['categories'], key=lambda c: c['id'])
    cat_to_class = {c['id']: i for i, c in enumerate(cats)}
    if len(cats) > 254:
        raise ValueError(f'{json_path}: too many categories for 8-bit masks.')
    anns = defaultdict(list)
    dropped = []
    for ann in data['annotations']:
        if ann.get('category_id') not in cat_to_class:
            raise ValueError(
                f'{json_path}: annotation {ann.get("id")} has unknown '
                f'category_id {ann.get("category_id")!r}.')
        if ann.get('image_id') in images:
            anns[ann['image_id']].append(ann)
        else:
            dropped.append(ann)
    if dropped:
        shown = ', '.join(
            f'annotation {a.get("id")!r} -> image_id {a.get("image_id")!r}'
            for a in dropped[:3])
        print_log(
            f'{json_path}: {len(dropped)} of {len(data["annotations"])} '
            'annotation(s) refer to an image id that is not in its "images" '
            f'list ({shown}{", ..." if len(dropped) > 3 else ""}); they are '
            'dropped (no mask is rendered for them).',
            logger='current',
            level=logging.WARNING)
    return cats, cat_to_class, anns, dropped


def _render_images(ids: Sequence[int], nproc: int) -> List[ImageResult]:
    """Run :func:`_convert_image` on ``ids`` (``_STATE`` set), sorted by
    image name."""
    results = []
    bar = ProgressBar(len(ids))
    try:
        if nproc > 1:
            ctx = multiprocessing.get_context('fork')
            with ctx.Pool(nproc) as pool:
                for res in pool.imap_unordered(
                        _convert_image, ids,
                        chunksize=max(1, min(64,
                                             len(ids) // (nproc * 8)))):
                    results.append(res)
                    bar.update()
        else:
            for img_id in ids:
                results.append(_convert_image(img_id))
                bar.update()
    finally:
        _STATE.clear()
    sys.stdout.write('\n')  # ends the progress bar's line
    results.sort(key=lambda r: r[0])
    return results


def _write_ref_indexes(out_dir: str, header: dict,
                       ref_lists: Dict[int, List[List[str]]],
                       known: Set[str], class_images: List[List[str]],
                       multilabel: Dict[int, Dict[str, str]],
                       json_path: str) -> List[str]:
    """Write one class index file per reference fold; return their paths."""
    image_dir = header['image_dir']
    written = []
    for fold, lists in sorted(ref_lists.items()):
        unknown = [n for lst in lists for n in lst if n not in known]
        if unknown:
            raise ValueError(
                f'The reference split of fold {fold} ({image_dir}) lists '
                f'{len(unknown)} image(s) absent from {json_path}, e.g. '
                f'{unknown[0]!r}; does it belong to the other split?')
        empty = sum(1 for c, lst in enumerate(lists) for n in lst
                    if n not in set(class_images[c]))
        if empty:
            print_log(
                f'fold {fold}: {empty} (class, image) pair(s) of the '
                f'reference list have a mask below --min-area here.',
                logger='current',
                level=logging.WARNING)
        path = osp.join(out_dir, f'{image_dir}_class_index_fold{fold}.json')
        write_class_index(path, header, lists, multilabel)
        written.append(path)
    return written


def convert_split(coco_root: str,
                  image_dir: str,
                  out_dir: str,
                  min_area: int = 1,
                  nproc: int = 1,
                  force: bool = False,
                  ref_lists: Optional[Dict[int, List[List[str]]]] = None
                  ) -> dict:
    """Render the masks and write the class index of one COCO split.

    Args:
        coco_root (str): COCO root with ``annotations/instances_*.json``.
        image_dir (str): 'train2014' or 'val2014'.
        out_dir (str): Output folder (``annotations_fss``).
        min_area (int): Minimum mask area (pixels) for an image to be listed
            for a class. Defaults to 1.
        nproc (int): Worker processes. Defaults to 1.
        force (bool): Overwrite existing output. Defaults to False.
        ref_lists (dict[int, list[list[str]]], optional): fold -> reference
            class-wise image lists; written as per-fold index files.
            Defaults to None.

    Returns:
        dict: Summary (images, classes, empty classes, annotations
        dropped for an unknown ``image_id``, ...).
    """
    start = time.time()
    json_path = instances_path(coco_root, image_dir)
    index_path = osp.join(out_dir, f'{image_dir}_class_index.json')
    mask_dir = osp.join(out_dir, image_dir)
    multilabel_dir = osp.join(out_dir, f'{image_dir}_multilabel')
    if not force and (osp.exists(index_path) or
                      (osp.isdir(mask_dir) and os.listdir(mask_dir))):
        raise FileExistsError(
            f'Output for {image_dir} already exists in {out_dir!r}; pass '
            '--force to overwrite it.')
    data = load_instances(json_path)
    images = _index_images(data, json_path)
    cats, cat_to_class, anns, dropped = _group_annotations(
        data, json_path, images)
    classes = [c['name'] for c in cats]
    os.makedirs(mask_dir, exist_ok=True)
    os.makedirs(multilabel_dir, exist_ok=True)
    _STATE.update(
        images=images,
        anns=anns,
        cat_to_class=cat_to_class,
        image_dir=image_dir,
        mask_dir=mask_dir,
        multilabel_dir=multilabel_dir,
        coco_root=coco_root,
        json_path=json_path)
    print_log(
        f'Rendering {len(images)} {image_dir} masks with {nproc} '
        'process(es)',
        logger='current')
    results = _render_images(sorted(images), nproc)
    class_images: List[List[str]] = [[] for _ in classes]
    multilabel: Dict[int, Dict[str, str]] = defaultdict(dict)
    missing_images = []
    known = set()
    for name, areas, ml, exists in results:
        known.add(name)
        if not exists:
            missing_images.append(name)
        for c, area in areas.items():
            if area >= max(min_area, 1):
                class_images[c].append(name)
        for c, path in ml.items():
            multilabel[c][name] = _rel(path, coco_root)
    header = dict(
        image_dir=image_dir,
        mask_dir=_rel(mask_dir, coco_root),
        classes=classes,
        category_ids=[c['id'] for c in cats],
        min_area=min_area)
    write_class_index(index_path, header, class_images, multilabel)
    written = [index_path] + _write_ref_indexes(
        out_dir, header, ref_lists or {}, known, class_images, multilabel,
        json_path)
    summary = dict(
        split=image_dir,
        images=len(images),
        images_with_objects=sum(1 for r in results if any(r[1].values())),
        classes=len(classes),
        empty_classes=[classes[c] for c, lst in enumerate(class_images)
                       if not lst],
        multilabel_masks=sum(len(m) for m in multilabel.values()),
        missing_images=len(missing_images),
        dropped_annotations=len(dropped),
        seconds=round(time.time() - start, 1),
        written=written)
    if missing_images:
        print_log(
            f'{len(missing_images)} {image_dir} image(s) listed in '
            f'{json_path} are not on disk, e.g. {missing_images[0]!r}; '
            'episodes using them will fail to load.',
            logger='current',
            level=logging.WARNING)
    return summary
