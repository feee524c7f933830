# Copyright (c) dcama_mm contributors. All rights reserved.
"""Convert the official Swin Transformer weights for ``BlockFeatureSwin``.

Input: a release of https://github.com/microsoft/Swin-Transformer such as
``swin_base_patch4_window12_384_22kto1k.pth`` (the weights DCAMA starts
from; state dict under ``model``). Output: a checkpoint
``dict(state_dict=..., meta=...)`` that
``BlockFeatureSwin(init_cfg=dict(type='Pretrained', checkpoint=DST))`` loads
with no missing or unexpected keys.

Example:
    python tools/model_converters/swin2mmpretrain.py \\
        swin_base_patch4_window12_384_22kto1k.pth \\
        checkpoints/swin_base_patch4_window12_384_22kto1k_mmpretrain.pth
"""
import argparse
from typing import List, Optional

from dcama_mm.models.utils import (convert_checkpoint_file,
                                   converter_arg_parser, convert_official_swin)

META = dict(
    converter='tools/model_converters/swin2mmpretrain.py',
    layout='BlockFeatureSwin')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = converter_arg_parser(
        description='Convert official Swin Transformer weights to the '
        'mmpretrain / BlockFeatureSwin layout.',
        src_help='official checkpoint (.pth)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    try:
        weights, converted = convert_checkpoint_file(
            args.src,
            args.dst,
            convert_official_swin,
            meta=META,
            force=args.force)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        raise SystemExit(f'swin2mmpretrain: error: {exc}')
    print(f'Converted {len(converted)} of {len(weights)} tensors of '
          f'{args.src} (dropped {len(weights) - len(converted)}: '
          f'index/mask buffers, final norm, head) and wrote {args.dst}')


if __name__ == '__main__':
    main()
