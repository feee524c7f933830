# Copyright (c) dcama_mm contributors. All rights reserved.
import functools
from typing import Tuple

import torch
import torch.nn.functional as F
from mmpretrain.models.utils import ShiftWindowMSA, WindowMSA
from torch import Tensor

from ..utils.fast_paths import FastPathMixin


class SDPAWindowMSA(FastPathMixin, WindowMSA):
    """mmpretrain's :class:`~mmpretrain.models.utils.WindowMSA` computed by
    :func:`torch.nn.functional.scaled_dot_product_attention`.

    The same parameters and the same result up to float round-off: the
    relative position bias (and the shifted-window mask) is passed to SDPA as
    an additive mask, so the scaling, the bias, the mask, the softmax and
    the value product run in one fused kernel (the flash kernel on the CPU)
    instead of five separate passes over the ``[windows, heads, N, N]``
    scores. With attention dropout in training it uses the parent's
    computation, so the dropout is drawn exactly as there.

    A fast path of the speed policy (:mod:`dcama_mm.models.utils.
    fast_paths`): with fast paths off it is mmpretrain's computation.
    :func:`use_sdpa_window_attention` turns the window attention modules of
    a built Swin into this class (it adds no state), as
    :class:`BlockFeatureSwin` does for every config.
    """

    def fast_paths_for(self, device: torch.device, dtype: torch.dtype,
                       training: bool) -> Tuple[str, ...]:
        if training and self.attn_drop.p > 0:
            return ()
        return ('SDPA window attention', )

    def forward(self, x: Tensor, mask: Tensor = None) -> Tensor:
        """
        Args:
            x (Tensor): Window tokens ``[num_windows * B, N, C]``.
            mask (Tensor, optional): Shifted-window mask
                ``[num_windows, N, N]`` with values in ``(-inf, 0]``.
                Defaults to None.

        Returns:
            Tensor: ``[num_windows * B, N, C]``.
        """
        if not self.fast_paths or (self.training and self.attn_drop.p > 0):
            return super().forward(x, mask)
        windows, length, channels = x.shape
        qkv = self.qkv(x).reshape(windows, length, 3, self.num_heads,
                                  channels // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        bias = self.relative_position_bias_table[
            self.relative_position_index.view(-1)].view(length, length, -1)
        # [1, heads, N, N], contiguous so that the sum with the shift mask
        # is too (else SDPA's input needs one more copy of it)
        attn_mask = bias.permute(2, 0, 1).contiguous().unsqueeze(0)
        if mask is not None:
            num_windows = mask.shape[0]
            # [num_windows, heads, N, N], repeated for the B images
            attn_mask = attn_mask + mask.unsqueeze(1).to(attn_mask.dtype)
            if windows != num_windows:
                attn_mask = attn_mask.repeat(windows // num_windows, 1, 1, 1)
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_mask.to(q.dtype).contiguous(),
            scale=self.scale)
        out = out.transpose(1, 2).reshape(windows, length, channels)
        return self.proj_drop(self.proj(out))


def use_sdpa_window_attention(module: torch.nn.Module) -> int:
    """Turn every ``WindowMSA`` inside ``module`` into a
    :class:`SDPAWindowMSA` and every ``ShiftWindowMSA`` into a
    :class:`GatherShiftWindowMSA`, in place.

    Args:
        module (nn.Module): E.g. an mmpretrain ``SwinTransformer``.

    Returns:
        int: The number of converted window attention modules.
    """
    count = 0
    for child in module.modules():
        if type(child) is WindowMSA:
            child.__class__ = SDPAWindowMSA
            count += 1
        elif type(child) is ShiftWindowMSA:
            child.__class__ = GatherShiftWindowMSA
    return count


@functools.lru_cache(maxsize=64)
def _window_order(height: int, width: int, window_size: int,
                  shift_size: int, device: torch.device) -> Tensor:
    """Token indices of a ``height x width`` map (row-major) in the order of
    mmpretrain's ``window_partition(roll(x, -shift))``, and the inverse
    permutation (``window_reverse`` followed by the reverse roll)."""
    rows = torch.arange(height).roll(-shift_size)
    cols = torch.arange(width).roll(-shift_size)
    index = (rows[:, None] * width + cols[None, :]).view(
        height // window_size, window_size, width // window_size,
        window_size).permute(0, 2, 1, 3).reshape(-1)
    return torch.stack((index, index.argsort())).to(device)


@functools.lru_cache(maxsize=16)
def _shift_mask(height: int, width: int, window_size: int, shift_size: int,
                device: torch.device) -> Tensor:
    """mmpretrain's shifted-window mask ``[num_windows, N, N]``, built once
    per map size (mmpretrain builds it in every block's forward)."""
    return ShiftWindowMSA.get_attn_mask((height, width), window_size,
                                        shift_size, device)


class GatherShiftWindowMSA(FastPathMixin, ShiftWindowMSA):
    """mmpretrain's :class:`~mmpretrain.models.utils.ShiftWindowMSA` with
    the cyclic shift and the window partition done by one gather.

    The same parameters and the same result (exactly: only the data
    movement changes). mmpretrain copies the tokens five times per block
    (zero padding, roll, window partition, window reverse, reverse roll)
    and rebuilds the shift mask in every block; here the shifted windows
    are one ``index_select`` with a cached index, the reverse is a second
    one, a map that is exactly one window needs no copy at all, and the
    shift mask is cached per map size. Maps that need padding use the
    parent's computation.

    A fast path of the speed policy: with fast paths off it is
    mmpretrain's computation. :func:`use_sdpa_window_attention` turns the
    shifted-window modules of a built Swin into this class (it adds no
    state).
    """

    def fast_paths_for(self, device: torch.device, dtype: torch.dtype,
                       training: bool) -> Tuple[str, ...]:
        return ('shifted windows by one gather', )

    def forward(self, query: Tensor, hw_shape: Tuple[int, int]) -> Tensor:
        batch, length, channels = query.shape
        height, width = hw_shape
        window_size = self.window_size
        if (not self.fast_paths or length != height * width
                or height % window_size or width % window_size):
            return super().forward(query, hw_shape)
        shift_size = self.shift_size
        if min(height, width) == window_size and not self.pad_small_map:
            shift_size = 0  # as mmpretrain: one unshifted window
        mask = None
        if shift_size > 0:
            mask = _shift_mask(height, width, window_size, shift_size,
                               query.device)
        if height == width == window_size:
            windows = self.w_msa(query, mask=mask)
        else:
            order, inverse = _window_order(height, width, window_size,
                                           shift_size, query.device)
            windows = query.index_select(1, order).view(
                -1, window_size**2, channels)
            windows = self.w_msa(windows, mask=mask).view(
                batch, length, channels).index_select(1, inverse)
        return self.drop(windows.view(batch, length, channels))
