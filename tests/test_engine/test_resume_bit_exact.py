"""A resumed run equals an uninterrupted one bit for bit (RandomStateHook).

Real mmengine Runner on the tiny project (random ResNet of width 8, the
DCAMA head with its dropout): 2 epochs in one go against 1 epoch, then
``--resume`` for the second. Every weight and every optimizer state tensor
must be ``torch.equal``.
"""
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner

from tests.test_tools.tiny_project import (load_tool, make_tiny_data, run,
                                           write_tiny_config, TOOLS)
from tests.test_tools.test_train_test import _train_args


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('resume_exact'))
    data_root = make_tiny_data(root)
    return dict(root=root, config=write_tiny_config(
        osp.join(root, 'tiny.py'), data_root))


def _load(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def _train(tiny, work_dir, max_epochs, resume=None, workers=0):
    train_tool = load_tool('train.py')
    args = _train_args(tiny['config'], work_dir, resume=resume,
                       max_epochs=max_epochs)
    args.cfg_options['train_dataloader.num_workers'] = workers
    cfg = train_tool.build_cfg(args)
    if hasattr(train_tool, 'prepare_run'):
        train_tool.prepare_run(cfg, args)
    Runner.from_cfg(cfg).train()


def assert_same_training_state(a, b):
    """Every weight and optimizer state tensor of two checkpoints equal."""
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for name, tensor in a['state_dict'].items():
        assert torch.equal(tensor, b['state_dict'][name]), name
    opt_a, opt_b = a['optimizer']['state'], b['optimizer']['state']
    assert opt_a.keys() == opt_b.keys() and len(opt_a) > 0
    for key, state in opt_a.items():
        assert state.keys() == opt_b[key].keys()
        for name, value in state.items():
            assert torch.equal(
                torch.as_tensor(value), torch.as_tensor(opt_b[key][name])), (
                    key, name)
    assert a['meta']['epoch'] == b['meta']['epoch']
    assert a['meta']['iter'] == b['meta']['iter']


@pytest.mark.parametrize('workers', [0, 2])
def test_resumed_run_equals_uninterrupted_run(tiny, workers):
    root = tiny['root']
    whole = osp.join(root, f'whole_{workers}')
    parts = osp.join(root, f'parts_{workers}')
    _train(tiny, whole, max_epochs=2, workers=workers)
    _train(tiny, parts, max_epochs=1, workers=workers)
    first = _load(osp.join(parts, 'epoch_1.pth'))
    _train(tiny, parts, max_epochs=2, resume='auto', workers=workers)
    # the first epochs are the same run, the second ones too
    assert_same_training_state(
        _load(osp.join(whole, 'epoch_1.pth')), first)
    assert_same_training_state(
        _load(osp.join(whole, 'epoch_2.pth')),
        _load(osp.join(parts, 'epoch_2.pth')))
    # one state per process, of torch, numpy and random
    states = first['meta']['random_states']
    assert len(states) == 1
    assert set(states[0]) >= {'torch', 'numpy', 'python'}


def test_resumed_two_process_run_equals_uninterrupted_run(tiny):
    """The same with 2 CPU processes (gloo): per-rank states."""
    root, config = tiny['root'], tiny['config']
    dist_train = osp.join(TOOLS, 'dist_train.sh')
    whole = osp.join(root, 'dist_whole')
    parts = osp.join(root, 'dist_parts')
    run(['bash', dist_train, config, '2', '--work-dir', whole], cwd=root)
    run(['bash', dist_train, config, '2', '--work-dir', parts,
         '--cfg-options', 'train_cfg.max_epochs=1'], cwd=root)
    states = _load(osp.join(parts, 'epoch_1.pth'))['meta']['random_states']
    assert len(states) == 2
    run(['bash', dist_train, config, '2', '--work-dir', parts, '--resume'],
        cwd=root)
    assert_same_training_state(
        _load(osp.join(whole, 'epoch_2.pth')),
        _load(osp.join(parts, 'epoch_2.pth')))
