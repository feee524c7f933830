# Copyright (c) dcama_mm contributors. All rights reserved.
from typing import List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmpretrain.models import SwinTransformer
from mmpretrain.models.utils import WindowMSA, resize_pos_embed

from mmseg.registry import MODELS
from ..layers.onednn_linear import CONVERTIBLE_LINEARS, FastLinear
from ..layers.sdpa_window_msa import use_sdpa_window_attention
from ..utils.fast_paths import REMOVED_SWITCHES, refuse_removed_switches
from .frozen_backbone_mixin import FrozenBackboneMixin
from ...utils.checks import strict_arguments

_ARCH_KEYS = frozenset({'embed_dims', 'depths', 'num_heads'})
# options of SwinTransformer that BlockFeatureSwin decides itself
_FIXED_OPTIONS = ('out_indices', 'out_after_downsample', 'pad_small_map')


def _check_arch(arch: Union[str, dict]) -> None:
    """Validate ``arch`` with messages that say what to pass instead."""
    if isinstance(arch, str):
        if arch.lower() not in SwinTransformer.arch_zoo:
            raise ValueError(
                f'BlockFeatureSwin: unknown arch "{arch}"; use one of '
                f'{sorted(SwinTransformer.arch_zoo)} or a dict with keys '
                f'{sorted(_ARCH_KEYS)}.')
        return
    if not isinstance(arch, dict) or set(arch) != _ARCH_KEYS:
        raise ValueError(
            'BlockFeatureSwin: a custom arch must be a dict with exactly the '
            f'keys {sorted(_ARCH_KEYS)}, got {arch!r}.')
    depths, heads = arch['depths'], arch['num_heads']
    if len(depths) != 4 or len(heads) != 4:
        raise ValueError(
            'BlockFeatureSwin: DCAMA needs 4 stages; arch "depths" and '
            f'"num_heads" must have 4 entries, got {depths} and {heads}.')
    for i, num_heads in enumerate(heads):
        channels = arch['embed_dims'] * 2**i
        if channels % num_heads:
            raise ValueError(
                f'BlockFeatureSwin: stage {i + 1} has {channels} channels, '
                f'not divisible by its {num_heads} heads; change arch '
                '"embed_dims" or "num_heads".')


@MODELS.register_module()
@strict_arguments(ignore=REMOVED_SWITCHES)
class BlockFeatureSwin(FrozenBackboneMixin, SwinTransformer):
    """Swin Transformer returning the output of every block, for DCAMA.

    `Swin Transformer: Hierarchical Vision Transformer using Shifted Windows
    <https://arxiv.org/abs/2103.14030>`_ (official code:
    https://github.com/microsoft/Swin-Transformer), as the feature extractor
    of `DCAMA <https://arxiv.org/abs/2207.10866>`_ (official code:
    https://github.com/pawn-sxy/DCAMA).

    mmpretrain's :class:`~mmpretrain.models.SwinTransformer` with a forward
    that collects, per stage, the output of each block (after its MLP
    residual, before the stage's patch merging, without any extra norm) as
    ``[N, C_s, h_s, w_s]`` maps (views of the token tensors, i.e. in
    channels-last memory: no copy, and the head's token view of them is
    contiguous). It has no output norms: the official
    release's final ``norm`` and ``head`` are not used by DCAMA.

    Fast paths (:mod:`dcama_mm.models.utils.fast_paths`; the modules are
    the same for every config, each picks its path at run time): window
    attention in one ``scaled_dot_product_attention`` call
    (:class:`~dcama_mm.models.layers.SDPAWindowMSA`), the cyclic shift and
    window partition as one gather
    (:class:`~dcama_mm.models.layers.GatherShiftWindowMSA`), and every
    linear on oneDNN with the MLP's GELU fused into it
    (:class:`~dcama_mm.models.layers.FastLinear`, fp32 CPU inference).

    Inputs of any size work: mmpretrain pads them to the patch size and to
    the window size, and a stage whose map is smaller than the window is
    padded to it (``pad_small_map``). A map exactly the window's size gets a
    single unshifted window, as in the official model; so at ``img_size``
    384 with window 12 the features equal the official Swin's.

    Released weights: convert the official
    ``swin_base_patch4_window12_384_22kto1k.pth`` with
    ``tools/model_converters/swin2mmpretrain.py`` and load the result through
    ``init_cfg=dict(type='Pretrained', checkpoint=...)``. The
    ``relative_position_index`` buffers are derived from the window size and
    are not stored in (nor read from) checkpoints.

    Args:
        arch (str | dict): A name of mmpretrain's ``SwinTransformer.arch_zoo``
            ('tiny', 'small', 'base', 'large', ...) or a dict with keys
            ``embed_dims``, ``depths`` and ``num_heads`` (4 stages), e.g.
            ``dict(embed_dims=32, depths=[2, 2, 2, 2],
            num_heads=[1, 2, 4, 8])``. Defaults to 'base'.
        img_size (int | tuple): The input size the model is built for
            (only used to size an absolute position embedding).
            Defaults to 384.
        window_size (int): Attention window size. Defaults to 12.
        drop_path_rate (float): Stochastic depth rate (only effective when
            not frozen). Defaults to 0.
        frozen (bool): Freeze the backbone, as DCAMA does: every parameter
            has ``requires_grad=False``, :meth:`train` keeps the module in
            eval mode whatever the requested mode (dropout and drop path
            off), and :meth:`forward` runs under :func:`torch.no_grad`. With
            False it is an ordinary trainable backbone. Defaults to True.
        init_cfg (dict, optional): Initialization config, e.g.
            ``dict(type='Pretrained', checkpoint='swin_b_384.pth')``.
            Defaults to None.
        **kwargs: Other arguments of mmpretrain's ``SwinTransformer``
            (``patch_size``, ``drop_rate``, ``with_cp``, ``frozen_stages``,
            ...), except ``out_indices``, ``out_after_downsample`` and
            ``pad_small_map``, which this class sets.

    Attributes:
        num_blocks (tuple[int]): Blocks per stage, e.g. (2, 2, 18, 2).
        out_channels (tuple[int]): Channels per stage, e.g.
            (128, 256, 512, 1024).

    Examples:
        >>> import torch
        >>> from dcama_mm.models.backbones import BlockFeatureSwin
        >>> model = BlockFeatureSwin(arch=dict(
        ...     embed_dims=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8]),
        ...     window_size=6)
        >>> feats = model(torch.rand(1, 3, 192, 192))
        >>> [len(stage) for stage in feats]
        [2, 2, 2, 2]
        >>> [tuple(stage[-1].shape) for stage in feats]
        [(1, 32, 48, 48), (1, 64, 24, 24), (1, 128, 12, 12), (1, 256, 6, 6)]
    """

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 img_size: Union[int, Tuple[int, int]] = 384,
                 window_size: int = 12,
                 drop_path_rate: float = 0.,
                 frozen: bool = True,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        _check_arch(arch)
        refuse_removed_switches('BlockFeatureSwin', kwargs)
        fixed = [key for key in _FIXED_OPTIONS if key in kwargs]
        if fixed:
            raise ValueError(
                f'BlockFeatureSwin sets {fixed} itself (it returns every '
                'block and pads small maps as needed); remove them from the '
                'backbone config.')
        super().__init__(
            arch=arch,
            img_size=img_size,
            window_size=window_size,
            drop_path_rate=drop_path_rate,
            out_indices=(),
            init_cfg=init_cfg,
            **kwargs)
        self.num_blocks = tuple(self.depths)
        self.out_channels = tuple(self.num_features)
        for module in self.modules():
            if isinstance(module, WindowMSA):
                index = module.relative_position_index
                del module.relative_position_index
                module.register_buffer(
                    'relative_position_index', index, persistent=False)
        use_sdpa_window_attention(self)
        self._use_fast_linears()
        self._set_frozen(frozen)

    def _use_fast_linears(self) -> None:
        """Make the block and patch-merging linears :class:`FastLinear`,
        with each MLP's GELU fused into its first linear."""
        for stage in self.stages:
            for block in stage.blocks:
                first = block.ffn.layers[0]  # Sequential(Linear, act, drop)
                act = first[1]
                if type(act) is nn.GELU and act.approximate == 'none':
                    FastLinear.convert_(first[0], activation='gelu')
                    first[1] = nn.Identity()
            for module in stage.modules():
                if type(module) in CONVERTIBLE_LINEARS:
                    FastLinear.convert_(module)

    def _block_features(self,
                        x: torch.Tensor) -> Tuple[List[torch.Tensor], ...]:
        """Every block's output, per stage (strides 4, 8, 16, 32, rounded
        up)."""
        x, hw_shape = self.patch_embed(x)
        if self.use_abs_pos_embed:
            x = x + resize_pos_embed(self.absolute_pos_embed,
                                     self.patch_resolution, hw_shape,
                                     self.interpolate_mode,
                                     self.num_extra_tokens)
        x = self.drop_after_pos(x)
        stages = []
        for stage in self.stages:
            feats = []
            for block in stage.blocks:
                # A map the window's size: one unshifted window (official);
                # smaller: pad it to the window (mmpretrain's pad_small_map).
                block.attn.pad_small_map = (
                    min(hw_shape) < block.attn.window_size)
                x = block(x, hw_shape)
                feats.append(
                    x.view(-1, *hw_shape,
                           x.shape[-1]).permute(0, 3, 1, 2))
            stages.append(feats)
            if stage.downsample is not None:
                x, hw_shape = stage.downsample(x, hw_shape)
        return tuple(stages)

    def _prepare_relative_position_bias_table(self, state_dict: dict,
                                              prefix: str, *args,
                                              **kwargs) -> None:
        """Load-time hook: drop stored ``relative_position_index`` buffers
        (this model rebuilds them) and resize bias tables as mmpretrain
        does."""
        for key in [
                k for k in state_dict if k.startswith(prefix)
                and k.endswith('.relative_position_index')
        ]:
            del state_dict[key]
        # the parent deletes the index entry of every table it resizes
        placeholders = [
            k.replace('bias_table', 'index') for k in state_dict
            if k.startswith(prefix)
            and k.endswith('.relative_position_bias_table')
        ]
        state_dict.update(dict.fromkeys(placeholders))
        super()._prepare_relative_position_bias_table(state_dict, prefix,
                                                      *args, **kwargs)
        for key in placeholders:
            state_dict.pop(key, None)
