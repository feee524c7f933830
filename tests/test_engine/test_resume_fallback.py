"""--resume checks the checkpoint before the Runner is built.

A truncated or deleted latest checkpoint: the newest intact one, said so;
a bad explicit ``--resume PATH``: a message naming it; nothing to resume:
said plainly, training from scratch. Real tools/train.py subprocesses and
real checkpoints of the tiny project.
"""
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from dcama_mm.engine.resume import (BadCheckpointError, checkpoint_problem,
                                    find_resume_checkpoint, resolve_resume)
from tests.test_engine.run_helpers import (copy_run, log_folders,
                                           make_trained_project, train)


@pytest.fixture(scope='module')
def project(tmp_path_factory):
    return make_trained_project(str(tmp_path_factory.mktemp('resume')))


def _truncate(path, keep=0.5):
    size = osp.getsize(path)
    with open(path, 'r+b') as f:
        f.truncate(int(size * keep))


def _load(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def test_truncated_latest_checkpoint_falls_back(project, tmp_path):
    work_dir = copy_run(project['trained'], str(tmp_path / 'run'))
    latest = osp.join(work_dir, 'epoch_2.pth')
    _truncate(latest)
    proc = train(project, work_dir, '--resume', max_epochs=2)
    out = proc.stdout
    assert f'--resume: skipping {latest}: the checkpoint is truncated' in out
    assert ('--resume: resuming from the newest intact checkpoint '
            f'{osp.join(work_dir, "epoch_1.pth")} instead') in out
    assert 'resumed epoch: 1, iter: 4' in out
    # epoch 2 trained again: an intact epoch_2.pth
    assert checkpoint_problem(latest) is None
    assert _load(latest)['meta']['epoch'] == 2


def test_deleted_latest_checkpoint_falls_back(project, tmp_path):
    work_dir = copy_run(project['trained'], str(tmp_path / 'run'))
    latest = osp.join(work_dir, 'epoch_2.pth')
    os.remove(latest)
    cfg = Config(dict(work_dir=work_dir))
    assert resolve_resume(cfg, 'auto') == osp.join(work_dir, 'epoch_1.pth')
    assert cfg.resume is True
    assert cfg.load_from == osp.join(work_dir, 'epoch_1.pth')
    found, skipped = find_resume_checkpoint(work_dir)
    assert skipped == [(latest, 'does not exist')]
    # last_checkpoint itself deleted: the newest epoch_*.pth
    os.remove(osp.join(work_dir, 'last_checkpoint'))
    assert find_resume_checkpoint(work_dir) == (
        osp.join(work_dir, 'epoch_1.pth'), [])


def test_bad_explicit_resume_path_stops_naming_it(project, tmp_path):
    work_dir = copy_run(project['trained'], str(tmp_path / 'run'))
    bad = osp.join(work_dir, 'epoch_2.pth')
    _truncate(bad)
    logs = log_folders(work_dir)
    proc = train(project, work_dir, '--resume', bad, check=False)
    assert proc.returncode != 0
    assert (f'BadCheckpointError: --resume {bad}: the checkpoint is '
            'truncated or corrupt') in proc.stdout
    assert 'Epoch(train)' not in proc.stdout
    assert log_folders(work_dir) == logs  # no Runner was built
    with pytest.raises(BadCheckpointError, match='does not exist'):
        resolve_resume(Config(dict(work_dir=work_dir)),
                       osp.join(work_dir, 'missing.pth'))


def test_resume_in_empty_work_dir_says_nothing_was_found(project, tmp_path):
    work_dir = str(tmp_path / 'empty')
    proc = train(project, work_dir, '--resume', max_epochs=1)
    assert (f'--resume: found no checkpoint to resume from in {work_dir}: '
            'training starts from scratch.') in proc.stdout
    assert 'Auto resumed from the latest checkpoint None' not in proc.stdout
    assert _load(osp.join(work_dir, 'epoch_1.pth'))['meta']['epoch'] == 1


@pytest.mark.parametrize('content, problem', [
    (b'', 'is empty'),
    (b'hello, I am a text file\n', 'is not a PyTorch checkpoint'),
    (b'PK\x03\x04' + bytes(100), 'is truncated or corrupt'),
])
def test_checkpoint_problem_names_what_is_wrong(tmp_path, content, problem):
    path = tmp_path / 'x.pth'
    path.write_bytes(content)
    assert problem in checkpoint_problem(str(path))


def test_a_weights_file_is_not_resumable(tmp_path):
    path = str(tmp_path / 'weights.pth')
    torch.save({'w': torch.zeros(2)}, path)
    assert 'not a training checkpoint' in checkpoint_problem(path)
    # a zip entry with a wrong CRC
    torch.save(dict(state_dict={'w': torch.ones(1000)},
                    meta=dict(epoch=1, iter=1), optimizer={}), path)
    assert checkpoint_problem(path) is None
    data = bytearray(open(path, 'rb').read())
    at = data.index(bytes(torch.ones(1000).numpy().tobytes()[:16]))
    data[at + 8] ^= 0xFF
    open(path, 'wb').write(bytes(data))
    assert 'fails its CRC check' in checkpoint_problem(path)


def test_best_checkpoint_is_not_resumed_silently(project, tmp_path):
    """best_*.pth holds no optimizer state (mmengine saves it without):
    mmengine would resume its weights and epoch with a fresh optimizer and
    learning-rate schedule, saying nothing. Refused, naming the file and
    the two ways on."""
    work_dir = copy_run(project['trained'], str(tmp_path / 'run'))
    best = [name for name in os.listdir(work_dir)
            if name.startswith('best_') and name.endswith('.pth')]
    assert len(best) == 1
    best = osp.join(work_dir, best[0])
    assert 'optimizer' not in _load(best)
    logs = log_folders(work_dir)
    proc = train(project, work_dir, '--resume', best, max_epochs=3,
                 check=False)
    assert proc.returncode != 0
    assert (f'BadCheckpointError: --resume {best}: the checkpoint holds no '
            'optimizer state') in proc.stdout
    assert f'--cfg-options load_from={best}' in proc.stdout
    # best_*.pth lacks the schedule too
    assert 'go on with a fresh optimizer and learning-rate schedule' in \
        proc.stdout
    assert 'Epoch(train)' not in proc.stdout
    assert log_folders(work_dir) == logs  # no Runner was built


def test_auto_resume_refuses_a_latest_checkpoint_without_optimizer(
        project, tmp_path):
    """Runs with ``save_optimizer=False`` save every checkpoint without it:
    an automatic --resume must not skip them all and train from scratch."""
    work_dir = copy_run(project['trained'], str(tmp_path / 'run'))
    latest = osp.join(work_dir, 'epoch_2.pth')
    checkpoint = _load(latest)
    del checkpoint['optimizer']
    torch.save(checkpoint, latest)
    with pytest.raises(BadCheckpointError,
                       match='latest intact checkpoint .*epoch_2.pth holds no '
                       'optimizer state') as info:
        resolve_resume(Config(dict(work_dir=work_dir)), 'auto')
    # its learning-rate schedule is there: only the optimizer is lost
    assert 'param_schedulers' in checkpoint
    assert 'go on with a fresh optimizer. Resume from' in str(info.value)
    # a truncated latest one is still skipped for an intact older one
    _truncate(latest)
    assert resolve_resume(Config(dict(work_dir=work_dir)), 'auto') == (
        osp.join(work_dir, 'epoch_1.pth'))


def test_resume_of_a_finished_run_says_nothing_is_trained(project, tmp_path):
    work_dir = copy_run(project['trained'], str(tmp_path / 'run'))
    latest = osp.join(work_dir, 'epoch_2.pth')
    proc = train(project, work_dir, '--resume', max_epochs=2)
    assert (f'--resume: {latest} ends epoch 2 of train_cfg.max_epochs=2: '
            'the run is complete and nothing will be trained (raise '
            'train_cfg.max_epochs to train on).') in proc.stdout
    assert 'Epoch(train)' not in proc.stdout
