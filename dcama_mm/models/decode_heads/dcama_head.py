# Copyright (c) dcama_mm contributors. All rights reserved.
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptMultiConfig
from torch import Tensor

from ..layers import DCAMAAttention, SinusoidalPositionalEncoding
from ..utils.fast_paths import (REMOVED_SWITCHES, FastPathMixin,
                                refuse_removed_switches)
from ...utils.checks import strict_arguments

BlockFeatures = Tuple[List[Tensor], List[Tensor], List[Tensor], List[Tensor]]


def _conv_gn_relu_block(in_channels: int, out_channels: Sequence[int],
                        kernel_sizes: Sequence[int],
                        num_groups: int) -> nn.Sequential:
    """Three [Conv2d -> GroupNorm -> ReLU] layers, as in the reference.

    Plain ``nn`` layers (indices 0/3/6 convs, 1/4/7 norms) keep PyTorch's
    default initialisation and the reference's parameter layout.
    """
    layers: List[nn.Module] = []
    for out_ch, kernel in zip(out_channels, kernel_sizes):
        layers += [
            nn.Conv2d(in_channels, out_ch, kernel, padding=kernel // 2),
            nn.GroupNorm(num_groups, out_ch),
            nn.ReLU(inplace=True)
        ]
        in_channels = out_ch
    return nn.Sequential(*layers)


def _mixer(in_channels: int, mid_channels: int, out_channels: int,
           final_relu: bool) -> nn.Sequential:
    """Conv3x3 -> ReLU -> Conv3x3 (-> ReLU)."""
    layers: List[nn.Module] = [
        nn.Conv2d(in_channels, mid_channels, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(mid_channels, out_channels, 3, padding=1)
    ]
    if final_relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _up(x: Tensor, size: Sequence[int]) -> Tensor:
    """mmseg's bilinear ``resize`` with ``align_corners=True``, as DCAMA."""
    return resize(
        x, size=tuple(size), mode='bilinear', align_corners=True,
        warning=False)


def _max_over_shots(feats: Tensor) -> Tensor:
    """``[B, K, C, h, w]`` -> ``[B, C, h, w]``, max over the K shots (a view
    for K = 1)."""
    return feats[:, 0] if feats.shape[1] == 1 else feats.amax(dim=1)


def _conv3x3_of_up_and_skip(conv: nn.Conv2d, low: Tensor,
                            skip: Tensor) -> Tensor:
    """``conv(cat(_up(low, skip size), skip))`` with half the work.

    ``conv`` is a 3x3 convolution (stride 1, padding 1, zero padding). Its
    weight splits by input channels into ``W_low`` and ``W_skip``;
    channel mixing commutes with the (per-channel, linear) bilinear resize
    and with shifts, so the ``low`` part equals the sum over the 9 taps
    ``t`` of ``shift_t(_up(W_low[t] low))``: one 1x1 convolution with
    ``9 x C_out`` outputs at the low resolution, then per tap a resize of
    its ``C_out`` channels and a shifted addition. Equal to the
    concatenated form up to float round-off; with
    ``low`` at half the resolution it needs about 4x fewer FLOPs for that
    part, and the concatenation is never stored.
    """
    weight = conv.weight
    out_channels, low_channels = weight.shape[0], low.shape[1]
    height, width = skip.shape[-2:]
    taps = weight[:, :low_channels].permute(2, 3, 0, 1).reshape(
        9 * out_channels, low_channels, 1, 1)
    low = F.conv2d(low, taps)
    out = F.conv2d(skip, weight[:, low_channels:], conv.bias, padding=1)
    for tap in range(9):
        # out[p, q] += up(W_t low)[p + di, q + dj] where inside the map;
        # one tap resized at a time (a ninth of the memory, as fast)
        di, dj = tap // 3 - 1, tap % 3 - 1
        part = _up(low[:, tap * out_channels:(tap + 1) * out_channels],
                   (height, width))
        out[..., max(0, -di):height - max(0, di),
            max(0, -dj):width - max(0, dj)] += part[
                ..., max(0, di):height - max(0, -di),
                max(0, dj):width - max(0, -dj)]
    return out


@MODELS.register_module()
@strict_arguments(ignore=REMOVED_SWITCHES)
class DCAMAHead(FastPathMixin, BaseDecodeHead):
    """Dense Cross-query-and-support Attention weighted Mask Aggregation head.

    The head of DCAMA (`Dense Cross-Query-and-Support Attention Weighted Mask
    Aggregation for Few-Shot Segmentation <https://arxiv.org/abs/2207.10866>`_,
    official code: https://github.com/pawn-sxy/DCAMA). For every block feature
    of backbone stages 2-4, the query tokens attend to the tokens of all K
    support images of their episode at once and aggregate the support mask
    values into one coarse mask per block. The coarse masks of each stage go
    through a conv block, are fused coarse-to-fine, concatenated with the
    last stage-2 and stage-1 features of the query and the (max over shots)
    supports, and decoded by three mixers into 2-class logits.

    Fast path (:mod:`dcama_mm.models.utils.fast_paths`): the first mixer
    convolution, whose input is the stride-8 features resized to stride 4
    and concatenated with the stage-1 features, runs factored
    (:func:`_conv3x3_of_up_and_skip`: the same weights, about half the
    FLOPs of the head's largest layer, the concatenation never stored).
    The attention modules own theirs (:class:`DCAMAAttention`).

    Differences from the reference code (see ``docs/model.md``): the
    positional table is computed for any number of tokens; with batch > 1 and
    K > 1 every episode attends only to its own supports; the 2x upsamplings
    use ``(2h, 2w)`` (the first one resizes to the stage-1 size) so that
    non-square inputs work, and the logits are resized to the mask size when
    the input size is not a multiple of the backbone's strides.

    Args:
        in_channels (Sequence[int]): Channels of the 4 backbone stages.
        num_blocks (Sequence[int]): Number of blocks (feature maps) of the 4
            backbone stages.
        num_heads (int): Attention heads. Defaults to 8.
        attn_drop (float): Dropout on the attention weights. Defaults to 0.5.
        pe_drop (float): Dropout after the positional encoding. Defaults to
            0.5.
        channels (int): Channels of the fused coarse-mask features.
            Defaults to 128.
        num_classes (int): Must be 2 (background, foreground). Defaults to 2.
        norm_groups (int): Groups of the GroupNorm layers. Defaults to 4.
        loss_decode (dict | Sequence[dict]): Loss config. Defaults to
            ``dict(type='CrossEntropyLoss', use_sigmoid=False,
            loss_weight=1.0)``.
        ignore_index (int): Label ignored by the loss and the accuracy.
            Defaults to 255.
        align_corners (bool): ``align_corners`` of the loss-time resize.
            Defaults to True.
        init_cfg (dict | list[dict], optional): Initialisation config.
            Defaults to None (PyTorch's default initialisation, as the
            reference).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 num_blocks: Sequence[int],
                 num_heads: int = 8,
                 attn_drop: float = 0.5,
                 pe_drop: float = 0.5,
                 channels: int = 128,
                 num_classes: int = 2,
                 norm_groups: int = 4,
                 loss_decode: ConfigType = dict(
                     type='CrossEntropyLoss',
                     use_sigmoid=False,
                     loss_weight=1.0),
                 ignore_index: int = 255,
                 align_corners: bool = True,
                 init_cfg: OptMultiConfig = None,
                 **kwargs) -> None:
        if len(in_channels) != 4 or len(num_blocks) != 4:
            raise ValueError(
                'DCAMAHead needs in_channels and num_blocks for the 4 '
                f'backbone stages, got in_channels={in_channels}, '
                f'num_blocks={num_blocks}.')
        if min(num_blocks) < 1:
            raise ValueError(
                f'DCAMAHead: every stage needs >= 1 block, got num_blocks='
                f'{num_blocks}.')
        refuse_removed_switches('DCAMAHead', kwargs)
        if num_classes != 2:
            raise ValueError(
                'DCAMAHead predicts background/foreground: num_classes must '
                f'be 2, got {num_classes}.')
        super().__init__(
            in_channels=list(in_channels),
            channels=channels,
            num_classes=num_classes,
            out_channels=num_classes,
            dropout_ratio=0,
            input_transform='multiple_select',
            in_index=[0, 1, 2, 3],
            loss_decode=loss_decode,
            ignore_index=ignore_index,
            align_corners=align_corners,
            init_cfg=init_cfg,
            **kwargs)
        # The logits come from the last mixer: no 1x1 classifier.
        del self.conv_seg
        self.num_blocks = tuple(int(n) for n in num_blocks)

        # stages 2, 3, 4 (strides 8, 16, 32)
        self.pos_encs = nn.ModuleList(
            SinusoidalPositionalEncoding(c, dropout=pe_drop)
            for c in in_channels[1:])
        self.attentions = nn.ModuleList(
            DCAMAAttention(c, num_heads, attn_drop) for c in in_channels[1:])
        mid = (16, 64, channels)
        self.mask_convs = nn.ModuleList([
            _conv_gn_relu_block(num_blocks[1], mid, (5, 5, 3), norm_groups),
            _conv_gn_relu_block(num_blocks[2], mid, (5, 3, 3), norm_groups),
            _conv_gn_relu_block(num_blocks[3], mid, (3, 3, 3), norm_groups),
        ])
        self.fuse_convs = nn.ModuleList(
            _conv_gn_relu_block(channels, (channels, ) * 3, (3, 3, 3),
                                norm_groups) for _ in range(2))
        skip_channels = 2 * in_channels[1] + 2 * in_channels[0]
        self.mixers = nn.ModuleList([
            _mixer(channels + skip_channels, channels, mid[1], True),
            _mixer(mid[1], mid[1], mid[0], True),
            _mixer(mid[0], mid[0], num_classes, False),
        ])

    def fast_paths_for(self, device: torch.device, dtype: torch.dtype,
                       training: bool) -> Tuple[str, ...]:
        return ('factored first mixer convolution', )

    def _check_inputs(self, query_feats: BlockFeatures,
                      support_feats: BlockFeatures) -> None:
        for name, feats in (('query_feats', query_feats),
                            ('support_feats', support_feats)):
            counts = tuple(len(stage) for stage in feats)
            if counts != self.num_blocks:
                raise ValueError(
                    f'DCAMAHead: {name} has {counts} block features per '
                    f'stage but the head was built with num_blocks='
                    f'{self.num_blocks}; set decode_head.num_blocks to the '
                    "backbone's block counts.")

    def coarse_masks(self, query_feats: BlockFeatures,
                     support_feats: BlockFeatures,
                     support_masks: Tensor) -> List[Tensor]:
        """Attention-weighted mask aggregation for stages 2-4.

        Args:
            query_feats (tuple[list[Tensor]]): Query block features
                ``[B, C_s, h_s, w_s]`` per stage.
            support_feats (tuple[list[Tensor]]): Support block features
                ``[B, K, C_s, h_s, w_s]`` per stage.
            support_masks (Tensor): Support masks ``[B, K, H, W]``.

        Returns:
            list[Tensor]: Coarse masks of stages 2, 3, 4, each
            ``[B, n_s, h_s, w_s]`` (one channel per block).
        """
        masks = support_masks.to(query_feats[1][0].dtype)
        outs = []
        for idx, stage in enumerate((1, 2, 3)):
            pos_enc = self.pos_encs[idx]
            attention = self.attentions[idx]
            batch, _, h, w = query_feats[stage][0].shape
            # [B, K, h, w] -> [B, K*h*w], shot-major then row-major
            value = _up(masks, (h, w)).flatten(1)
            block_masks = []
            for q_feat, s_feat in zip(query_feats[stage],
                                      support_feats[stage]):
                query = pos_enc(q_feat.flatten(2).transpose(1, 2))
                key = pos_enc(s_feat.flatten(3).transpose(2, 3))
                key = key.reshape(batch, -1, key.shape[-1])
                block_masks.append(
                    attention(query, key, value).view(batch, 1, h, w))
            outs.append(torch.cat(block_masks, dim=1))
        return outs

    def forward(self, inputs: Tuple[BlockFeatures, BlockFeatures,
                                    Tensor]) -> Tensor:
        """Compute 2-class logits for a batch of episodes.

        Args:
            inputs (tuple): ``(query_feats, support_feats, support_masks)``:
                query block features (tuple of 4 lists of
                ``[B, C_s, h_s, w_s]``), support block features (tuple of 4
                lists of ``[B, K, C_s, h_s, w_s]``) and the support masks
                ``[B, K, H, W]`` (float, 0/1) at the input size.

        Returns:
            Tensor: Logits ``[B, 2, H, W]``.
        """
        query_feats, support_feats, support_masks = inputs
        self._check_inputs(query_feats, support_feats)
        m2, m3, m4 = (conv(mask) for conv, mask in zip(
            self.mask_convs,
            self.coarse_masks(query_feats, support_feats, support_masks)))

        x = self.fuse_convs[0](_up(m4, m3.shape[-2:]) + m3)
        x = self.fuse_convs[1](_up(x, m2.shape[-2:]) + m2)

        x = torch.cat((x, query_feats[1][-1],
                       _max_over_shots(support_feats[1][-1])),
                      dim=1)
        skip = torch.cat(
            (query_feats[0][-1], _max_over_shots(support_feats[0][-1])),
            dim=1)
        if self.fast_paths:
            x = _conv3x3_of_up_and_skip(self.mixers[0][0], x, skip)
            x = self.mixers[0][1:](x)
        else:
            x = torch.cat((_up(x, skip.shape[-2:]), skip), dim=1)
            x = self.mixers[0](x)
        x = _up(x, (2 * x.shape[-2], 2 * x.shape[-1]))
        x = self.mixers[1](x)
        x = _up(x, (2 * x.shape[-2], 2 * x.shape[-1]))
        logits = self.mixers[2](x)
        return _up(logits, support_masks.shape[-2:])
