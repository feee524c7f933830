# Copyright (c) dcama_mm contributors. All rights reserved.
"""Convert the official Swin Transformer weights for ``BlockFeatureSwin``.

Input: a release of https://github.com/microsoft/Swin-Transformer such as
``swin_base_patch4_window12_384_22kto1k.pth`` (the weights DCAMA starts
from; state dict under ``model``). Output: a checkpoint
``dict(state_dict=..., meta=...)`` that
``BlockFeatureSwin(init_cfg=dict(type='Pretrained', checkpoint=DST))`` loads
with no missing or unexpected keys.

The size is read from the keys (embedding width, blocks per stage, heads,
window) and printed; another size than ``--arch`` is refused when it is
given. The output's ``meta`` records it.

Example:
    python tools/model_converters/swin2mmpretrain.py \\
        swin_base_patch4_window12_384_22kto1k.pth \\
        checkpoints/swin_base_patch4_window12_384_22kto1k_mmpretrain.pth \\
        --arch base
"""
from typing import List, Optional

from dcama_mm.models.utils.converter_cli import run_weight_converter


def main(argv: Optional[List[str]] = None) -> None:
    args, weights, converted, _ = run_weight_converter(
        'swin2mmpretrain', argv)
    print(f'Converted {len(converted)} of {len(weights)} tensors of '
          f'{args.src} (dropped {len(weights) - len(converted)}: '
          f'index/mask buffers, final norm, head) and wrote {args.dst}')


if __name__ == '__main__':
    main()
