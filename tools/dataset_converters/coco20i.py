# Copyright (c) dcama_mm contributors. All rights reserved.
"""Convert COCO 2014 instance annotations for COCO-20i few-shot segmentation.

Input (``COCO_ROOT``, e.g. ``data/coco``)::

    train2014/*.jpg, val2014/*.jpg
    annotations/instances_train2014.json, annotations/instances_val2014.json

Output (``--out-dir``, default ``COCO_ROOT/annotations_fss``)::

    train2014/<image stem>.png    one label PNG per image: class index + 1
    val2014/<image stem>.png      (0 = background), classes indexed 0..79 in
                                  COCO's sorted category-id order
    train2014_multilabel/<stem>_c<class>.png   (only where needed, see below)
    train2014_class_index.json    per class, the images containing it
    val2014_class_index.json
    {train2014,val2014}_class_index_fold{0..3}.json  (with --ref-splits)

Each class's mask is the union of its instances (polygons, RLE and crowd
regions, decoded with pycocotools), rendered once per image and class. A
label PNG holds one class per pixel: where instances of several classes
overlap, the smaller class is drawn on top, and every class whose label-PNG
mask differs from its true union gets an extra 0/(class index + 1) PNG in
``<split>_multilabel/``, referenced from the class index file, so the
dataset always reads the exact union.

An image is listed for a class when the class's mask has at least
``--min-area`` pixels (default 1). The class index file is JSON::

    {"format": "dcama_mm.coco20i_class_index", "version": 1,
     "image_dir": "val2014", "mask_dir": "annotations_fss/val2014",
     "classes": [80 names], "category_ids": [80 ids], "min_area": 1,
     "class_images": [[ "val2014/COCO_val2014_000000000042.jpg", ...], ...],
     "multilabel_masks": {"<class>": {"<image>": "<mask path>"}}}

with paths relative to ``COCO_ROOT`` (``mask_dir`` and multi-label paths
assume ``--out-dir`` is inside ``COCO_ROOT``).

``--ref-splits DIR`` also converts the reference DCAMA/HSNet class-wise
lists ``DIR/{trn,val}/fold{0..3}.pkl`` (a pickled dict: class index 0..79
-> list of ``'train2014/COCO_train2014_....jpg'`` names) into
``<split>_class_index_fold<i>.json`` with the same image lists in the same
order; use them with ``ann_file='annotations_fss/val2014_class_index_fold
{fold}.json'`` in the dataset config to reproduce the reference's episodes'
image pools exactly.

Existing output is never overwritten unless ``--force`` is given.

Example::

    python tools/dataset_converters/coco20i.py data/coco --nproc 8
"""
import argparse
import json
import logging
import multiprocessing
import os
import os.path as osp
import pickle
import time
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from pycocotools import mask as mask_utils

FORMAT = 'dcama_mm.coco20i_class_index'
SPLITS = ('train2014', 'val2014')
REF_SPLIT_NAMES = dict(trn='train2014', val='val2014')

# State shared with the worker processes (inherited through fork).
_STATE: dict = {}


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


def ann_to_rle(segm, h: int, w: int) -> dict:
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


def _convert_image(img_id: int) -> Tuple[str, Dict[int, int], Dict[int, str],
                                         bool]:
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


def _write_index(path: str, image_dir: str, mask_dir_rel: str,
                 classes: List[str], cat_ids: List[int], min_area: int,
                 class_images: List[List[str]],
                 multilabel: Dict[int, Dict[str, str]]) -> None:
    index = dict(
        format=FORMAT,
        version=1,
        image_dir=image_dir,
        mask_dir=mask_dir_rel,
        classes=classes,
        category_ids=cat_ids,
        min_area=min_area,
        class_images=class_images,
        multilabel_masks={
            str(c): dict(sorted(m.items()))
            for c, m in sorted(multilabel.items()) if m
        })
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(index, f)


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
        dict: Summary (images, classes, empty classes, ...).
    """
    start = time.time()
    json_path = osp.join(coco_root, 'annotations',
                         f'instances_{image_dir}.json')
    index_path = osp.join(out_dir, f'{image_dir}_class_index.json')
    mask_dir = osp.join(out_dir, image_dir)
    multilabel_dir = osp.join(out_dir, f'{image_dir}_multilabel')
    if not force and (osp.exists(index_path) or
                      (osp.isdir(mask_dir) and os.listdir(mask_dir))):
        raise FileExistsError(
            f'Output for {image_dir} already exists in {out_dir!r}; pass '
            '--force to overwrite it.')
    data = load_instances(json_path)
    cats = sorted(data['categories'], key=lambda c: c['id'])
    cat_to_class = {c['id']: i for i, c in enumerate(cats)}
    classes = [c['name'] for c in cats]
    if len(classes) > 254:
        raise ValueError(f'{json_path}: too many categories for 8-bit masks.')
    anns = defaultdict(list)
    for ann in data['annotations']:
        if ann.get('category_id') not in cat_to_class:
            raise ValueError(
                f'{json_path}: annotation {ann.get("id")} has unknown '
                f'category_id {ann.get("category_id")!r}.')
        anns[ann['image_id']].append(ann)
    images = {im['id']: im for im in data['images']}
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
    results = []
    bar = ProgressBar(len(images))
    ids = sorted(images)
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
    print()  # ends the progress bar's line
    results.sort(key=lambda r: r[0])
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
    mask_dir_rel = _rel(mask_dir, coco_root)
    cat_ids = [c['id'] for c in cats]
    _write_index(index_path, image_dir, mask_dir_rel, classes, cat_ids,
                 min_area, class_images, multilabel)
    written = [index_path]
    for fold, lists in sorted((ref_lists or {}).items()):
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
        _write_index(path, image_dir, mask_dir_rel, classes, cat_ids,
                     min_area, lists, multilabel)
        written.append(path)
    summary = dict(
        split=image_dir,
        images=len(images),
        images_with_objects=sum(1 for r in results if any(r[1].values())),
        classes=len(classes),
        empty_classes=[classes[c] for c, l in enumerate(class_images)
                       if not l],
        multilabel_masks=sum(len(m) for m in multilabel.values()),
        missing_images=len(missing_images),
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


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Render COCO 2014 class masks and per-class image '
        'lists for COCO-20i.')
    parser.add_argument('coco_root', help='COCO root (train2014/, val2014/, '
                        'annotations/instances_*2014.json)')
    parser.add_argument(
        '--out-dir',
        default=None,
        help='output folder (default: COCO_ROOT/annotations_fss)')
    parser.add_argument(
        '--splits',
        nargs='+',
        default=list(SPLITS),
        choices=SPLITS,
        help='splits to convert')
    parser.add_argument(
        '--min-area',
        type=int,
        default=1,
        help='minimum mask area in pixels for an image to be listed for a '
        'class (default 1)')
    parser.add_argument(
        '--nproc',
        type=int,
        default=min(8, os.cpu_count() or 1),
        help='worker processes')
    parser.add_argument(
        '--ref-splits',
        default=None,
        help='folder with the reference {trn,val}/fold{0..3}.pkl class-wise '
        'lists, converted to per-fold index files')
    parser.add_argument(
        '--force', action='store_true', help='overwrite existing output')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> List[dict]:
    args = parse_args(argv)
    if not osp.isdir(args.coco_root):
        raise FileNotFoundError(
            f'COCO root {args.coco_root!r} is not a folder.')
    if args.min_area < 1:
        raise ValueError(f'--min-area must be >= 1, got {args.min_area}.')
    if args.nproc < 1:
        raise ValueError(f'--nproc must be >= 1, got {args.nproc}.')
    out_dir = args.out_dir or osp.join(args.coco_root, 'annotations_fss')
    ref = defaultdict(dict)
    if args.ref_splits:
        for ref_name, image_dir in REF_SPLIT_NAMES.items():
            for fold in range(4):
                path = osp.join(args.ref_splits, ref_name, f'fold{fold}.pkl')
                if osp.isfile(path):
                    ref[image_dir][fold] = path
        if not ref:
            raise FileNotFoundError(
                f'No reference split file found under {args.ref_splits!r}; '
                'expected trn/fold0.pkl ... val/fold3.pkl.')
    summaries = []
    for image_dir in args.splits:
        ref_lists = None
        if ref.get(image_dir):
            data = load_instances(
                osp.join(args.coco_root, 'annotations',
                         f'instances_{image_dir}.json'))
            ncls = len(data['categories'])
            ref_lists = {
                f: load_ref_split(p, ncls)
                for f, p in ref[image_dir].items()
            }
        summary = convert_split(args.coco_root, image_dir, out_dir,
                                args.min_area, args.nproc, args.force,
                                ref_lists)
        print_log(
            f"{image_dir}: {summary['images']} images "
            f"({summary['images_with_objects']} with objects), "
            f"{summary['classes']} classes, "
            f"{len(summary['empty_classes'])} empty class(es) "
            f"{summary['empty_classes']}, "
            f"{summary['multilabel_masks']} multi-label mask(s), "
            f"{summary['seconds']} s; wrote {summary['written']} and the "
            f'masks in {osp.join(out_dir, image_dir)}',
            logger='current')
        summaries.append(summary)
    return summaries


if __name__ == '__main__':
    main()
