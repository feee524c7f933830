# Copyright (c) dcama_mm contributors. All rights reserved.
"""Convert a reference DCAMA checkpoint (github.com/pawn-sxy/DCAMA) to a
dcama_mm checkpoint loadable by ``init_model`` / ``load_from``.

Example:
    python tools/model_converters/dcama2mmseg.py \
        swin_fold0.pt checkpoints/dcama_swinb_coco_fold0.pth
"""
import argparse
import os
import os.path as osp
from typing import List, Optional

import torch


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description='Convert a reference DCAMA checkpoint (keys '
        "'module.feature_extractor.*', 'module.model.*') to dcama_mm's "
        "FewShotSegmentor layout ('backbone.*', 'decode_head.*').")
    parser.add_argument('src', help='reference DCAMA checkpoint (.pt/.pth)')
    parser.add_argument('dst', help='output path of the converted file')
    parser.add_argument(
        '--force',
        action='store_true',
        help='overwrite DST if it exists')
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    from dcama_mm.models.utils import (convert_dcama_checkpoint,
                                       inspect_dcama_checkpoint)
    if not osp.isfile(args.src):
        parser.error(f'{args.src} does not exist: pass the path of a '
                     'reference DCAMA checkpoint.')
    if osp.exists(args.dst) and not args.force:
        parser.error(f'{args.dst} exists; pass --force to overwrite it.')
    # a reference checkpoint is a plain dict of tensors
    checkpoint = torch.load(args.src, map_location='cpu', weights_only=True)
    try:
        info = inspect_dcama_checkpoint(checkpoint)
    except ValueError as err:
        parser.error(f'{args.src}: {err}')
    state_dict = convert_dcama_checkpoint(checkpoint)
    print(f'Detected a reference DCAMA checkpoint with a {info["backbone"]} '
          f'backbone: blocks per stage {info["num_blocks"]}, channels '
          f'{info["in_channels"]}.')
    dst_dir = osp.dirname(osp.abspath(args.dst))
    os.makedirs(dst_dir, exist_ok=True)
    torch.save(
        dict(
            state_dict=state_dict,
            meta=dict(
                converted_from=osp.abspath(args.src),
                backbone=info['backbone'],
                num_blocks=info['num_blocks'],
                in_channels=info['in_channels'])), args.dst)
    print(f'Wrote {len(state_dict)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
