"""Backbone ``init_cfg=dict(type='Pretrained', ...)`` weights are checked.

mmengine's ``PretrainedInit`` loads with ``strict=False``: ResNet-18 weights
"load" into a ResNet-50 (a third of its weights, the rest random). The
backbones now refuse weights that do not fit (missing, mis-shaped or extra
weights under their own module names, e.g. the extra blocks of a
ResNet-101), accept a released classifier's extra ``fc``/``head``/final
norm, and load the part that fits with ``strict=False``.
"""
import pytest
import torch
from mmpretrain.models import ResNet

import dcama_mm  # noqa: F401
from dcama_mm.models.backbones import BlockFeatureResNet, BlockFeatureSwin

NARROW = dict(base_channels=8, stem_channels=8)
SWIN = dict(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4])


def _save(path, state_dict, **meta):
    torch.save(dict(state_dict=state_dict, meta=meta), path)
    return str(path)


def _resnet50(checkpoint, **init):
    return BlockFeatureResNet(
        depth=50,
        **NARROW,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, **init))


def _random_resnet(depth):
    torch.manual_seed(depth)
    net = ResNet(depth=depth, **NARROW)
    for param in net.parameters():
        param.data.normal_()
    return net.state_dict()


def test_fitting_weights_load_and_classifier_keys_are_ignored(tmp_path):
    weights = _random_resnet(50)
    weights['fc.weight'] = torch.zeros(10, 256)  # a classifier's head
    model = _resnet50(_save(tmp_path / 'r50.pth', weights))
    model.init_weights()
    for key, value in model.state_dict().items():
        assert torch.equal(value, weights[key]), key


def test_resnet18_weights_refused_by_resnet50(tmp_path):
    path = _save(tmp_path / 'r18.pth', _random_resnet(18))
    model = _resnet50(path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as info:
        model.init_weights()
    message = str(info.value)
    assert message.startswith(f'model.backbone.init_cfg: the weights "{path}"'
                              ' do not fit BlockFeatureResNet (depth 50): ')
    # 318 weights in the narrow ResNet-50 besides its BN counters; the
    # ResNet-18 has 3x3 conv1s where the bottlenecks have 1x1
    assert "165 of the model's 318 weights are missing from it" in message
    assert '23 have another shape' in message
    assert ('layer1.0.conv1.weight: [8, 8, 3, 3] in the file, [8, 8, 1, 1] '
            'in the model') in message
    assert '--load-partial' in message and 'strict=False' in message
    # nothing was loaded
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_deeper_resnet_weights_refused(tmp_path):
    path = _save(tmp_path / 'r101.pth', _random_resnet(101),
                 converter='tools/model_converters/resnet2mmpretrain.py',
                 depth=101)
    with pytest.raises(ValueError) as info:
        _resnet50(path).init_weights()
    message = str(info.value)
    # ResNet-101's layer3 has 23 blocks, ResNet-50's 6: 17 blocks of 18
    # weights (3 convs, 3 BNs of 5 entries) are extra
    assert '306 of its 624 keys are not in the model' in message
    assert 'e.g. layer3.6.conv1.weight' in message
    assert 'resnet2mmpretrain.py (depth 101)' in message


def test_partial_loading_with_strict_false(tmp_path):
    weights = _random_resnet(18)
    model = _resnet50(_save(tmp_path / 'r18.pth', weights), strict=False)
    model.init_weights()
    # what fits is loaded (the stem), the rest keeps its initial values
    assert torch.equal(model.conv1.weight, weights['conv1.weight'])
    assert torch.equal(model.layer2[0].conv2.weight,
                       weights['layer2.0.conv2.weight'])
    assert 'strict' not in model.init_cfg


def test_swin_of_another_width_refused(tmp_path):
    other = BlockFeatureSwin(arch=dict(SWIN, embed_dims=32), window_size=3)
    path = _save(tmp_path / 'swin32.pth', other.state_dict())
    model = BlockFeatureSwin(
        arch=SWIN,
        window_size=3,
        init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(ValueError) as info:
        model.init_weights()
    message = str(info.value)
    assert ('do not fit BlockFeatureSwin (embed_dims 16, depths (2, 2, 2, 2))'
            in message)
    assert ('patch_embed.projection.weight: [32, 3, 4, 4] in the file, '
            '[16, 3, 4, 4] in the model') in message


def test_swin_with_prefix_and_classifier_norm(tmp_path):
    """An mmpretrain classifier checkpoint: ``backbone.`` prefix, a final
    ``norm3`` the block-feature backbone does not have, a ``head``."""
    source = BlockFeatureSwin(arch=SWIN, window_size=3)
    for param in source.parameters():
        param.data.normal_()
    weights = {f'backbone.{k}': v for k, v in source.state_dict().items()}
    weights['backbone.norm3.weight'] = torch.ones(128)
    weights['head.fc.weight'] = torch.zeros(10, 128)
    path = _save(tmp_path / 'cls.pth', weights)
    model = BlockFeatureSwin(
        arch=SWIN,
        window_size=3,
        init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.'))
    model.init_weights()
    for key, value in model.state_dict().items():
        assert torch.equal(value, source.state_dict()[key]), key
    with pytest.raises(ValueError, match='no key of .* starts with the '
                       'prefix "encoder."'):
        BlockFeatureSwin(
            arch=SWIN,
            window_size=3,
            init_cfg=dict(type='Pretrained', checkpoint=path,
                          prefix='encoder.')).init_weights()


def test_load_partial_marks_only_the_backbones_pretrained_weights():
    # mmengine's PretrainedInit (any other module's init_cfg) takes no
    # `strict`: only the backbone's entry, read by FrozenBackboneMixin, may
    # carry it
    from mmengine.config import Config

    from dcama_mm.engine.hooks import configure_checkpoint_loading
    cfg = Config(
        dict(
            model=dict(
                backbone=dict(
                    init_cfg=dict(type='Pretrained', checkpoint='b.pth')),
                decode_head=dict(
                    init_cfg=dict(type='Pretrained', checkpoint='h.pth')))))
    configure_checkpoint_loading(cfg, partial=True)
    assert cfg.model.backbone.init_cfg.strict is False
    assert 'strict' not in cfg.model.decode_head.init_cfg


def test_the_weights_file_is_read_once(tmp_path, monkeypatch):
    # the check maps the file (names and shapes, no tensor data); only
    # mmengine's PretrainedInit reads it
    weights = _random_resnet(50)
    path = _save(tmp_path / 'r50.pth', weights)
    reads = []
    load = torch.load

    def counting_load(f, *args, **kwargs):
        if str(f) == path:
            reads.append(bool(kwargs.get('mmap')))
        return load(f, *args, **kwargs)

    monkeypatch.setattr(torch, 'load', counting_load)
    model = _resnet50(path)
    model.init_weights()
    assert reads.count(False) == 1, reads
    for key, value in model.state_dict().items():
        assert torch.equal(value, weights[key]), key
