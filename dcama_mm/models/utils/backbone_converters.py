# Copyright (c) dcama_mm contributors. All rights reserved.
"""Convert released backbone weights to dcama_mm's backbone layouts.

The reference DCAMA starts from the official Swin Transformer release
(``swin_base_patch4_window12_384_22kto1k.pth``) and from TIMM's / torchvision's
ResNets. :class:`~dcama_mm.models.backbones.BlockFeatureSwin` and
:class:`~dcama_mm.models.backbones.BlockFeatureResNet` build on mmpretrain's
``SwinTransformer`` and ``ResNet``, which have the same architectures under
other names. The pure functions here translate a state dict from one layout
to the other; they never change the dict they are given.
"""
import re
from collections import OrderedDict
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import torch

__all__ = [
    'convert_official_swin', 'convert_torchvision_resnet',
    'detect_backbone_layout', 'describe_resnet', 'describe_official_swin'
]

#: (block type, blocks per stage) -> ResNet depth, as in torchvision.
RESNET_DEPTHS: Dict[Tuple[str, Tuple[int, ...]], int] = {
    ('BasicBlock', (2, 2, 2, 2)): 18,
    ('BasicBlock', (3, 4, 6, 3)): 34,
    ('Bottleneck', (3, 4, 6, 3)): 50,
    ('Bottleneck', (3, 4, 23, 3)): 101,
    ('Bottleneck', (3, 8, 36, 3)): 152,
}
#: Swin Transformer sizes: name -> (embed_dims, depths, num_heads).
SWIN_ARCHS: Dict[str, Tuple[int, Tuple[int, ...], Tuple[int, ...]]] = {
    'tiny': (96, (2, 2, 6, 2), (3, 6, 12, 24)),
    'small': (96, (2, 2, 18, 2), (3, 6, 12, 24)),
    'base': (128, (2, 2, 18, 2), (4, 8, 16, 32)),
    'large': (192, (2, 2, 18, 2), (6, 12, 24, 48)),
}

# official Swin key (after 'layers.{i}.' / 'blocks.{j}.') -> mmpretrain key
_SWIN_RULES: List[Tuple[str, str]] = [
    (r'^patch_embed\.proj\.', 'patch_embed.projection.'),
    (r'^patch_embed\.norm\.', 'patch_embed.norm.'),
    (r'^absolute_pos_embed$', 'absolute_pos_embed'),
    (r'^layers\.(\d+)\.blocks\.(\d+)\.norm([12])\.',
     r'stages.\1.blocks.\2.norm\3.'),
    (r'^layers\.(\d+)\.blocks\.(\d+)\.attn\.(qkv|proj)\.',
     r'stages.\1.blocks.\2.attn.w_msa.\3.'),
    (r'^layers\.(\d+)\.blocks\.(\d+)\.attn\.relative_position_bias_table$',
     r'stages.\1.blocks.\2.attn.w_msa.relative_position_bias_table'),
    (r'^layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc1\.',
     r'stages.\1.blocks.\2.ffn.layers.0.0.'),
    (r'^layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc2\.',
     r'stages.\1.blocks.\2.ffn.layers.1.'),
    (r'^layers\.(\d+)\.downsample\.(reduction|norm)\.',
     r'stages.\1.downsample.\2.'),
]
# official Swin keys with no counterpart in BlockFeatureSwin: buffers that
# are rebuilt from the window size, and the classifier's final norm and head.
_SWIN_DROPPED = re.compile(r'(^|\.)(relative_position_index|attn_mask)$'
                           r'|^norm\.|^head\.')

_RESNET_KEY = re.compile(
    r'^(conv1\.weight|bn1\.(weight|bias|running_mean|running_var|'
    r'num_batches_tracked)'
    r'|layer[1-4]\.\d+\.(conv[123]\.weight|downsample\.0\.weight'
    r'|(bn[123]|downsample\.1)\.(weight|bias|running_mean|running_var|'
    r'num_batches_tracked)))$')
_RESNET_DROPPED = re.compile(r'^fc\.')


def _merging_order(tensor: torch.Tensor) -> torch.Tensor:
    """Reorder the last dim of a patch-merging weight from the official
    layout to mmcv's ``nn.Unfold`` layout.

    The official PatchMerging concatenates the four neighbours of a 2x2 cell
    as ``[x(0,0), x(1,0), x(0,1), x(1,1)]`` (neighbour-major), while mmcv's
    unfolds channel-major with neighbours ``(0,0), (0,1), (1,0), (1,1)``:
    official input ``q * C + c`` becomes ``c * 4 + p``.
    """
    *lead, four_c = tensor.shape
    channels = four_c // 4
    t = tensor.reshape(*lead, 4, channels)[..., [0, 2, 1, 3], :]
    return t.transpose(-1, -2).reshape(*lead, four_c)


def detect_backbone_layout(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Tell which released layout a backbone state dict has.

    Args:
        state_dict (Mapping[str, torch.Tensor]): Backbone weights, keys
            without any wrapper prefix (``module.``, ``backbone.``).

    Returns:
        str: ``'swin'`` for the official Swin Transformer release layout,
        ``'resnet'`` for the torchvision / TIMM ResNet layout (which is also
        mmpretrain's ResNet layout).

    Raises:
        ValueError: If the keys match neither layout.
    """
    keys = set(state_dict)
    if ('patch_embed.proj.weight' in keys
            and 'layers.0.blocks.0.attn.qkv.weight' in keys):
        return 'swin'
    if 'conv1.weight' in keys and 'layer1.0.conv1.weight' in keys:
        return 'resnet'
    sample = ', '.join(sorted(keys)[:5]) or '(no keys)'
    hint = ''
    if 'patch_embed.projection.weight' in keys or any(
            k.startswith('stages.') for k in keys):
        hint = (' It looks like an mmpretrain Swin state dict already: load '
                'it directly, without conversion.')
    elif any(k.startswith(('module.', 'backbone.', 'model.'))
             for k in keys):
        hint = ' Strip the wrapper prefix (e.g. "module.") from the keys.'
    raise ValueError(
        'Unrecognised backbone weights: expected the official Swin '
        'Transformer layout (patch_embed.proj.*, layers.N.blocks.M.*) or the '
        'torchvision/TIMM ResNet layout (conv1.*, bn1.*, layerN.M.*); got '
        f'keys such as {sample}.{hint}')


def _blocks_per_stage(keys, pattern: str) -> Tuple[int, ...]:
    """Blocks per stage from keys matching ``pattern`` (groups: stage,
    block)."""
    found: Dict[int, set] = {}
    for key in keys:
        match = re.match(pattern, key)
        if match:
            found.setdefault(int(match.group(1)), set()).add(
                int(match.group(2)))
    return tuple(len(found[stage]) for stage in sorted(found))


def describe_resnet(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """The architecture of torchvision-layout ResNet weights, from the keys.

    Args:
        state_dict (Mapping[str, torch.Tensor]): ResNet weights
            (``conv1.*``, ``layerN.M.*``).

    Returns:
        dict: ``block`` (``'Bottleneck'`` when the blocks have a
        ``conv3``, else ``'BasicBlock'``), ``num_blocks`` (per stage),
        ``depth`` (18, 34, 50, 101, 152, or None for another count),
        ``stem_channels`` (output channels of ``conv1``) and a ``name``
        such as ``'ResNet-50'``.
    """
    num_blocks = _blocks_per_stage(state_dict, r'^layer([1-4])\.(\d+)\.')
    block = 'Bottleneck' if any(
        k.endswith('.conv3.weight') for k in state_dict) else 'BasicBlock'
    depth = RESNET_DEPTHS.get((block, num_blocks))
    conv1 = state_dict.get('conv1.weight')
    stem = int(conv1.shape[0]) if isinstance(conv1, torch.Tensor) else None
    name = f'ResNet-{depth}' if depth else (
        f'a ResNet of {block}s {num_blocks}')
    return dict(
        block=block,
        num_blocks=num_blocks,
        depth=depth,
        stem_channels=stem,
        name=name)


def describe_official_swin(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """The architecture of official Swin Transformer weights, from the keys.

    Args:
        state_dict (Mapping[str, torch.Tensor]): Official Swin weights
            (``patch_embed.proj.*``, ``layers.N.blocks.M.*``).

    Returns:
        dict: ``embed_dims``, ``depths``, ``num_heads`` (per stage, from
        the bias tables), ``window_size``, ``arch`` (``'tiny'``,
        ``'small'``, ``'base'``, ``'large'``, or None for another size) and
        a ``name`` such as ``'Swin-B (embed_dims 128, depths (2, 2, 18, 2),
        window 12)'``.
    """
    proj = state_dict['patch_embed.proj.weight']
    embed_dims = int(proj.shape[0])
    depths = _blocks_per_stage(state_dict, r'^layers\.(\d+)\.blocks\.(\d+)\.')
    heads, window = [], None
    for stage in range(len(depths)):
        table = state_dict.get(f'layers.{stage}.blocks.0.attn.'
                               'relative_position_bias_table')
        if isinstance(table, torch.Tensor) and table.dim() == 2:
            heads.append(int(table.shape[1]))
            window = (round(table.shape[0]**0.5) + 1) // 2
    num_heads = tuple(heads)
    arch = next((name for name, (dims, d, h) in SWIN_ARCHS.items()
                 if (dims, d, h) == (embed_dims, depths, num_heads)), None)
    size = f'Swin-{arch[0].upper()}' if arch else 'a Swin Transformer'
    return dict(
        embed_dims=embed_dims,
        depths=depths,
        num_heads=num_heads,
        window_size=window,
        arch=arch,
        name=f'{size} (embed_dims {embed_dims}, depths {depths}, '
        f'window {window})')


def _convert(state_dict: Mapping[str, torch.Tensor], layout: str,
             rename: Callable[[str], Optional[str]],
             dropped: re.Pattern) -> 'OrderedDict[str, torch.Tensor]':
    found = detect_backbone_layout(state_dict)
    if found != layout:
        raise ValueError(f'Expected {layout} weights but the state dict has '
                         f'the {found} layout.')
    converted = OrderedDict()
    unknown = []
    for key, value in state_dict.items():
        if dropped.search(key):
            continue
        new_key = rename(key)
        if new_key is None:
            unknown.append(key)
        else:
            converted[new_key] = value
    if unknown:
        raise ValueError(
            f'Cannot convert {len(unknown)} key(s) of the {layout} state '
            f'dict, e.g. {unknown[:5]}: they are not part of the released '
            'layout this converter handles.')
    return converted


def _rename_resnet(key: str) -> Optional[str]:
    return key if _RESNET_KEY.match(key) else None


def _rename_swin(key: str) -> Optional[str]:
    for pattern, repl in _SWIN_RULES:
        new_key, count = re.subn(pattern, repl, key)
        if count:
            return new_key
    return None


def convert_official_swin(
        state_dict: Mapping[str, torch.Tensor]
) -> 'OrderedDict[str, torch.Tensor]':
    """Official Swin Transformer weights -> ``BlockFeatureSwin`` weights.

    Renames the official keys to mmpretrain's ``SwinTransformer`` names
    (``patch_embed.proj`` -> ``patch_embed.projection``,
    ``layers.i.blocks.j.attn.qkv`` -> ``stages.i.blocks.j.attn.w_msa.qkv``,
    ``mlp.fc1/fc2`` -> ``ffn.layers.0.0/ffn.layers.1``, ...), reorders the
    input channels of every patch merging (``downsample.reduction.weight``
    and ``downsample.norm.*``) to mmcv's unfold order, and drops what
    ``BlockFeatureSwin`` does not have: the ``relative_position_index`` and
    ``attn_mask`` buffers (rebuilt from the window size), the final ``norm``
    and the classifier ``head``.

    Args:
        state_dict (Mapping[str, torch.Tensor]): The official release's
            state dict (the ``model`` entry of the ``.pth`` file).

    Returns:
        OrderedDict[str, torch.Tensor]: A new state dict; tensors that need
        no reordering are shared with the input, which is left unchanged.

    Raises:
        ValueError: If the state dict is not in the official Swin layout.
    """
    converted = _convert(state_dict, 'swin', _rename_swin, _SWIN_DROPPED)
    for key in converted:
        if re.search(r'\.downsample\.(reduction\.weight|norm\.(weight|bias))$',
                     key):
            converted[key] = _merging_order(converted[key])
    return converted


def convert_torchvision_resnet(
        state_dict: Mapping[str, torch.Tensor]
) -> 'OrderedDict[str, torch.Tensor]':
    """torchvision / TIMM ResNet weights -> ``BlockFeatureResNet`` weights.

    mmpretrain's ``ResNet`` (``style='pytorch'``) uses torchvision's module
    names (``conv1``, ``bn1``, ``layerN.M.convK/bnK``, ``downsample.0/1``),
    so the keys are kept; the classifier ``fc.*`` is dropped, and BatchNorm
    ``num_batches_tracked`` counters missing from the file (TIMM saves
    without them) are added as zeros so that loading reports nothing
    missing.

    Args:
        state_dict (Mapping[str, torch.Tensor]): The ResNet's state dict.

    Returns:
        OrderedDict[str, torch.Tensor]: A new state dict sharing the tensors
        of the input, which is left unchanged.

    Raises:
        ValueError: If the state dict is not in the torchvision ResNet
            layout.
    """

    converted = _convert(state_dict, 'resnet', _rename_resnet,
                         _RESNET_DROPPED)
    for key in list(converted):
        if key.endswith('.running_mean'):
            counter = key[:-len('running_mean')] + 'num_batches_tracked'
            if counter not in converted:
                converted[counter] = torch.tensor(0, dtype=torch.long)
    return converted
