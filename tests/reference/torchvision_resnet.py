"""torchvision's ResNet and the reference DCAMA's per-bottleneck features.

:func:`torchvision_resnet` builds ``torchvision.models.ResNet`` with
torchvision's own ``Bottleneck`` and layer builder, optionally narrowed
(``base_channels`` < 64) so tests run fast; with ``base_channels=64`` it is
exactly ``torchvision.models.resnet50/101(weights=None)``.

:func:`extract_block_features` reproduces the reference DCAMA's feature
extraction: every bottleneck's output after the residual addition and before
the final ReLU (the ReLU is still applied before the next block).
"""
from typing import List, Tuple

import torch
import torch.nn as nn
from torchvision.models import ResNet
from torchvision.models.resnet import Bottleneck

__all__ = ['STAGE_BLOCKS', 'torchvision_resnet', 'extract_block_features']

#: Bottlenecks per stage of the ResNet depths DCAMA uses.
STAGE_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


class _NarrowResNet(ResNet):
    """torchvision's ResNet whose stem has ``base_channels`` channels and
    whose stages have ``base_channels * 2**i`` bottleneck widths."""

    def __init__(self, stage_blocks: Tuple[int, ...], base_channels: int,
                 num_classes: int) -> None:
        nn.Module.__init__(self)
        # attributes torchvision's ResNet._make_layer reads
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = base_channels
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        self.conv1 = nn.Conv2d(
            3, base_channels, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for i, num in enumerate(stage_blocks):
            self.add_module(
                f'layer{i + 1}',
                self._make_layer(Bottleneck, base_channels * 2**i, num,
                                 stride=1 if i == 0 else 2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(base_channels * 2**3 * Bottleneck.expansion,
                            num_classes)


def torchvision_resnet(depth: int = 50,
                       base_channels: int = 64,
                       num_classes: int = 1000) -> ResNet:
    """A torchvision-layout ResNet with random weights.

    Args:
        depth (int): 50, 101 or 152. Defaults to 50.
        base_channels (int): Stem channels and stage-1 bottleneck width;
            64 gives torchvision's model. Defaults to 64.
        num_classes (int): Classifier outputs. Defaults to 1000.

    Returns:
        torchvision.models.ResNet: The model (train mode, as built).
    """
    if depth not in STAGE_BLOCKS:
        raise ValueError(f'depth must be one of {sorted(STAGE_BLOCKS)}, '
                         f'got {depth}.')
    return _NarrowResNet(STAGE_BLOCKS[depth], base_channels, num_classes)


def extract_block_features(model: ResNet,
                           img: torch.Tensor) -> Tuple[List[torch.Tensor],
                                                       ...]:
    """Per-stage lists of every bottleneck's pre-ReLU output.

    Spelled out module by module, as the reference DCAMA does: the residual
    sum is recorded (cloned, since torchvision's ReLU works in place) and
    then passed through the block's ReLU into the next block.

    Args:
        model (ResNet): A torchvision-layout ResNet.
        img (torch.Tensor): Images ``[N, 3, H, W]``.

    Returns:
        tuple[list[torch.Tensor]]: 4 lists of ``[N, C_s, h_s, w_s]``.
    """
    feat = model.maxpool(model.relu(model.bn1(model.conv1(img))))
    stages = []
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        feats = []
        for block in layer:
            res = feat
            feat = block.relu(block.bn1(block.conv1(feat)))
            feat = block.relu(block.bn2(block.conv2(feat)))
            feat = block.bn3(block.conv3(feat))
            if block.downsample is not None:
                res = block.downsample(res)
            feat = feat + res
            feats.append(feat.clone())
            feat = block.relu(feat)
        stages.append(feats)
    return tuple(stages)
