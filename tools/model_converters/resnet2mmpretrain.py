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
import os
import os.path as osp
from collections import OrderedDict
from typing import List, Mapping, Optional

import torch

from dcama_mm.models.utils.backbone_converters import \
    convert_torchvision_resnet


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert torchvision / TIMM ResNet weights to the '
        'mmpretrain / BlockFeatureResNet layout.')
    parser.add_argument('src', help='torchvision / TIMM checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint path')
    parser.add_argument(
        '--force', action='store_true', help='overwrite an existing dst')
    return parser.parse_args(argv)


def load_weights(path: str) -> Mapping[str, torch.Tensor]:
    """Read a checkpoint's state dict (plain, or under model/state_dict)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist: pass the path of '
                                'the downloaded checkpoint.')
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # torch raises several types here
        raise ValueError(f'{path} cannot be read as a PyTorch checkpoint '
                         f'of tensors: {exc}') from exc
    if not isinstance(ckpt, dict):
        raise ValueError(f'{path} holds a {type(ckpt).__name__}, not a state '
                         'dict.')
    for key in ('model', 'state_dict'):
        if isinstance(ckpt.get(key), dict):
            ckpt = ckpt[key]
            break
    if ckpt and all(k.startswith('module.') for k in ckpt):
        ckpt = OrderedDict((k[len('module.'):], v) for k, v in ckpt.items())
    return ckpt


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    try:
        if osp.exists(args.dst) and not args.force:
            raise FileExistsError(f'{args.dst} exists; pass --force to '
                                  'overwrite it.')
        weights = load_weights(args.src)
        try:
            converted = convert_torchvision_resnet(weights)
        except ValueError as exc:
            raise ValueError(f'{args.src}: {exc}') from exc
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        raise SystemExit(f'resnet2mmpretrain: error: {exc}')
    if osp.dirname(args.dst):
        os.makedirs(osp.dirname(args.dst), exist_ok=True)
    meta = dict(
        converted_from=osp.basename(args.src),
        converter='tools/model_converters/resnet2mmpretrain.py',
        layout='BlockFeatureResNet')
    torch.save(dict(state_dict=converted, meta=meta), args.dst)
    print(f'Converted {len(weights)} tensors of {args.src} (classifier '
          f'fc dropped) into {len(converted)} and wrote {args.dst}')


if __name__ == '__main__':
    main()
