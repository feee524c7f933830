"""A deliberately straightforward DCAMA, written from docs/model.md.

Ground truth for the tests of :class:`dcama_mm.models.DCAMAHead` and
:class:`dcama_mm.models.FewShotSegmentor`. Nothing here is optimised: the
positional table is filled from the formula, the attention loops over the
episodes of the batch and over the heads with an explicit softmax, and the
supports are processed one image at a time. Parameters and buffers use the
reference release's names (``DCAMA_blocks.{0,1,2}.linears.{0,1}``,
``pe.{0,1,2}.pe``, ``conv1..5``, ``mixer1..3``), so
``ReferenceDCAMA(...).state_dict()`` prefixed with ``module.`` has the layout
of a released DCAMA checkpoint.

Where the reference code has a limit, this follows the spec: supports are
concatenated per episode, upsamplings by 2 use ``(2h, 2w)``.
"""
import math
from typing import Callable, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .official_swin import OfficialSwin
from .torchvision_resnet import extract_block_features, torchvision_resnet

__all__ = [
    'SpecDCAMAHead', 'ReferenceDCAMA', 'reference_swin_dcama',
    'reference_resnet_dcama', 'reference_checkpoint'
]

Feats = Tuple[List[torch.Tensor], ...]


class _SpecAttention(nn.Module):
    """``linears.0`` projects the query, ``linears.1`` the support."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.linears = nn.ModuleList(
            [nn.Linear(channels, channels),
             nn.Linear(channels, channels)])
        self.dropout = nn.Dropout(0.5)

    def forward(self, query: torch.Tensor, key: torch.Tensor,
                value: torch.Tensor) -> torch.Tensor:
        """One episode: query [Lq, C], key [Lk, C], value [Lk] -> [Lq]."""
        q = self.linears[0](query)
        k = self.linears[1](key)
        d_k = q.shape[1] // self.heads
        outs = []
        for j in range(self.heads):
            qj = q[:, j * d_k:(j + 1) * d_k]
            kj = k[:, j * d_k:(j + 1) * d_k]
            scores = qj @ kj.t() / math.sqrt(d_k)
            scores = scores - scores.max(dim=1, keepdim=True).values
            weights = scores.exp()
            weights = weights / weights.sum(dim=1, keepdim=True)
            weights = self.dropout(weights)
            outs.append(weights @ value)
        return torch.stack(outs).mean(dim=0)


class _SpecPE(nn.Module):
    """Sinusoidal table stored as the reference does (1 x max_len x C)."""

    def __init__(self, channels: int, max_len: int = 10000) -> None:
        super().__init__()
        table = np.zeros((max_len, channels))
        pos = np.arange(max_len)[:, None]
        for i in range(0, channels, 2):
            angle = pos[:, 0] / 10000**(i / channels)
            table[:, i] = np.sin(angle)
            table[:, i + 1] = np.cos(angle)
        self.register_buffer(
            'pe', torch.from_numpy(table).float().unsqueeze(0))
        self.dropout = nn.Dropout(0.5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [L, C] of one image."""
        return self.dropout(tokens + self.pe[0, :tokens.shape[0]])


def _block(in_ch: int, kernels: Sequence[int],
           outs: Sequence[int] = (16, 64, 128)) -> nn.Sequential:
    layers = []
    for out, k in zip(outs, kernels):
        layers += [
            nn.Conv2d(in_ch, out, k, padding=k // 2),
            nn.GroupNorm(4, out),
            nn.ReLU()
        ]
        in_ch = out
    return nn.Sequential(*layers)


def _resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    return F.interpolate(
        x, size=tuple(size), mode='bilinear', align_corners=True)


class SpecDCAMAHead(nn.Module):
    """The DCAMA head of docs/model.md, in the reference's layout.

    Args:
        in_channels (Sequence[int]): Channels of the 4 stages.
        num_blocks (Sequence[int]): Blocks of the 4 stages.
        heads (int): Attention heads. Defaults to 8.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 num_blocks: Sequence[int],
                 heads: int = 8) -> None:
        super().__init__()
        self.DCAMA_blocks = nn.ModuleList(
            _SpecAttention(c, heads) for c in in_channels[1:])
        self.pe = nn.ModuleList(_SpecPE(c) for c in in_channels[1:])
        self.conv1 = _block(num_blocks[3], (3, 3, 3))
        self.conv2 = _block(num_blocks[2], (5, 3, 3))
        self.conv3 = _block(num_blocks[1], (5, 5, 3))
        self.conv4 = _block(128, (3, 3, 3), (128, 128, 128))
        self.conv5 = _block(128, (3, 3, 3), (128, 128, 128))
        c1, c2 = in_channels[0], in_channels[1]
        self.mixer1 = nn.Sequential(
            nn.Conv2d(128 + 2 * c2 + 2 * c1, 128, 3, padding=1), nn.ReLU(),
            nn.Conv2d(128, 64, 3, padding=1), nn.ReLU())
        self.mixer2 = nn.Sequential(
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
            nn.Conv2d(64, 16, 3, padding=1), nn.ReLU())
        self.mixer3 = nn.Sequential(
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 2, 3, padding=1))

    def coarse_mask(self, stage: int, q_feat: torch.Tensor,
                    s_feat: torch.Tensor,
                    masks: torch.Tensor) -> torch.Tensor:
        """One block: q_feat [B,C,h,w], s_feat [B,K,C,h,w] -> [B,1,h,w]."""
        attention = self.DCAMA_blocks[stage - 1]
        pe = self.pe[stage - 1]
        batch, channels, h, w = q_feat.shape
        results = []
        for b in range(batch):  # one episode at a time
            query = pe(q_feat[b].reshape(channels, h * w).t())
            keys, values = [], []
            for k in range(s_feat.shape[1]):
                keys.append(pe(s_feat[b, k].reshape(channels, h * w).t()))
                mask = _resize(masks[b, k][None, None].float(), (h, w))
                values.append(mask.reshape(h * w))
            out = attention(query, torch.cat(keys), torch.cat(values))
            results.append(out.reshape(1, h, w))
        return torch.stack(results)

    def forward(self, query_feats: Feats, support_feats: Feats,
                support_masks: torch.Tensor) -> torch.Tensor:
        """query_feats: 4 lists of [B,C,h,w]; support_feats: 4 lists of
        [B,K,C,h,w]; support_masks [B,K,H,W] -> logits [B,2,4h1,4w1]."""
        stacked = []
        for stage in (1, 2, 3):
            stacked.append(
                torch.cat([
                    self.coarse_mask(stage, q, s, support_masks)
                    for q, s in zip(query_feats[stage], support_feats[stage])
                ],
                          dim=1))
        m2 = self.conv3(stacked[0])
        m3 = self.conv2(stacked[1])
        m4 = self.conv1(stacked[2])
        x = self.conv4(_resize(m4, m3.shape[-2:]) + m3)
        x = self.conv5(_resize(x, m2.shape[-2:]) + m2)
        s2 = support_feats[1][-1].max(dim=1).values
        x = torch.cat((x, query_feats[1][-1], s2), dim=1)
        x = _resize(x, (2 * x.shape[-2], 2 * x.shape[-1]))
        s1 = support_feats[0][-1].max(dim=1).values
        x = torch.cat((x, query_feats[0][-1], s1), dim=1)
        x = self.mixer1(x)
        x = _resize(x, (2 * x.shape[-2], 2 * x.shape[-1]))
        x = self.mixer2(x)
        x = _resize(x, (2 * x.shape[-2], 2 * x.shape[-1]))
        return self.mixer3(x)


class ReferenceDCAMA(nn.Module):
    """Reference backbone (``feature_extractor``) + spec head (``model``).

    Args:
        feature_extractor (nn.Module): Official-layout backbone.
        extract (Callable): ``extract(feature_extractor, imgs)`` -> 4 lists of
            block features ``[N, C, h, w]``.
        in_channels (Sequence[int]): Channels of the 4 stages.
        num_blocks (Sequence[int]): Blocks of the 4 stages.
    """

    def __init__(self, feature_extractor: nn.Module,
                 extract: Callable[[nn.Module, torch.Tensor], Feats],
                 in_channels: Sequence[int],
                 num_blocks: Sequence[int]) -> None:
        super().__init__()
        self.feature_extractor = feature_extractor
        self._extract = extract
        self.model = SpecDCAMAHead(in_channels, num_blocks)

    @torch.no_grad()
    def forward(self, query_img: torch.Tensor, support_imgs: torch.Tensor,
                support_masks: torch.Tensor) -> torch.Tensor:
        """query [B,3,H,W], supports [B,K,3,H,W], masks [B,K,H,W]."""
        self.feature_extractor.eval()
        query_feats = self._extract(self.feature_extractor, query_img)
        per_shot = [
            self._extract(self.feature_extractor, support_imgs[:, k])
            for k in range(support_imgs.shape[1])
        ]
        support_feats = tuple([
            torch.stack([shot[s][i] for shot in per_shot], dim=1)
            for i in range(len(query_feats[s]))
        ] for s in range(4))
        return self.model(query_feats, support_feats, support_masks)


def reference_swin_dcama(img_size: int, embed_dim: int,
                         depths: Sequence[int], num_heads: Sequence[int],
                         window_size: int) -> ReferenceDCAMA:
    """Reference DCAMA on an official-layout Swin (random weights)."""
    swin = OfficialSwin(
        img_size=img_size,
        embed_dim=embed_dim,
        depths=depths,
        num_heads=num_heads,
        window_size=window_size)
    channels = [embed_dim * 2**i for i in range(4)]
    return ReferenceDCAMA(swin, lambda m, x: m.forward_block_features(x),
                          channels, depths)


def reference_resnet_dcama(depth: int, base_channels: int) -> ReferenceDCAMA:
    """Reference DCAMA on a (narrow) torchvision ResNet (random weights)."""
    from .torchvision_resnet import STAGE_BLOCKS
    resnet = torchvision_resnet(depth, base_channels)
    channels = [base_channels * 4 * 2**i for i in range(4)]
    return ReferenceDCAMA(resnet, extract_block_features, channels,
                          STAGE_BLOCKS[depth])


def reference_checkpoint(model: ReferenceDCAMA) -> dict:
    """The model's state dict as DistributedDataParallel saves it."""
    return {'module.' + k: v for k, v in model.state_dict().items()}
