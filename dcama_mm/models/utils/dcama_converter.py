# Copyright (c) dcama_mm contributors. All rights reserved.
"""Convert a reference DCAMA checkpoint to dcama_mm's model layout.

The reference implementation (https://github.com/pawn-sxy/DCAMA) saves
``model.state_dict()`` of a ``DistributedDataParallel`` model: every key
starts with ``module.``; the backbone is under ``feature_extractor.`` (official
Swin or torchvision ResNet names) and the head under ``model.``. dcama_mm's
:class:`~dcama_mm.models.FewShotSegmentor` has ``backbone.*`` and
``decode_head.*`` keys instead.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Tuple

import torch

from .backbone_converters import (convert_official_swin,
                                  convert_torchvision_resnet,
                                  detect_backbone_layout)
from .checkpoint_io import AlreadyDCAMAMMError, is_dcama_mm_checkpoint

__all__ = ['convert_dcama_checkpoint', 'inspect_dcama_checkpoint']

_BACKBONE_PREFIX = 'feature_extractor.'
_HEAD_PREFIX = 'model.'

# reference head key (after 'model.') -> DCAMAHead key
_HEAD_RULES: List[Tuple[str, str]] = [
    (r'^DCAMA_blocks\.([012])\.linears\.0\.(weight|bias)$',
     r'attentions.\1.query_proj.\2'),
    (r'^DCAMA_blocks\.([012])\.linears\.1\.(weight|bias)$',
     r'attentions.\1.key_proj.\2'),
    # conv1/2/3 are the stride 32/16/8 branches; mask_convs is ordered by
    # stage (stride 8, 16, 32)
    (r'^conv1\.([0-9])\.(weight|bias)$', r'mask_convs.2.\1.\2'),
    (r'^conv2\.([0-9])\.(weight|bias)$', r'mask_convs.1.\1.\2'),
    (r'^conv3\.([0-9])\.(weight|bias)$', r'mask_convs.0.\1.\2'),
    (r'^conv4\.([0-9])\.(weight|bias)$', r'fuse_convs.0.\1.\2'),
    (r'^conv5\.([0-9])\.(weight|bias)$', r'fuse_convs.1.\1.\2'),
    (r'^mixer1\.([0-9])\.(weight|bias)$', r'mixers.0.\1.\2'),
    (r'^mixer2\.([0-9])\.(weight|bias)$', r'mixers.1.\1.\2'),
    (r'^mixer3\.([0-9])\.(weight|bias)$', r'mixers.2.\1.\2'),
]
# the positional tables are recomputed by DCAMAHead
_HEAD_DROPPED = re.compile(r'^pe\.[012]\.pe$')
_HEAD_REQUIRED = ('DCAMA_blocks.0.linears.0.weight', 'conv1.0.weight',
                  'conv2.0.weight', 'conv3.0.weight', 'mixer1.0.weight')

_BACKBONE_CONVERTERS = {
    'swin': convert_official_swin,
    'resnet': convert_torchvision_resnet,
}


def _split(checkpoint: Mapping) -> Tuple[Dict[str, torch.Tensor], Dict[
        str, torch.Tensor]]:
    """Backbone and head parts of a reference checkpoint, prefixes removed.

    Raises:
        ValueError: If it is not a reference DCAMA checkpoint.
    """
    if not isinstance(checkpoint, Mapping):
        raise ValueError(
            'A DCAMA checkpoint must be a dict of tensors, got '
            f'{type(checkpoint).__name__}.')
    state_dict = checkpoint
    for wrapper in ('state_dict', 'model'):
        if isinstance(state_dict.get(wrapper), Mapping):
            state_dict = state_dict[wrapper]
            break
    backbone, head, other = {}, {}, []
    for key, value in state_dict.items():
        name = key[len('module.'):] if key.startswith('module.') else key
        if name.startswith(_BACKBONE_PREFIX):
            backbone[name[len(_BACKBONE_PREFIX):]] = value
        elif name.startswith(_HEAD_PREFIX):
            head[name[len(_HEAD_PREFIX):]] = value
        else:
            other.append(key)
    missing = [k for k in _HEAD_REQUIRED if k not in head]
    if other and not backbone and is_dcama_mm_checkpoint(state_dict):
        raise AlreadyDCAMAMMError(
            'already a dcama_mm checkpoint: nothing to convert (its keys '
            'are backbone.*, decode_head.*). Use it directly: '
            'tools/test.py CONFIG CHECKPOINT, init_model(CONFIG, CHECKPOINT).')
    if other or not backbone or missing:
        keys = sorted(state_dict)[:5]
        if any(k.startswith(('backbone.', 'decode_head.')) for k in keys):
            hint = (' It looks like a dcama_mm (mmseg) checkpoint already: '
                    'load it directly with init_model / load_from.')
        else:
            hint = ''
        raise ValueError(
            'Unrecognised checkpoint layout: a reference DCAMA checkpoint has '
            "keys 'module.feature_extractor.*' (backbone) and "
            "'module.model.*' (head, e.g. 'module.model.DCAMA_blocks.0."
            f"linears.0.weight'); got keys such as {keys}"
            + (f', {len(other)} unexpected key(s) e.g. {other[:3]}'
               if other else '') +
            (f', missing head keys {missing}' if missing and backbone else
             '') + f'.{hint}')
    return backbone, head


def _convert_head(head: Mapping[str,
                                torch.Tensor]) -> Dict[str, torch.Tensor]:
    converted: Dict[str, torch.Tensor] = OrderedDict()
    unknown = []
    for key, value in head.items():
        if _HEAD_DROPPED.match(key):
            continue
        for pattern, repl in _HEAD_RULES:
            new_key, count = re.subn(pattern, repl, key)
            if count:
                converted[new_key] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(
            f'Unrecognised checkpoint layout: {len(unknown)} head key(s) are '
            f'not part of the reference DCAMA head, e.g. '
            f'{["module.model." + k for k in unknown[:5]]}.')
    return converted


def inspect_dcama_checkpoint(checkpoint: Mapping) -> dict:
    """Describe a reference DCAMA checkpoint.

    Args:
        checkpoint (Mapping): The reference state dict (keys
            ``module.feature_extractor.*`` and ``module.model.*``; the
            ``module.`` prefix is optional), or a dict holding it under
            ``state_dict`` or ``model``.

    Returns:
        dict: ``backbone`` (``'swin'`` or ``'resnet'``), ``num_blocks`` and
        ``in_channels`` (4-tuples, the ``DCAMAHead`` arguments).

    Raises:
        ValueError: If the layout is not recognised.
    """
    backbone, head = _split(checkpoint)
    layout = detect_backbone_layout(backbone)
    if layout == 'swin':
        pattern = re.compile(r'^layers\.0\.blocks\.(\d+)\.')
    else:
        pattern = re.compile(r'^layer1\.(\d+)\.')
    first = {int(m.group(1)) for m in map(pattern.match, backbone) if m}
    num_blocks = (len(first), head['conv3.0.weight'].shape[1],
                  head['conv2.0.weight'].shape[1],
                  head['conv1.0.weight'].shape[1])
    c2, c3, c4 = (head[f'DCAMA_blocks.{i}.linears.0.weight'].shape[0]
                  for i in range(3))
    mixer_in = head['mixer1.0.weight'].shape[1]
    fused = head['conv5.0.weight'].shape[0]
    c1 = (mixer_in - fused - 2 * c2) // 2
    return dict(
        backbone=layout,
        num_blocks=tuple(int(n) for n in num_blocks),
        in_channels=(int(c1), int(c2), int(c3), int(c4)))


def convert_dcama_checkpoint(
        checkpoint: Mapping) -> 'OrderedDict[str, torch.Tensor]':
    """Reference DCAMA checkpoint -> ``FewShotSegmentor`` state dict.

    The backbone layout (official Swin or torchvision ResNet) is detected
    from its keys and converted with the backbone converters
    (:func:`convert_official_swin`, :func:`convert_torchvision_resnet`);
    head keys are renamed to :class:`DCAMAHead`'s (``DCAMA_blocks.i.linears.
    0/1`` -> ``attentions.i.query_proj/key_proj``, ``conv1/2/3`` ->
    ``mask_convs.2/1/0``, ``conv4/5`` -> ``fuse_convs.0/1``,
    ``mixer1/2/3`` -> ``mixers.0/1/2``); the stored positional tables are
    dropped (the head computes them).

    Args:
        checkpoint (Mapping): See :func:`inspect_dcama_checkpoint`. It is not
            modified.

    Returns:
        OrderedDict[str, torch.Tensor]: ``backbone.*`` and ``decode_head.*``
        weights (tensors shared with the input where unchanged).

    Raises:
        ValueError: If the layout is not recognised.
    """
    backbone, head = _split(checkpoint)
    layout = detect_backbone_layout(backbone)
    converted: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    for key, value in _BACKBONE_CONVERTERS[layout](backbone).items():
        converted['backbone.' + key] = value
    for key, value in _convert_head(head).items():
        converted['decode_head.' + key] = value
    return converted
