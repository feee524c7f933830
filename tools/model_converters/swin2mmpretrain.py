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
import os
import os.path as osp
from collections import OrderedDict
from typing import List, Mapping, Optional

import torch

from dcama_mm.models.utils.backbone_converters import convert_official_swin


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert official Swin Transformer weights to the '
        'mmpretrain / BlockFeatureSwin layout.')
    parser.add_argument('src', help='official checkpoint (.pth)')
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
            converted = convert_official_swin(weights)
        except ValueError as exc:
            raise ValueError(f'{args.src}: {exc}') from exc
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        raise SystemExit(f'swin2mmpretrain: error: {exc}')
    if osp.dirname(args.dst):
        os.makedirs(osp.dirname(args.dst), exist_ok=True)
    meta = dict(
        converted_from=osp.basename(args.src),
        converter='tools/model_converters/swin2mmpretrain.py',
        layout='BlockFeatureSwin')
    torch.save(dict(state_dict=converted, meta=meta), args.dst)
    print(f'Converted {len(converted)} of {len(weights)} tensors of '
          f'{args.src} (dropped {len(weights) - len(converted)}: '
          f'index/mask buffers, final norm, head) and wrote {args.dst}')


if __name__ == '__main__':
    main()
