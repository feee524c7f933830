"""init_model: config path or Config, checkpoint, dataset_meta (built on
mmseg's init_model, without its made-up class names)."""
import logging
import os.path as osp
import warnings
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

import dcama_mm  # noqa: F401
from dcama_mm.apis import inference
from dcama_mm.apis.inference import init_model
from tests.test_models.dcama_cases import model_cfg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _config(tmp_path):
    cfg = model_cfg('r50')
    cfg['backbone']['init_cfg'] = dict(
        type='Pretrained', checkpoint=str(tmp_path / 'no_imagenet.pth'))
    return Config(dict(default_scope='mmseg', model=cfg))


def test_with_checkpoint_and_meta(tmp_path):
    config = _config(tmp_path)
    source = init_model(config)
    assert not source.training
    # the caller's Config is left as it was
    assert config.model.backbone.init_cfg is not None
    state = {
        k: v + 0.01 if v.is_floating_point() else v
        for k, v in source.state_dict().items()
    }
    meta = dict(dataset_meta=dict(classes=('a', 'b')))
    ckpt = tmp_path / 'model.pth'
    torch.save(dict(state_dict=state, meta=meta), ckpt)

    model = init_model(
        config, str(ckpt), cfg_options={'model.test_cfg':
                                        dict(resize_to_original=True)})
    assert model.dataset_meta == dict(classes=('a', 'b'))
    assert model.cfg.model.backbone.init_cfg is None
    assert model.test_cfg['resize_to_original'] is True
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key])


def test_base_model_configs():
    expected = {
        'dcama_swinb': ((128, 256, 512, 1024), (2, 2, 18, 2)),
        'dcama_r50': ((256, 512, 1024, 2048), (3, 4, 6, 3)),
        'dcama_r101': ((256, 512, 1024, 2048), (3, 4, 23, 3)),
    }
    for name, (channels, blocks) in expected.items():
        cfg = Config.fromfile(
            osp.join(REPO, 'configs', '_base_', 'models', f'{name}.py'))
        head = cfg.model.decode_head
        assert tuple(head.in_channels) == channels
        assert tuple(head.num_blocks) == blocks
        assert cfg.model.backbone.init_cfg.checkpoint.startswith(
            'checkpoints/')
    # the ResNet-50 model builds and its head fits the backbone
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'models', 'dcama_r50.py'))
    model = init_model(Config(dict(default_scope='mmseg', model=cfg.model)))
    assert model.backbone.num_blocks == (3, 4, 6, 3)


def test_missing_config(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.py'):
        init_model(str(tmp_path / 'nope.py'))


def test_path_config_and_bad_type(tmp_path):
    path = tmp_path / 'model.py'
    _config(tmp_path).dump(str(path))
    model = init_model(Path(path))
    assert model.backbone.num_blocks == (3, 4, 6, 3)
    with pytest.raises(TypeError, match='filename or a Config.*int'):
        init_model(3)
    with pytest.raises(ValueError, match='no `model`'):
        init_model(Config(dict(default_scope='mmseg')))


def test_callers_config_and_init_cfg_kept_without_checkpoint(tmp_path):
    config = _config(tmp_path)
    before = config.to_dict()
    model = init_model(config)
    assert config.to_dict() == before
    # mmseg's init_model drops it; without a checkpoint ours keeps it
    assert model.cfg.model.backbone.init_cfg.type == 'Pretrained'
    assert model.cfg.model.train_cfg is None
    assert 'pretrained' not in model.cfg.model
    assert model.cfg.model.type == 'FewShotSegmentor'


def test_random_weights_warning(tmp_path, monkeypatch):
    messages = []
    monkeypatch.setattr(
        inference, 'print_log',
        lambda msg, logger=None, level=None: messages.append((msg, level)))
    init_model(_config(tmp_path))
    assert messages == [(
        'init_model: no checkpoint given, the model has random weights.',
        logging.WARNING)]


def test_checkpoint_without_meta_gets_no_made_up_classes(tmp_path):
    config = _config(tmp_path)
    source = init_model(config)
    ckpt = tmp_path / 'no_meta.pth'
    torch.save(source.state_dict(), ckpt)  # a bare state dict, no meta
    before = config.to_dict()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        model = init_model(config, str(ckpt))
    # mmseg would warn and set Cityscapes' classes here
    assert not [w for w in caught if 'class names' in str(w.message)
                or 'Cityscapes' in str(w.message)]
    assert getattr(model, 'dataset_meta', None) == getattr(
        source, 'dataset_meta', None)
    # the backbone's init_cfg is dropped from the model's copy only
    assert model.cfg.model.backbone.init_cfg is None
    assert config.to_dict() == before
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, source.state_dict()[key])
