# Copyright (c) dcama_mm contributors. All rights reserved.
"""Convert torchvision / TIMM ResNet weights for ``BlockFeatureResNet``.

Input: a ResNet-50/101 state dict with torchvision's key names, such as
TIMM's ``resnet50_a1h`` / ``resnet101_a1h`` files that DCAMA starts from
(plain, or under ``state_dict`` / ``model``). Output: a checkpoint
``dict(state_dict=..., meta=...)`` that
``BlockFeatureResNet(init_cfg=dict(type='Pretrained', checkpoint=DST))``
loads with no missing or unexpected keys (the classifier ``fc`` is dropped).

The depth is read from the keys (blocks per stage, bottleneck or basic
blocks) and printed; ResNet-18/34 (basic blocks) are refused, and so is
another depth than ``--depth`` when it is given. The output's ``meta``
records the depth.

Example:
    python tools/model_converters/resnet2mmpretrain.py \\
        resnet50_a1h-35c100f8.pth checkpoints/resnet50_a1h_mmpretrain.pth \\
        --depth 50
"""
from typing import List, Optional

from dcama_mm.models.utils.converter_cli import run_weight_converter


def main(argv: Optional[List[str]] = None) -> None:
    args, weights, converted, found = run_weight_converter(
        'resnet2mmpretrain', argv)
    print(f'Converted {len(weights)} tensors of {args.src} (classifier '
          f'fc dropped) into {len(converted)} and wrote {args.dst} (for '
          f'BlockFeatureResNet depth={found["depth"]})')


if __name__ == '__main__':
    main()
