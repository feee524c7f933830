"""A compact, independent Swin Transformer in the OFFICIAL release layout.

Written from the paper and the official release's structure (Liu et al.,
"Swin Transformer: Hierarchical Vision Transformer using Shifted Windows",
ICCV 2021, https://github.com/microsoft/Swin-Transformer): same modules,
same parameter and buffer names (``patch_embed.proj``,
``layers.{i}.blocks.{j}.attn.qkv``, ``layers.{i}.downsample.reduction``,
``relative_position_index`` and ``attn_mask`` buffers, ``norm``, ``head``),
same fixed-resolution behaviour (a stage whose map is not larger than the
window uses one window the size of the map and no shift), and the official
patch-merging order of the four neighbours ``(0,0), (1,0), (0,1), (1,1)``.

It only serves as ground truth in tests: the reference DCAMA reads the output
of every block, before the stage's patch merging, with no extra norm.
:meth:`OfficialSwin.forward_block_features` returns exactly that.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

__all__ = ['OfficialSwin', 'official_swin_base']


def _to_windows(x: torch.Tensor, size: int) -> torch.Tensor:
    """Split ``[B, H, W, C]`` into ``[B * nW, size * size, C]``."""
    b, h, w, c = x.shape
    x = x.view(b, h // size, size, w // size, size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, size * size, c)


def _from_windows(windows: torch.Tensor, size: int, h: int,
                  w: int) -> torch.Tensor:
    """Inverse of :func:`_to_windows`: back to ``[B, H, W, C]``."""
    c = windows.shape[-1]
    x = windows.view(-1, h // size, w // size, size, size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


class _PatchEmbed(nn.Module):

    def __init__(self, patch_size: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class _WindowAttention(nn.Module):

    def __init__(self, dim: int, window: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads)**-0.5
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window - 1)**2, num_heads))
        ys, xs = torch.meshgrid(
            torch.arange(window), torch.arange(window), indexing='ij')
        coords = torch.stack([ys.flatten(), xs.flatten()])  # 2, N
        rel = coords[:, :, None] - coords[:, None, :] + (window - 1)
        self.register_buffer('relative_position_index',
                             rel[0] * (2 * window - 1) + rel[1])
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor,
                mask: Optional[torch.Tensor]) -> torch.Tensor:
        bw, n, c = x.shape
        qkv = self.qkv(x).view(bw, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[
            self.relative_position_index.flatten()].view(n, n, -1)
        attn = attn + bias.permute(2, 0, 1)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(bw // nw, nw, self.num_heads, n, n)
            attn = (attn + mask[None, :, None]).view(bw, self.num_heads, n, n)
        x = (attn.softmax(-1) @ v).transpose(1, 2).reshape(bw, n, c)
        return self.proj(x)


class _Mlp(nn.Module):

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):

    def __init__(self, dim: int, resolution: Tuple[int, int], num_heads: int,
                 window: int, shift: int, mlp_ratio: float) -> None:
        super().__init__()
        self.resolution = resolution
        if min(resolution) <= window:  # one window over the whole map
            window, shift = min(resolution), 0
        self.window, self.shift = window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _WindowAttention(dim, window, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))
        mask = None
        if shift > 0:
            h, w = resolution
            region = torch.zeros(1, h, w, 1)
            bounds = (slice(0, -window), slice(-window, -shift),
                      slice(-shift, None))
            for i, hs in enumerate(bounds):
                for j, ws in enumerate(bounds):
                    region[:, hs, ws, :] = 3 * i + j
            region = _to_windows(region, window).squeeze(-1)  # nW, N
            diff = region[:, None, :] - region[:, :, None]
            mask = torch.zeros_like(diff).masked_fill(diff != 0, -100.0)
        self.register_buffer('attn_mask', mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.resolution
        b, _, c = x.shape
        y = self.norm1(x).view(b, h, w, c)
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), dims=(1, 2))
        y = self.attn(_to_windows(y, self.window), self.attn_mask)
        y = _from_windows(y, self.window, h, w)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), dims=(1, 2))
        x = x + y.reshape(b, h * w, c)
        return x + self.mlp(self.norm2(x))


class _PatchMerging(nn.Module):

    def __init__(self, resolution: Tuple[int, int], dim: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.resolution
        b, _, c = x.shape
        x = x.view(b, h, w, c)
        # official neighbour order: (0,0), (1,0), (0,1), (1,1)
        x = torch.cat([
            x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2],
            x[:, 1::2, 1::2]
        ], -1).view(b, -1, 4 * c)
        return self.reduction(self.norm(x))


class _Stage(nn.Module):

    def __init__(self, dim: int, resolution: Tuple[int, int], depth: int,
                 num_heads: int, window: int, mlp_ratio: float,
                 downsample: bool) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([
            _Block(dim, resolution, num_heads, window,
                   0 if i % 2 == 0 else window // 2, mlp_ratio)
            for i in range(depth)
        ])
        self.downsample = _PatchMerging(resolution,
                                        dim) if downsample else None


class OfficialSwin(nn.Module):
    """Swin Transformer with the official layout, at a fixed resolution.

    Args:
        img_size (int): Input height and width (square, fixed).
            Defaults to 384.
        patch_size (int): Patch size. Defaults to 4.
        embed_dim (int): Channels of stage 1. Defaults to 128.
        depths (Sequence[int]): Blocks per stage. Defaults to (2, 2, 18, 2).
        num_heads (Sequence[int]): Heads per stage.
            Defaults to (4, 8, 16, 32).
        window_size (int): Window size. Defaults to 12.
        mlp_ratio (float): MLP hidden ratio. Defaults to 4.
        num_classes (int): Classifier outputs. Defaults to 1000.
    """

    def __init__(self,
                 img_size: int = 384,
                 patch_size: int = 4,
                 embed_dim: int = 128,
                 depths: Sequence[int] = (2, 2, 18, 2),
                 num_heads: Sequence[int] = (4, 8, 16, 32),
                 window_size: int = 12,
                 mlp_ratio: float = 4.,
                 num_classes: int = 1000) -> None:
        super().__init__()
        self.img_size = img_size
        self.patch_embed = _PatchEmbed(patch_size, embed_dim)
        res = img_size // patch_size
        self.layers = nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            r = res // 2**i
            self.layers.append(
                _Stage(embed_dim * 2**i, (r, r), depth, heads, window_size,
                       mlp_ratio, i < len(depths) - 1))
        num_features = embed_dim * 2**(len(depths) - 1)
        self.norm = nn.LayerNorm(num_features)
        self.head = nn.Linear(num_features, num_classes)

    def forward_block_features(
            self, x: torch.Tensor) -> Tuple[List[torch.Tensor], ...]:
        """Every block's output before patch merging, per stage, BxCxhxw."""
        if tuple(x.shape[-2:]) != (self.img_size, self.img_size):
            raise ValueError(f'OfficialSwin is built for {self.img_size}x'
                             f'{self.img_size} inputs, got {x.shape}.')
        x = self.patch_embed(x)
        stages = []
        for layer in self.layers:
            feats = []
            for block in layer.blocks:
                x = block(x)
                b, n, c = x.shape
                h, w = block.resolution
                feats.append(x.transpose(1, 2).reshape(b, c, h, w))
            stages.append(feats)
            if layer.downsample is not None:
                x = layer.downsample(x)
        return tuple(stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classification logits (kept so the layout is complete)."""
        last = self.forward_block_features(x)[-1][-1]
        return self.head(self.norm(last.flatten(2).transpose(1, 2)).mean(1))


def official_swin_base(img_size: int = 384) -> OfficialSwin:
    """Swin-B, patch 4, window 12: the DCAMA reference backbone."""
    return OfficialSwin(img_size=img_size)
