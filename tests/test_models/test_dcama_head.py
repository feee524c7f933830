"""DCAMAHead: equality with the straightforward spec head, API, loss."""
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import dcama_mm  # noqa: F401
from dcama_mm.models import DCAMAHead
from dcama_mm.models.layers import SinusoidalPositionalEncoding
from dcama_mm.models.utils import convert_dcama_checkpoint
from tests.device_helpers import tolerances
from tests.test_models.dcama_cases import (build_reference, build_segmentor,
                                           random_head_inputs,
                                           reference_checkpoint)

IN_CHANNELS = (32, 64, 128, 256)  # the tiny ResNet-50 case
NUM_BLOCKS = (3, 4, 6, 3)


@pytest.fixture(scope='module')
def heads():
    """(spec head, DCAMAHead fused, DCAMAHead naive) with equal weights."""
    reference = build_reference('r50', seed=1)
    state = convert_dcama_checkpoint(reference_checkpoint(reference))
    segmentor = build_segmentor('r50')
    segmentor.load_state_dict(state, strict=True)
    naive = build_segmentor('r50', fast=False)
    naive.load_state_dict(state, strict=True)
    return reference.model.eval(), segmentor.decode_head, naive.decode_head


@pytest.fixture(scope='module')
def device_heads(heads, device):
    """``heads`` on ``device`` (copies on CUDA: the same weights)."""
    if device.type == 'cpu':
        return heads
    return tuple(copy.deepcopy(head).to(device) for head in heads)


def _features(batch, shots, size, seed=0, device=torch.device('cpu')):
    """Random block features for an input of ``size`` (strides 4..32)."""
    return random_head_inputs(IN_CHANNELS, NUM_BLOCKS, batch, shots, size,
                              seed, mask_grid=(3, 5), device=device)


@pytest.mark.parametrize('batch,shots,size', [(1, 1, (64, 96)),
                                              (2, 3, (96, 64)),
                                              (2, 1, (64, 64))])
def test_head_equals_spec_non_square(device_heads, device, batch, shots,
                                     size):
    spec, fused, naive = device_heads
    query, support, masks = _features(
        batch, shots, size, seed=shots, device=device)
    with torch.no_grad():
        expected = spec(query, support, masks)
        out_fused = fused((query, support, masks))
        out_naive = naive((query, support, masks))
    assert out_fused.shape == (batch, 2, *size)
    assert out_fused.device.type == device.type
    tol = tolerances(device, 1e-4, 1e-4)
    torch.testing.assert_close(out_fused, expected, **tol)
    torch.testing.assert_close(out_naive, expected, **tol)


def test_head_state_dict_has_only_parameters(heads):
    _, head, _ = heads
    keys = set(head.state_dict())
    assert keys == {n for n, _ in head.named_parameters()}
    assert not any(k.startswith('conv_seg') for k in keys)
    # 3 attentions x 2 linears x (w, b) + 5 conv blocks x 3 x (conv w, b,
    # gn w, b) + 3 mixers x 2 convs x (w, b)
    assert len(keys) == 12 + 60 + 12


def test_head_training_mode_uses_dropout(device_heads, device):
    _, head, _ = device_heads
    query, support, masks = _features(1, 2, (64, 64), device=device)
    head.train()
    try:
        torch.manual_seed(0)
        first = head((query, support, masks))
        second = head((query, support, masks))
        assert not torch.allclose(first, second)
        first.sum().backward()
        assert all(p.grad is not None for p in head.parameters())
    finally:
        head.zero_grad(set_to_none=True)
        head.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            head((query, support, masks)), head((query, support, masks)))


def test_positional_table_formula_any_length():
    pe = SinusoidalPositionalEncoding(8, dropout=0.)
    table = pe.table(10010, torch.device('cpu'), torch.float32)
    assert table.shape == (10010, 8)
    for p in (0, 1, 7, 63, 10005):
        for i in range(4):
            angle = p / 10000**(2 * i / 8)
            assert table[p, 2 * i].item() == pytest.approx(
                math.sin(angle), abs=2e-3)
            assert table[p, 2 * i + 1].item() == pytest.approx(
                math.cos(angle), abs=2e-3)
    tokens = torch.zeros(2, 3, 5, 8)
    np.testing.assert_allclose(
        pe(tokens)[1, 2].numpy(), table[:5].numpy(), rtol=0, atol=0)
    assert pe.state_dict() == {}


def test_loss_by_feat_ignores_255():
    head = MODELS.build(
        dict(
            type='DCAMAHead',
            in_channels=IN_CHANNELS,
            num_blocks=NUM_BLOCKS,
            loss_decode=dict(
                type='CrossEntropyLoss', loss_weight=1.0,
                avg_non_ignore=True)))
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 2, 8, 8, generator=gen)
    gts = torch.randint(0, 2, (2, 1, 8, 8), generator=gen)
    gts[0, 0, :2] = 255
    samples = []
    for gt in gts:
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=gt)
        samples.append(sample)
    losses = head.loss_by_feat(logits, samples)
    expected = F.cross_entropy(logits, gts[:, 0], ignore_index=255)
    torch.testing.assert_close(losses['loss_ce'], expected)
    valid = gts[:, 0] != 255
    acc = (logits.argmax(1) == gts[:, 0])[valid].float().mean() * 100
    torch.testing.assert_close(losses['acc_seg'].reshape(()), acc)


@pytest.mark.parametrize('kwargs,message', [
    (dict(num_classes=3), 'num_classes must be 2'),
    (dict(num_blocks=(3, 4, 6)), '4 backbone stages'),
    (dict(num_blocks=(3, 0, 6, 3)), '>= 1 block'),
    (dict(attn_impl='flash'), 'attn_impl.*no longer exist'),
    (dict(in_channels=(32, 60, 128, 256)), 'divisible by num_heads'),
])
def test_bad_head_config(kwargs, message):
    cfg = dict(in_channels=IN_CHANNELS, num_blocks=NUM_BLOCKS)
    cfg.update(kwargs)
    with pytest.raises(ValueError, match=message):
        DCAMAHead(**cfg)


def test_block_count_mismatch_is_reported(heads):
    _, head, _ = heads
    query, support, masks = _features(1, 1, (64, 64))
    query = (query[0], query[1][:2], query[2], query[3])
    with pytest.raises(ValueError, match='num_blocks'):
        head((query, support, masks))
