"""Tiny DCAMA models shared by the model tests.

Each case builds a reference DCAMA (official-layout backbone + the
straightforward spec head of :mod:`tests.reference.dcama_spec`) with random
weights, and the matching tiny dcama_mm config.
"""
import copy
from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as F

from tests.device_helpers import to_device
from tests.reference import randomize_parameters
from tests.reference.dcama_spec import (ReferenceDCAMA, reference_checkpoint,
                                        reference_resnet_dcama,
                                        reference_swin_dcama)

#: input size of each backbone case (the official Swin is built for it)
IMG_SIZE = {'swin': 64, 'r50': 64, 'r101': 64}

_SWIN = dict(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8),
             window_size=2)
_RESNET_BASE = 8


def build_reference(backbone: str, seed: int = 0) -> ReferenceDCAMA:
    """A random-weight reference DCAMA for ``backbone`` in swin/r50/r101."""
    torch.manual_seed(seed)
    if backbone == 'swin':
        model = reference_swin_dcama(img_size=IMG_SIZE['swin'], **_SWIN)
    else:
        depth = int(backbone[1:])
        model = reference_resnet_dcama(depth, _RESNET_BASE)
        # keep deep random ResNets' activations in a sane range
        for name, param in model.feature_extractor.named_parameters():
            if name.endswith('bn3.weight'):
                param.data.mul_(0.2)
    randomize_parameters(model, seed=seed)
    return model.eval()


_converted: Dict[Tuple[str, str], Tuple] = {}


def converted_pair(backbone: str,
                   device: torch.device = torch.device('cpu')) -> Tuple:
    """(reference model, segmentor loaded from its converted checkpoint),
    built once per backbone and device (copies of the CPU pair elsewhere:
    the same weights)."""
    key = (backbone, device.type)
    if key not in _converted:
        if device.type == 'cpu':
            from dcama_mm.models.utils import convert_dcama_checkpoint
            reference = build_reference(backbone)
            state = convert_dcama_checkpoint(reference_checkpoint(reference))
            segmentor = build_segmentor(backbone)
            segmentor.load_state_dict(state, strict=True)
        else:
            reference, segmentor = (copy.deepcopy(m).to(device)
                                    for m in converted_pair(backbone))
        _converted[key] = (reference, segmentor)
    return _converted[key]


def model_cfg(backbone: str, fast: bool = True) -> Dict:
    """The dcama_mm model config equal to :func:`build_reference`'s.

    ``fast=True``: every fast path on (the default), and for Swin two CPU
    backbone images at once (``cpu_parallel_images=2``, as the shipped
    config); ``fast=False``: the one setting ``fast_paths=False`` (the
    straightforward computation everywhere).
    """
    if backbone == 'swin':
        channels = tuple(_SWIN['embed_dim'] * 2**i for i in range(4))
        blocks = tuple(_SWIN['depths'])
        backbone_cfg = dict(
            type='BlockFeatureSwin',
            arch=dict(
                embed_dims=_SWIN['embed_dim'],
                depths=list(_SWIN['depths']),
                num_heads=list(_SWIN['num_heads'])),
            img_size=IMG_SIZE['swin'],
            window_size=_SWIN['window_size'])
    else:
        depth = int(backbone[1:])
        channels = tuple(_RESNET_BASE * 4 * 2**i for i in range(4))
        blocks = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}[depth]
        backbone_cfg = dict(
            type='BlockFeatureResNet',
            depth=depth,
            base_channels=_RESNET_BASE,
            stem_channels=_RESNET_BASE)
    return dict(
        type='FewShotSegmentor',
        data_preprocessor=dict(
            type='FewShotDataPreProcessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True),
        backbone=backbone_cfg,
        decode_head=dict(
            type='DCAMAHead',
            in_channels=channels,
            num_blocks=blocks),
        fast_paths=fast,
        cpu_parallel_images=2 if fast and backbone == 'swin' else None,
        test_cfg=dict())


def build_segmentor(backbone: str, fast: bool = True):
    """An (untrained) FewShotSegmentor of the tiny config, in eval mode."""
    from mmseg.registry import MODELS
    import dcama_mm  # noqa: F401
    return MODELS.build(model_cfg(backbone, fast)).eval()


def random_episode(batch: int, shots: int, size: Tuple[int, int],
                   seed: int = 0,
                   device: torch.device = torch.device('cpu')
                   ) -> Tuple[torch.Tensor, ...]:
    """Normalised-looking queries, supports and 0/1 support masks, drawn
    on the CPU (the same numbers for every device) and moved to
    ``device``."""
    gen = torch.Generator().manual_seed(seed)
    h, w = size
    query = torch.randn(batch, 3, h, w, generator=gen)
    supports = torch.randn(batch, shots, 3, h, w, generator=gen)
    # blobs rather than noise, so that resized masks are not all ~0.5
    coarse = torch.rand(batch * shots, 1, 4, 4, generator=gen)
    masks = torch.nn.functional.interpolate(
        coarse, size=size, mode='bilinear', align_corners=True)
    masks = (masks > 0.5).float().view(batch, shots, h, w)
    return query.to(device), supports.to(device), masks.to(device)


def random_head_inputs(in_channels: Sequence[int],
                       num_blocks: Sequence[int],
                       batch: int,
                       shots: int,
                       size: Tuple[int, int],
                       seed: int = 0,
                       mask_grid: Tuple[int, int] = (3, 4),
                       device: torch.device = torch.device('cpu')) -> Tuple:
    """Random block features of the 4 stages (strides 4..32) of an input of
    ``size`` and blob-like 0/1 support masks, as ``DCAMAHead`` takes them:
    ``(query_feats, support_feats, support_masks)``. The masks threshold a
    ``mask_grid`` of uniform numbers resized to ``size``. Drawn on the
    CPU (the same numbers for every device), moved to ``device``."""
    gen = torch.Generator().manual_seed(seed)
    h, w = size
    query, support = [], []
    for s, (c, n) in enumerate(zip(in_channels, num_blocks)):
        hs, ws = h // 4 // 2**s, w // 4 // 2**s
        query.append(
            [torch.randn(batch, c, hs, ws, generator=gen) for _ in range(n)])
        support.append([
            torch.randn(batch, shots, c, hs, ws, generator=gen)
            for _ in range(n)
        ])
    coarse = torch.rand(batch, shots, *mask_grid, generator=gen)
    masks = (F.interpolate(coarse, size, mode='bilinear') > 0.5).float()
    return to_device((tuple(query), tuple(support), masks), device)


__all__ = [
    'IMG_SIZE', 'build_reference', 'converted_pair', 'model_cfg',
    'build_segmentor',
    'random_episode', 'random_head_inputs', 'reference_checkpoint'
]
