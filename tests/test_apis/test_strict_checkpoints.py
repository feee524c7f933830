"""Strict checkpoint loading in init_model, FewShotInferencer, tools/infer.py.

A checkpoint that fits the config (a converted reference DCAMA checkpoint,
the model's own state dict) loads; one made for another width, a bare
torchvision ResNet-18 or an unconverted reference checkpoint is refused with
a message naming the checkpoint, the config and counted keys; files that are
not PyTorch checkpoints are named as such (no torch ``weights_only``
advice). The errors are ``CheckpointMismatchError`` / ``NotACheckpointError``
(both ``ValueError``, which the tools report as bad input).
"""
import importlib.util
import logging
import os
import os.path as osp
import zipfile

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from mmengine.logging import MMLogger

import dcama_mm  # noqa: F401
from dcama_mm.apis import FewShotInferencer
from dcama_mm.apis.inference import init_model
from tests.reference.dcama_spec import reference_checkpoint
from tests.test_models.dcama_cases import (build_reference, model_cfg,
                                           random_episode)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool(relpath):
    spec = importlib.util.spec_from_file_location(
        relpath.replace('/', '_')[:-3], osp.join(REPO, 'tools', relpath))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_config(path, model):
    path.write_text('default_scope = "mmseg"\n'
                    'custom_imports = dict(imports=["dcama_mm"])\n'
                    f'model = {model!r}\n')
    return str(path)


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    """A reference ResNet-50 DCAMA, converted with dcama2mmseg.py, and the
    tiny config it was made for."""
    root = tmp_path_factory.mktemp('strict')
    reference = build_reference('r50', seed=3)
    src, dst = root / 'reference.pt', root / 'dcama_r50.pth'
    torch.save(reference_checkpoint(reference), src)
    _tool('model_converters/dcama2mmseg.py').main([str(src), str(dst)])
    config = _write_config(root / 'tiny_r50.py', model_cfg('r50'))
    # the same model with a backbone and head twice as wide
    wide = model_cfg('r50')
    wide['backbone'].update(base_channels=16, stem_channels=16)
    wide['decode_head']['in_channels'] = (64, 128, 256, 512)
    wide_config = _write_config(root / 'wide_r50.py', wide)
    return dict(
        root=root,
        reference=reference,
        src=str(src),
        ckpt=str(dst),
        config=config,
        wide_config=wide_config)


def test_converted_reference_checkpoint_loads(converted):
    model = init_model(converted['config'], converted['ckpt'])
    query, supports, masks = random_episode(1, 1, (64, 64), seed=5)
    with torch.no_grad():
        torch.testing.assert_close(
            model.predict_logits(query, supports, masks),
            converted['reference'](query, supports, masks),
            rtol=1e-4,
            atol=1e-4)


def test_checkpoint_of_another_width_is_refused(converted):
    with pytest.raises(ValueError) as info:
        init_model(converted['wide_config'], converted['ckpt'])
    message = str(info.value)
    assert converted['ckpt'] in message
    assert converted['wide_config'] in message
    narrow = init_model(converted['config']).state_dict()
    wide = init_model(converted['wide_config']).state_dict()
    assert narrow.keys() == wide.keys()
    reshaped = sum(narrow[k].shape != wide[k].shape for k in narrow)
    assert reshaped > 200
    assert message.count('have another shape') == 1
    assert f'{reshaped} have another shape' in message
    assert 'missing' not in message and 'not in the model' not in message
    assert ('backbone.conv1.weight: [8, 3, 7, 7] in the file, '
            '[16, 3, 7, 7] in the model') in message
    assert message.endswith('Give the config the checkpoint was made with.')


def test_torchvision_resnet18_is_refused(converted):
    path = converted['root'] / 'resnet18.pth'
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(ValueError) as info:
        init_model(converted['config'], str(path))
    message = str(info.value)
    assert str(path) in message and converted['config'] in message
    model_keys = len(init_model(converted['config']).state_dict())
    # every model weight missing (BatchNorm counters aside), every key
    # of the file unexpected
    assert f'of the model\'s {model_keys} weights are missing' in message
    assert '122 of its 122 keys are not in the model' in message
    assert 'e.g. conv1.weight, bn1.weight' in message
    assert 'bare backbone' in message and 'init_cfg' in message


def test_unconverted_reference_checkpoint_is_refused(converted):
    with pytest.raises(ValueError,
                       match='reference DCAMA checkpoint: convert it with '
                       'tools/model_converters/dcama2mmseg.py'):
        init_model(converted['config'], converted['src'])


def _not_checkpoints(root):
    text = root / 'notes.pth'
    text.write_text('epoch 3: mIoU 41.2\n')
    noise = root / 'noise.pth'
    noise.write_bytes(bytes(range(7, 256)) * 4)
    empty = root / 'empty.pth'
    empty.write_bytes(b'')
    whole = root / 'whole.pth'
    torch.save({'a': torch.zeros(1000)}, whole)
    cut = root / 'cut.pth'
    cut.write_bytes(whole.read_bytes()[:600])
    archive = root / 'photos.pth'
    with zipfile.ZipFile(archive, 'w') as f:
        f.writestr('a.txt', 'x')
    return [
        (text, "a text file starting with 'epoch 3: mIoU 41.2'"),
        (noise, 'its first bytes are 07 08 09 0a 0b 0c 0d 0e'),
        (empty, 'the file is empty'),
        (cut, 'a truncated or damaged zip archive'),
        (archive, 'a zip archive of 1 file(s) without the data.pkl'),
    ]


def test_files_that_are_not_checkpoints(converted):
    for path, reason in _not_checkpoints(converted['root']):
        with pytest.raises(ValueError) as info:
            init_model(converted['config'], str(path))
        message = str(info.value)
        assert message.startswith(f'{path} is not a PyTorch checkpoint '
                                  f'({reason}')
        assert 'weights_only' not in message


def test_inferencer_and_infer_tool_refuse(converted, tmp_path):
    with pytest.raises(ValueError, match='does not fit'):
        FewShotInferencer(
            converted['wide_config'], converted['ckpt'], device='cpu')
    infer = _tool('infer.py')
    img = tmp_path / 'q.png'
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(img)
    mask = tmp_path / 'm.png'
    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(mask)
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        status = infer.main([
            converted['wide_config'], converted['ckpt'], '--query',
            str(img), '--support', f'{img}:{mask}', '--out',
            str(tmp_path / 'out'), '--device', 'cpu'
        ])
    finally:
        logger.removeHandler(handler)
    assert status == 2
    errors = [r.getMessage() for r in records if r.levelno >= logging.ERROR]
    assert any('does not fit the model of config' in e and
               converted['ckpt'] in e for e in errors), errors
    assert not os.path.exists(tmp_path / 'out' / 'pred')
