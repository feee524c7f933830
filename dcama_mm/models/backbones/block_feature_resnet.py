# Copyright (c) dcama_mm contributors. All rights reserved.
from typing import List, Optional, Tuple

import torch
from mmpretrain.models import ResNet
from mmpretrain.models.backbones.resnet import Bottleneck

from mmseg.registry import MODELS
from ..utils.fast_paths import (REMOVED_SWITCHES, FastPathMixin,
                                refuse_removed_switches)
from .frozen_backbone_mixin import FrozenBackboneMixin
from ...utils.checks import strict_arguments

# options of ResNet that BlockFeatureResNet decides itself
_FIXED_OPTIONS = ('out_indices', 'num_stages')


def _bottleneck_pre_relu(block: Bottleneck, x: torch.Tensor) -> torch.Tensor:
    """``block(x)`` without its final ReLU: the residual sum itself.

    mmpretrain's ``Bottleneck`` applies the ReLU inside its ``forward``, so
    the sum DCAMA reads is not reachable from outside; this spells out the
    block's computation, module by module.
    """
    out = block.relu(block.norm1(block.conv1(x)))
    out = block.relu(block.norm2(block.conv2(out)))
    out = block.norm3(block.conv3(out))
    identity = x if block.downsample is None else block.downsample(x)
    return block.drop_path(out) + identity


@MODELS.register_module()
@strict_arguments(ignore=REMOVED_SWITCHES)
class BlockFeatureResNet(FastPathMixin, FrozenBackboneMixin, ResNet):
    """ResNet returning the output of every bottleneck, for DCAMA.

    `Deep Residual Learning for Image Recognition
    <https://arxiv.org/abs/1512.03385>`_, as the feature extractor of `DCAMA
    <https://arxiv.org/abs/2207.10866>`_ (official code:
    https://github.com/pawn-sxy/DCAMA).

    mmpretrain's :class:`~mmpretrain.models.ResNet` in torchvision's layout
    (``style='pytorch'``: stride on the 3x3 conv) with a forward that
    collects, per stage, every bottleneck's output after the residual
    addition and BEFORE its final ReLU (the ReLU is still applied before the
    next block), as ``[N, C_s, h_s, w_s]`` maps.

    Fast path (:mod:`dcama_mm.models.utils.fast_paths`): the convolutions
    run on channels-last (NHWC-strided) tensors: the input is converted and
    the layout propagates through the network; the returned
    ``[N, C, H, W]`` features are then channels-last strided, which the
    head's token view reads without a copy. Parameters keep their layout.

    Released weights: torchvision's and TIMM's ResNets (e.g.
    ``resnet50_a1h``) have the same key names; convert them with
    ``tools/model_converters/resnet2mmpretrain.py`` (drops ``fc.*``) and load
    the result through ``init_cfg=dict(type='Pretrained', checkpoint=...)``.

    Args:
        depth (int): 50, 101 or 152 (bottleneck ResNets). Defaults to 50.
        frozen (bool): Freeze the backbone, as DCAMA does: every parameter
            has ``requires_grad=False``, :meth:`train` keeps the module in
            eval mode whatever the requested mode (BatchNorm statistics
            frozen), and :meth:`forward` runs under :func:`torch.no_grad`.
            With False it is an ordinary trainable backbone.
            Defaults to True.
        init_cfg (dict, optional): Initialization config, e.g.
            ``dict(type='Pretrained', checkpoint='resnet50_a1h.pth')``.
            Defaults to None.
        **kwargs: Other arguments of mmpretrain's ``ResNet``
            (``base_channels``, ``stem_channels``, ``norm_cfg``, ...), except
            ``out_indices`` and ``num_stages``, which this class sets.
            ``with_cp`` has no effect: the bottlenecks are run step by step
            to read their pre-ReLU sums.

    Attributes:
        num_blocks (tuple[int]): Bottlenecks per stage, e.g. (3, 4, 6, 3).
        out_channels (tuple[int]): Channels per stage, e.g.
            (256, 512, 1024, 2048).

    Examples:
        >>> import torch
        >>> from dcama_mm.models.backbones import BlockFeatureResNet
        >>> model = BlockFeatureResNet(depth=50, base_channels=8,
        ...                            stem_channels=8)
        >>> feats = model(torch.rand(1, 3, 64, 64))
        >>> [len(stage) for stage in feats]
        [3, 4, 6, 3]
        >>> [tuple(stage[0].shape) for stage in feats]
        [(1, 32, 16, 16), (1, 64, 8, 8), (1, 128, 4, 4), (1, 256, 2, 2)]
    """

    def __init__(self,
                 depth: int = 50,
                 frozen: bool = True,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        refuse_removed_switches('BlockFeatureResNet', kwargs)
        if depth not in self.arch_settings or \
                self.arch_settings[depth][0] is not Bottleneck:
            depths = sorted(d for d, (block, _) in self.arch_settings.items()
                            if block is Bottleneck)
            raise ValueError(f'BlockFeatureResNet: depth must be one of '
                             f'{depths} (bottleneck ResNets), got {depth}.')
        fixed = [key for key in _FIXED_OPTIONS if key in kwargs]
        if fixed:
            raise ValueError(
                f'BlockFeatureResNet sets {fixed} itself (it returns every '
                'bottleneck of the 4 stages); remove them from the backbone '
                'config.')
        super().__init__(
            depth=depth,
            num_stages=4,
            out_indices=(3, ),
            init_cfg=init_cfg,
            **kwargs)
        self.num_blocks = tuple(self.stage_blocks)
        self.out_channels = tuple(
            getattr(self, name)[-1].out_channels for name in self.res_layers)
        self._set_frozen(frozen)

    def fast_paths_for(self, device: torch.device, dtype: torch.dtype,
                       training: bool) -> Tuple[str, ...]:
        return ('channels-last convolutions', )

    def _block_features(self,
                        x: torch.Tensor) -> Tuple[List[torch.Tensor], ...]:
        """Every bottleneck's pre-ReLU output, per stage (strides 4, 8, 16,
        32)."""
        if self.fast_paths:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(self.norm1(self.conv1(x)))
        x = self.maxpool(x)
        stages = []
        for name in self.res_layers:
            feats = []
            for block in getattr(self, name):
                feat = _bottleneck_pre_relu(block, x)
                feats.append(feat)
                x = torch.relu(feat)  # not in place: feat is returned
            stages.append(feats)
        return tuple(stages)
