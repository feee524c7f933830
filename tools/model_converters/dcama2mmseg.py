# Copyright (c) dcama_mm contributors. All rights reserved.
"""Convert a reference DCAMA checkpoint (github.com/pawn-sxy/DCAMA) to a
dcama_mm checkpoint loadable by ``init_model`` / ``load_from``.

Example:
    python tools/model_converters/dcama2mmseg.py \
        swin_fold0.pt checkpoints/dcama_swinb_coco_fold0.pth
"""
import argparse
import os.path as osp
from typing import List, Optional


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
    from dcama_mm.models.utils import (check_output_path,
                                       convert_dcama_checkpoint,
                                       inspect_dcama_checkpoint,
                                       load_state_dict_file,
                                       save_checkpoint_file)
    try:
        check_output_path(args.dst, args.force)
        checkpoint = load_state_dict_file(args.src)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        parser.error(str(err))
    try:
        info = inspect_dcama_checkpoint(checkpoint)
    except ValueError as err:
        parser.error(f'{args.src}: {err}')
    state_dict = convert_dcama_checkpoint(checkpoint)
    print(f'Detected a reference DCAMA checkpoint with a {info["backbone"]} '
          f'backbone: blocks per stage {info["num_blocks"]}, channels '
          f'{info["in_channels"]}.')
    save_checkpoint_file(
        state_dict,
        args.dst,
        meta=dict(
            converted_from=osp.abspath(args.src),
            backbone=info['backbone'],
            num_blocks=info['num_blocks'],
            in_channels=info['in_channels']))
    print(f'Wrote {len(state_dict)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
