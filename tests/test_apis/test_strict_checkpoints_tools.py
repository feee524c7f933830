"""Strict checkpoints in tools/test.py and tools/train.py (real Runner).

A tiny DCAMA (frozen random ResNet-50 of width 8) is trained for one epoch
on a tiny COCO-20i-format dataset; its Runner checkpoint holds every weight
of the model (the frozen backbone's too) and tests without complaint under
its config. Under a config of another width, tools/test.py stops before
any test episode, naming the checkpoint, the config and the counts. In
training, ``load_from`` and the backbone's ``Pretrained`` weights are
checked the same way, and ``--load-partial`` fine-tunes from what fits.
"""
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmpretrain.models import ResNet

import dcama_mm  # noqa: F401
from tests.test_tools.tiny_project import (TOOLS, load_tool, make_tiny_data,
                                           run, write_tiny_config)

WIDE = [
    'model.backbone.base_channels=16', 'model.backbone.stem_channels=16',
    'model.decode_head.in_channels=(64,128,256,512)'
]


def _main(tool, argv):
    """Run a tool's ``main()`` in this process with ``argv``."""
    saved = sys.argv
    sys.argv = [tool.__file__, *argv]
    try:
        return tool.main()
    finally:
        sys.argv = saved


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('strict_tools'))
    data_root = make_tiny_data(root)
    config = write_tiny_config(osp.join(root, 'tiny.py'), data_root)
    work_dir = osp.join(root, 'run')
    _main(
        load_tool('train.py'),
        [config, '--work-dir', work_dir, '--cfg-options',
         'train_cfg.max_epochs=1'])
    return dict(
        root=root,
        config=config,
        ckpt=osp.join(work_dir, 'epoch_1.pth'),
        train=load_tool('train.py'))


def test_runner_checkpoint_holds_every_weight(trained):
    from mmseg.registry import MODELS
    model = MODELS.build(Config.fromfile(trained['config']).model)
    saved = torch.load(trained['ckpt'], weights_only=False)
    assert saved['meta']['experiment_name'].startswith('tiny_')
    state = saved['state_dict']
    assert set(state) == set(model.state_dict())
    assert any(k.startswith('backbone.layer4.') for k in state)  # frozen
    assert not any(p.requires_grad for p in model.backbone.parameters())


def test_test_tool_fitting_and_misfitting_checkpoint(trained):
    ok = run([
        sys.executable,
        osp.join(TOOLS, 'test.py'), trained['config'], trained['ckpt'],
        '--work-dir',
        osp.join(trained['root'], 'test_ok')
    ],
             cwd=trained['root'])
    assert 'Epoch(test) [4/4]' in ok.stdout and 'mIoU' in ok.stdout
    assert 'does not fit' not in ok.stdout

    bad = run([
        sys.executable,
        osp.join(TOOLS, 'test.py'), trained['config'], trained['ckpt'],
        '--work-dir',
        osp.join(trained['root'], 'test_bad'), '--cfg-options', *WIDE
    ],
              cwd=trained['root'],
              check=False)
    assert bad.returncode != 0
    assert 'Epoch(test)' not in bad.stdout  # stopped before testing
    message = bad.stdout.strip().splitlines()[-1]
    assert f'Checkpoint "{trained["ckpt"]}" does not fit the model of ' \
        f'config "{trained["config"]}"' in message
    assert '278 have another shape (e.g. backbone.conv1.weight: ' \
        '[8, 3, 7, 7] in the file, [16, 3, 7, 7] in the model' in message
    assert 'it was written by the run "tiny_' in message
    assert message.endswith('Test it with the config it was trained with (or'
                            ' a checkpoint made for this config).')


def test_test_tool_names_a_file_that_is_no_checkpoint(trained, tmp_path):
    from dcama_mm.engine import launch
    test_tool = load_tool('test.py')
    notes = tmp_path / 'best.pth'
    notes.write_text('best mIoU 0.41 at epoch 12\n')
    saved = sys.argv
    sys.argv = ['test.py', trained['config'], str(notes)]
    try:
        cfg = test_tool.build_cfg(test_tool.parse_args())
    finally:
        sys.argv = saved
    with pytest.raises(ValueError) as info:
        launch.check_test_config(cfg)
    assert str(info.value) == (
        f"checkpoint: {notes} is not a PyTorch checkpoint (a text file "
        "starting with 'best mIoU 0.41 at epoch 12'). Give a .pth file "
        'written by tools/train.py (in its work dir) or by a converter in '
        'tools/model_converters/.')


def test_train_refuses_misfitting_load_from(trained):
    with pytest.raises(ValueError) as info:
        _main(trained['train'], [
            trained['config'], '--work-dir',
            osp.join(trained['root'], 'finetune_wide'), '--cfg-options',
            f'load_from={trained["ckpt"]}', *WIDE
        ])
    message = str(info.value)
    assert 'does not fit the model of config' in message
    assert '--load-partial' in message
    assert not osp.exists(
        osp.join(trained['root'], 'finetune_wide', 'epoch_1.pth'))


def test_backbone_weights_refused_unless_load_partial(trained):
    r18 = ResNet(depth=18, base_channels=8, stem_channels=8).state_dict()
    weights = osp.join(trained['root'], 'resnet18_narrow.pth')
    torch.save(dict(state_dict=r18, meta={}), weights)
    config = osp.join(trained['root'], 'tiny_r18_init.py')
    with open(config, 'w') as f:
        f.write(f'_base_ = [{trained["config"]!r}]\n'
                'model = dict(backbone=dict(init_cfg=dict(_delete_=True, '
                f'type="Pretrained", checkpoint={weights!r})))\n')
    options = ['--cfg-options', 'train_cfg.max_epochs=1']
    work_dir = osp.join(trained['root'], 'r18')
    with pytest.raises(ValueError) as info:
        _main(trained['train'], [config, '--work-dir', work_dir, *options])
    message = str(info.value)
    assert message.startswith(
        f'model.backbone.init_cfg: the weights "{weights}" do not fit '
        "BlockFeatureResNet (depth 50): 165 of the model's 318 weights are "
        'missing from it')
    assert not osp.exists(osp.join(work_dir, 'epoch_1.pth'))

    _main(trained['train'],
          [config, '--work-dir', work_dir, '--load-partial', *options])
    state = torch.load(
        osp.join(work_dir, 'epoch_1.pth'), weights_only=False)['state_dict']
    # the frozen backbone keeps what was loaded: the weights that fit
    assert torch.equal(state['backbone.conv1.weight'], r18['conv1.weight'])
    assert torch.equal(state['backbone.layer4.1.conv2.weight'],
                       r18['layer4.1.conv2.weight'])


def test_load_partial_config_key():
    from dcama_mm.engine.hooks import configure_checkpoint_loading
    cfg = Config(
        dict(
            load_partial=True,
            model=dict(
                backbone=dict(
                    init_cfg=dict(type='Pretrained', checkpoint='x.pth')))))
    configure_checkpoint_loading(cfg)
    assert cfg.model.backbone.init_cfg.strict is False
    assert cfg.custom_hooks == [
        dict(type='CheckpointFitHook', partial=True, advice=None)
    ]
    configure_checkpoint_loading(cfg, testing=True)  # testing: strict
    assert len(cfg.custom_hooks) == 1
    assert cfg.custom_hooks[0]['partial'] is False
