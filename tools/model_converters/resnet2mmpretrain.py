# Copyright (c) dcama_mm contributors. All rights reserved.
"""Convert torchvision / TIMM ResNet weights for ``BlockFeatureResNet``.

Input: a ResNet-50/101 state dict with torchvision's key names, such as
TIMM's ``resnet50_a1h`` / ``resnet101_a1h`` files that DCAMA starts from
(plain, or under ``state_dict`` / ``model``). Output: a checkpoint
``dict(state_dict=..., meta=...)`` that
``BlockFeatureResNet(init_cfg=dict(type='Pretrained', checkpoint=DST))``
loads with no missing or unexpected keys (the classifier ``fc`` is dropped).

Example:
    python tools/model_converters/resnet2mmpretrain.py \\
        resnet50_a1h-35c100f8.pth checkpoints/resnet50_a1h_mmpretrain.pth
"""
import argparse
from typing import List, Optional

from dcama_mm.models.utils import (convert_checkpoint_file,
                                   converter_arg_parser,
                                   convert_torchvision_resnet)

META = dict(
    converter='tools/model_converters/resnet2mmpretrain.py',
    layout='BlockFeatureResNet')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = converter_arg_parser(
        description='Convert torchvision / TIMM ResNet weights to the '
        'mmpretrain / BlockFeatureResNet layout.',
        src_help='torchvision / TIMM checkpoint (.pth)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    try:
        weights, converted = convert_checkpoint_file(
            args.src,
            args.dst,
            convert_torchvision_resnet,
            meta=META,
            force=args.force)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        raise SystemExit(f'resnet2mmpretrain: error: {exc}')
    print(f'Converted {len(weights)} tensors of {args.src} (classifier '
          f'fc dropped) into {len(converted)} and wrote {args.dst}')


if __name__ == '__main__':
    main()
