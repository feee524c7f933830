# Copyright (c) dcama_mm contributors. All rights reserved.
"""Build PASCAL-5i's ``SegmentationClassAug/`` from VOC2012 and SBD.

Input: the official archives, unpacked::

    VOC2012_DIR   = VOCdevkit/VOC2012   (VOCtrainval_11-May-2012.tar)
        JPEGImages/*.jpg, SegmentationClass/*.png (palette PNGs)
    SBD_DIR       (benchmark.tgz of the Semantic Boundaries Dataset)
        benchmark_RELEASE/dataset/cls/*.mat

Output (``--out-dir``, default ``VOC2012_DIR/SegmentationClassAug``): one
single-channel PNG per image, pixel = class index + 1, 0 = background,
255 = boundary. Images with a VOC2012 mask keep it (class indices, 255
boundaries kept); the other SBD images get SBD's ``GTcls.Segmentation``.
Shows a progress bar and a summary (images from each source, classes seen);
existing output is never overwritten unless ``--force`` is given.

Example::

    python tools/dataset_converters/pascal5i.py \\
        data/VOCdevkit/VOC2012 data/SBD
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isdir(osp.join(_ROOT, 'dcama_mm')) and _ROOT not in sys.path:
    sys.path.append(_ROOT)

from mmengine.logging import print_log  # noqa: E402

from dcama_mm.datasets.converters.pascal5i_aug import (  # noqa: E402
    build_segmentation_class_aug)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Build SegmentationClassAug/ (PASCAL-5i masks) from '
        'VOC2012 SegmentationClass/ and SBD cls/*.mat.')
    parser.add_argument('voc_dir', help='VOCdevkit/VOC2012 folder')
    parser.add_argument(
        'sbd_dir', help='SBD folder (holding benchmark_RELEASE/)')
    parser.add_argument(
        '--out-dir',
        default=None,
        help='output folder (default: VOC2012_DIR/SegmentationClassAug)')
    parser.add_argument(
        '--force', action='store_true', help='overwrite existing output')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    summary = build_segmentation_class_aug(args.voc_dir, args.sbd_dir,
                                           args.out_dir, args.force)
    print_log(
        f"SegmentationClassAug: {summary['voc'] + summary['sbd']} masks "
        f"({summary['voc']} from VOC2012, {summary['sbd']} from SBD), "
        f"{len(summary['classes'])} classes seen, "
        f"{summary['missing_images']} without a JPEGImages/ image, "
        f"{summary['seconds']} s; written to {summary['out_dir']}",
        logger='current')
    return summary


if __name__ == '__main__':
    main()
