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

``--use-label-pngs DIR`` uses the reference's own pre-rendered label PNGs
``COCO_ROOT/DIR/{train2014,val2014}/<image stem>.png`` (pixel = class index
+ 1) instead of rendering masks: no instances JSON is read and nothing is
rendered. With ``--ref-splits`` it writes the per-fold index files from the
split files (checking that every listed image has its PNG); without, it
scans the PNGs for the classes they hold and writes
``<split>_class_index.json``. The index files point at those PNGs.

Existing output is never overwritten unless ``--force`` is given.

Examples::

    python tools/dataset_converters/coco20i.py data/coco --nproc 8
    # the reference's layout: COCO2014/{train2014,val2014}/*.jpg,
    # COCO2014/annotations/{train2014,val2014}/*.png, splits/coco/...
    python tools/dataset_converters/coco20i.py COCO2014 \
        --use-label-pngs annotations --ref-splits splits/coco
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence

# Running from a source checkout without installing: make `dcama_mm`
# importable (an installed / editable package wins, it comes first).
_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isdir(osp.join(_ROOT, 'dcama_mm')) and _ROOT not in sys.path:
    sys.path.append(_ROOT)

from mmengine.logging import print_log  # noqa: E402

from dcama_mm.datasets.converters.coco20i import convert_split  # noqa: E402
from dcama_mm.datasets.converters.coco20i_label_pngs import (  # noqa: E402
    index_label_pngs)
from dcama_mm.datasets.converters.coco20i_index import (  # noqa: E402,F401
    SPLITS, find_ref_splits, load_ref_lists, load_ref_split)


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
        '--use-label-pngs',
        metavar='DIR',
        default=None,
        help='index the existing label PNGs COCO_ROOT/DIR/{train2014,'
        'val2014}/*.png (pixel = class index + 1, e.g. the reference\'s '
        '"annotations") instead of rendering masks from the instances JSON')
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
    ref = find_ref_splits(args.ref_splits) if args.ref_splits else {}
    if args.use_label_pngs is not None:
        return index_pngs(args, out_dir, ref)
    summaries = []
    for image_dir in args.splits:
        ref_lists = None
        if ref.get(image_dir):
            ref_lists = load_ref_lists(args.coco_root, image_dir,
                                       ref[image_dir])
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
            f"{summary['dropped_annotations']} annotation(s) of unknown "
            'images dropped, '
            f"{summary['seconds']} s; wrote {summary['written']} and the "
            f'masks in {osp.join(out_dir, image_dir)}',
            logger='current')
        summaries.append(summary)
    return summaries


def index_pngs(args: argparse.Namespace, out_dir: str,
               ref: dict) -> List[dict]:
    """The ``--use-label-pngs`` route: index files over existing PNGs."""
    summaries = []
    for image_dir in args.splits:
        if ref and not ref.get(image_dir):
            print_log(
                f'{image_dir}: no split file under {args.ref_splits!r}; '
                'skipped.',
                logger='current')
            continue
        summary = index_label_pngs(args.coco_root, args.use_label_pngs,
                                   image_dir, out_dir, ref.get(image_dir),
                                   args.min_area, args.force)
        print_log(
            f"{image_dir}: {summary['label_pngs']} label PNGs, "
            f"{summary['images']} images listed over {summary['classes']} "
            f"classes, {summary['seconds']} s; wrote "
            f"{', '.join(summary['written'])}",
            logger='current')
        summaries.append(summary)
    return summaries


if __name__ == '__main__':
    main()
