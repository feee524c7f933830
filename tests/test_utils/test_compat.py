"""dcama_mm.utils.compat: mmengine loads its own checkpoints on torch>=2.6,
with the trusted loader registered only where needed, once."""
import pickle
from collections import OrderedDict

import mmengine
import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import CheckpointLoader, Runner, load_checkpoint
from mmengine.runner.checkpoint import load_from_local
from torch.utils.data import DataLoader

import dcama_mm  # noqa: F401
from dcama_mm.utils import load_local_checkpoint
from dcama_mm.utils.compat import (needs_trusted_local_loader,
                                   register_trusted_local_loader)


class _ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)
        self.train_forwards = 0

    def forward(self, inputs, targets=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        if mode == 'loss':
            self.train_forwards += 1
            return dict(loss=(out - torch.stack(targets)).pow(2).mean())
        return out


def _loader():
    data = [
        dict(inputs=torch.tensor([i, 1.]), targets=torch.tensor([2. * i]))
        for i in range(4)
    ]
    return DataLoader(data, batch_size=2, collate_fn=lambda batch: dict(
        inputs=[b['inputs'] for b in batch],
        targets=[b['targets'] for b in batch]))


def _runner(work_dir, name, max_epochs, **kwargs):
    return Runner(
        model=_ToyModel(),
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=_loader(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01,
                                          momentum=0.9)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1),
            logger=dict(type='LoggerHook', interval=1)),
        default_scope='mmengine',
        **kwargs)


def test_runner_checkpoint_save_load_and_resume(tmp_path):
    runner = _runner(tmp_path, 'compat_save', max_epochs=1)
    runner.train()
    ckpt = tmp_path / 'epoch_1.pth'
    assert ckpt.is_file()
    saved = runner.model.state_dict()

    if tuple(int(v) for v in torch.__version__.split('.')[:2]) >= (2, 6):
        # the breakage compat fixes: torch's default weights_only=True
        with pytest.raises(pickle.UnpicklingError):
            torch.load(ckpt)

    model = _ToyModel()
    checkpoint = load_checkpoint(model, str(ckpt), map_location='cpu')
    assert checkpoint['meta']['epoch'] == 1
    assert 'message_hub' in checkpoint
    torch.testing.assert_close(model.state_dict(), saved)

    resumed = _runner(
        tmp_path, 'compat_resume', max_epochs=2, load_from=str(ckpt),
        resume=True)
    resumed.train()
    assert resumed.epoch == 2 and resumed.iter == 4
    # only the second epoch ran: 2 iterations of 2 samples
    assert resumed.model.train_forwards == 2


def test_only_the_local_scheme_is_replaced():
    assert CheckpointLoader._get_checkpoint_loader('x.pth') is \
        load_local_checkpoint
    http = CheckpointLoader._get_checkpoint_loader('https://a.b/x.pth')
    assert http is not load_local_checkpoint
    assert http.__module__ == 'mmengine.runner.checkpoint'


def test_missing_local_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_local_checkpoint(str(tmp_path / 'missing.pth'))


@pytest.mark.parametrize('mmengine_version, torch_version, needed', [
    ('0.10.7', '2.6.0', True),
    ('0.10.7', '2.14.1+cu130', True),
    ('0.10.3', '2.6.1', True),
    ('0.10.7', '2.5.1', False),
    ('0.10.8', '2.14.1', False),
    ('0.11.0', '2.6.0', False),
])
def test_needs_trusted_local_loader(mmengine_version, torch_version, needed):
    assert needs_trusted_local_loader(mmengine_version,
                                      torch_version) is needed


@pytest.fixture
def scheme_table(monkeypatch):
    """A private copy of mmengine's scheme table, mmengine's local loader
    serving ``''``, and a count of the ``register_scheme`` calls."""
    schemes = OrderedDict(CheckpointLoader._schemes)
    schemes[''] = load_from_local
    monkeypatch.setattr(CheckpointLoader, '_schemes', schemes)
    calls = []
    register = CheckpointLoader.register_scheme.__func__

    def counting(cls, *args, **kwargs):
        calls.append(kwargs)
        return register(cls, *args, **kwargs)

    monkeypatch.setattr(CheckpointLoader, 'register_scheme',
                        classmethod(counting))
    return calls


def test_fixed_mmengine_keeps_its_loader(monkeypatch, scheme_table):
    monkeypatch.setattr(mmengine, '__version__', '0.11.0')
    assert register_trusted_local_loader() is False
    assert CheckpointLoader._get_checkpoint_loader('x.pth') is \
        load_from_local
    assert scheme_table == []


def test_unfixed_mmengine_registers_once(monkeypatch, scheme_table):
    monkeypatch.setattr(mmengine, '__version__', '0.10.7')
    monkeypatch.setattr(torch, '__version__', '2.6.0')
    assert register_trusted_local_loader() is True
    assert CheckpointLoader._get_checkpoint_loader('x.pth') is \
        load_local_checkpoint
    assert register_trusted_local_loader() is True
    assert len(scheme_table) == 1
