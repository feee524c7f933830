# Copyright (c) dcama_mm contributors. All rights reserved.
import torch
import torch.nn.functional as F
from mmpretrain.models.utils import WindowMSA
from torch import Tensor


class SDPAWindowMSA(WindowMSA):
    """mmpretrain's :class:`~mmpretrain.models.utils.WindowMSA` computed by
    :func:`torch.nn.functional.scaled_dot_product_attention`.

    The same parameters and the same result up to float round-off: the
    relative position bias (and the shifted-window mask) is passed to SDPA as
    an additive mask, so the scaling, the bias, the mask, the softmax and
    the value product run in one fused kernel (the flash kernel on the CPU)
    instead of five separate passes over the ``[windows, heads, N, N]``
    scores. With attention dropout in training it uses the parent's
    computation, so the dropout is drawn exactly as there.

    Turn an existing module into one with ``module.__class__ =
    SDPAWindowMSA`` (it adds no state), as :class:`BlockFeatureSwin` does
    with ``attn_impl='sdpa'``.
    """

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
        if self.training and self.attn_drop.p > 0:
            return super().forward(x, mask)
        windows, length, channels = x.shape
        qkv = self.qkv(x).reshape(windows, length, 3, self.num_heads,
                                  channels // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        bias = self.relative_position_bias_table[
            self.relative_position_index.view(-1)].view(length, length, -1)
        # [1, heads, N, N]
        attn_mask = bias.permute(2, 0, 1).unsqueeze(0)
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
    :class:`SDPAWindowMSA` in place.

    Args:
        module (nn.Module): E.g. an mmpretrain ``SwinTransformer``.

    Returns:
        int: The number of converted modules.
    """
    count = 0
    for child in module.modules():
        if type(child) is WindowMSA:
            child.__class__ = SDPAWindowMSA
            count += 1
    return count
