from collections import OrderedDict

import pytest
import torch
from mmcv.cnn.bricks.transformer import PatchMerging

from dcama_mm.models.backbones import BlockFeatureResNet, BlockFeatureSwin
from dcama_mm.models.utils.backbone_converters import (
    convert_official_swin, convert_torchvision_resnet, detect_backbone_layout)
from tests.reference import randomize_parameters
from tests.reference.official_swin import (OfficialSwin, _PatchMerging,
                                           official_swin_base)
from tests.reference.torchvision_resnet import torchvision_resnet


def tiny_official_state_dict() -> 'OrderedDict[str, torch.Tensor]':
    model = OfficialSwin(
        img_size=96,
        embed_dim=16,
        depths=(2, 2, 2, 2),
        num_heads=(1, 2, 2, 4),
        window_size=3,
        num_classes=5)
    return randomize_parameters(model).state_dict()


def test_detect_layouts():
    assert detect_backbone_layout(tiny_official_state_dict()) == 'swin'
    resnet = torchvision_resnet(50, base_channels=4).state_dict()
    assert detect_backbone_layout(resnet) == 'resnet'


@pytest.mark.parametrize('keys, match', [
    (['foo.weight', 'bar.bias'], 'Unrecognised backbone weights'),
    (['patch_embed.projection.weight', 'stages.0.blocks.0.norm1.weight'],
     'already'),
    (['module.conv1.weight', 'module.layer1.0.conv1.weight'], 'prefix'),
    ([], 'no keys'),
])
def test_detect_rejects_other_layouts(keys, match):
    with pytest.raises(ValueError, match=match):
        detect_backbone_layout(dict.fromkeys(keys, torch.zeros(1)))


def test_convert_official_swin_keys_and_input_untouched():
    sd = tiny_official_state_dict()
    before = {k: v.clone() for k, v in sd.items()}
    out = convert_official_swin(sd)
    # input unchanged
    assert list(sd) == list(before)
    assert all(torch.equal(sd[k], before[k]) for k in sd)
    # renamed and dropped
    assert 'patch_embed.projection.weight' in out
    assert 'stages.1.blocks.1.attn.w_msa.qkv.weight' in out
    assert 'stages.3.blocks.0.ffn.layers.0.0.weight' in out
    assert 'stages.3.blocks.0.ffn.layers.1.bias' in out
    assert 'stages.2.downsample.reduction.weight' in out
    assert not any('relative_position_index' in k or 'attn_mask' in k
                   or k.startswith(('norm.', 'head.')) for k in out)
    torch.testing.assert_close(
        out['stages.0.blocks.1.attn.w_msa.relative_position_bias_table'],
        sd['layers.0.blocks.1.attn.relative_position_bias_table'])
    # reordered, not renamed only
    assert not torch.equal(out['stages.0.downsample.norm.weight'],
                           sd['layers.0.downsample.norm.weight'])
    model = BlockFeatureSwin(
        arch=dict(embed_dims=16, depths=[2] * 4, num_heads=[1, 2, 2, 4]),
        window_size=3)
    assert set(out) == set(model.state_dict())


def test_patch_merging_reorder_matches_mmcv():
    """Official merging (neighbours (0,0),(1,0),(0,1),(1,1) concatenated)
    equals mmcv's unfold-based PatchMerging after the conversion."""
    channels, hw = 6, (8, 10)
    official = randomize_parameters(_PatchMerging(hw, channels), seed=4)
    mmcv_merging = PatchMerging(channels, 2 * channels)
    converted = convert_official_swin(
        OrderedDict([('patch_embed.proj.weight', torch.zeros(1)),
                     ('layers.0.blocks.0.attn.qkv.weight', torch.zeros(1))] +
                    [(f'layers.0.downsample.{k}', v)
                     for k, v in official.state_dict().items()]))
    mmcv_merging.load_state_dict(
        {
            k[len('stages.0.downsample.'):]: v
            for k, v in converted.items() if 'downsample' in k
        },
        strict=True)
    x = torch.randn(2, hw[0] * hw[1], channels)
    out, out_hw = mmcv_merging(x, hw)
    assert out_hw == (4, 5)
    torch.testing.assert_close(out, official(x), rtol=1e-5, atol=1e-5)


def test_convert_full_size_swin_base_matches_keys_and_shapes():
    with torch.device('meta'):
        official = official_swin_base()
    model = BlockFeatureSwin()  # mmpretrain cannot build on meta
    out = convert_official_swin(official.state_dict())
    expected = model.state_dict()
    assert set(out) == set(expected)
    assert all(out[k].shape == expected[k].shape for k in out)


def test_convert_torchvision_resnet():
    reference = torchvision_resnet(101, base_channels=4, num_classes=3)
    sd = reference.state_dict()
    out = convert_torchvision_resnet(sd)
    assert list(out) == [k for k in sd if not k.startswith('fc.')]
    assert all(out[k] is sd[k] for k in out)
    model = BlockFeatureResNet(depth=101, base_channels=4, stem_channels=4)
    assert set(out) == set(model.state_dict())
    # TIMM files have no num_batches_tracked: filled in, input untouched
    timm_like = OrderedDict(
        (k, v) for k, v in sd.items() if 'num_batches_tracked' not in k)
    out = convert_torchvision_resnet(timm_like)
    assert set(out) == set(model.state_dict())
    assert int(out['layer3.22.bn2.num_batches_tracked']) == 0
    assert not any('num_batches_tracked' in k for k in timm_like)


def test_convert_full_size_resnet50_keys():
    with torch.device('meta'):
        sd = torchvision_resnet(50).state_dict()
    model = BlockFeatureResNet(depth=50)  # mmpretrain cannot build on meta
    out = convert_torchvision_resnet(sd)
    expected = model.state_dict()
    assert set(out) == set(expected)
    assert all(out[k].shape == expected[k].shape for k in out)


def test_converters_reject_wrong_or_unknown_keys():
    swin = tiny_official_state_dict()
    resnet = torchvision_resnet(50, base_channels=4).state_dict()
    with pytest.raises(ValueError, match='Expected resnet weights'):
        convert_torchvision_resnet(swin)
    with pytest.raises(ValueError, match='Expected swin weights'):
        convert_official_swin(resnet)
    with pytest.raises(ValueError, match='extra.weight'):
        convert_official_swin({**swin, 'extra.weight': torch.zeros(1)})
    with pytest.raises(ValueError, match='layer5'):
        convert_torchvision_resnet({**resnet, 'layer5.0.conv1.weight': 0})
