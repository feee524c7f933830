import pytest
import torch

from dcama_mm.models.backbones import BlockFeatureResNet
from dcama_mm.models.utils.backbone_converters import \
    convert_torchvision_resnet
from mmseg.registry import MODELS
from tests.device_helpers import tolerances
from tests.reference import randomize_parameters
from tests.reference.torchvision_resnet import (STAGE_BLOCKS,
                                                extract_block_features,
                                                torchvision_resnet)

WIDTH = 8  # stem channels and stage-1 bottleneck width of the tiny models


def tiny_pair(depth: int, fast_paths: bool = True, **kwargs):
    reference = randomize_parameters(
        torchvision_resnet(depth, base_channels=WIDTH), seed=depth).eval()
    model = BlockFeatureResNet(
        depth=depth, base_channels=WIDTH, stem_channels=WIDTH, **kwargs)
    model.fast_paths = fast_paths
    model.load_state_dict(
        convert_torchvision_resnet(reference.state_dict()), strict=True)
    return reference, model


@pytest.mark.parametrize('depth,channels_last', [(50, False), (101, False),
                                                 (50, True)])
def test_block_features_equal_reference(depth, channels_last, device):
    """Both paths equal torchvision's; the fast one (channels-last
    convolutions) returns channels-last features."""
    reference, model = tiny_pair(depth, fast_paths=channels_last)
    reference, model = reference.to(device), model.to(device)
    x = torch.randn(2, 3, 72, 56,
                    generator=torch.Generator().manual_seed(0)).to(device)
    with torch.no_grad():
        expected = extract_block_features(reference, x)
    feats = model(x)
    assert [len(s) for s in feats] == list(STAGE_BLOCKS[depth])
    assert model.num_blocks == STAGE_BLOCKS[depth]
    assert model.out_channels == tuple(4 * WIDTH * 2**i for i in range(4))
    for stage, (ours, ref) in enumerate(zip(feats, expected)):
        for block, (a, b) in enumerate(zip(ours, ref)):
            assert a.shape == (2, model.out_channels[stage],
                               -(-72 // 2**(stage + 2)),
                               -(-56 // 2**(stage + 2)))
            assert a.device.type == device.type
            torch.testing.assert_close(
                a, b, **tolerances(device, 1e-4, 1e-4),
                msg=f'stage {stage} block {block}')
            assert a.is_contiguous(memory_format=torch.channels_last
                                   if channels_last else torch.
                                   contiguous_format)
    # features are taken before the final ReLU
    assert all((f < 0).any() for stage in feats for f in stage)
    # parameters keep their layout (checkpoints are unaffected)
    assert all(p.is_contiguous() for p in model.parameters())


def test_frozen_by_default_keeps_bn_statistics():
    _, model = tiny_pair(50)
    assert model.frozen and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    mean = model.layer1[0].bn1.running_mean.clone()
    assert model.train() is model
    assert not any(m.training for m in model.modules())
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    out = model(x)
    assert not out[0][0].requires_grad  # ran under no_grad
    torch.testing.assert_close(model.layer1[0].bn1.running_mean, mean)


def test_not_frozen_trains():
    model = BlockFeatureResNet(
        depth=50, frozen=False, base_channels=WIDTH, stem_channels=WIDTH)
    model.train()
    assert model.training and model.layer1[0].bn1.training
    assert all(p.requires_grad for p in model.parameters())
    mean = model.layer1[0].bn1.running_mean.clone()
    feats = model(torch.rand(2, 3, 64, 64))
    sum(f.sum() for stage in feats for f in stage).backward()
    assert model.conv1.weight.grad is not None
    assert not torch.equal(model.layer1[0].bn1.running_mean, mean)


def test_build_from_registry():
    model = MODELS.build(
        dict(
            type='BlockFeatureResNet',
            depth=101,
            base_channels=WIDTH,
            stem_channels=WIDTH))
    assert isinstance(model, BlockFeatureResNet)
    assert model.num_blocks == (3, 4, 23, 3)


@pytest.mark.parametrize('depth, blocks', [(50, (3, 4, 6, 3)),
                                           (101, (3, 4, 23, 3))])
def test_full_size_shapes_on_meta(depth, blocks):
    """ResNet-50/101: 256..2048 channels at strides 4..32."""
    model = BlockFeatureResNet(depth=depth).to('meta')  # no meta build
    feats = model(torch.empty(1, 3, 384, 384, device='meta'))
    assert model.num_blocks == blocks
    assert model.out_channels == (256, 512, 1024, 2048)
    assert tuple(len(s) for s in feats) == blocks
    for stage, stride in enumerate((4, 8, 16, 32)):
        assert {tuple(f.shape)
                for f in feats[stage]} == {(1, model.out_channels[stage],
                                            384 // stride, 384 // stride)}
    # torchvision layout: the stride sits on the 3x3 conv
    assert model.layer2[0].conv1.stride == (1, 1)
    assert model.layer2[0].conv2.stride == (2, 2)


@pytest.mark.parametrize('kwargs, match', [
    (dict(depth=18), 'depth must be one of'),
    (dict(depth=51), 'depth must be one of'),
    (dict(out_indices=(0, 1, 2, 3)), 'out_indices'),
])
def test_invalid_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BlockFeatureResNet(**kwargs)
