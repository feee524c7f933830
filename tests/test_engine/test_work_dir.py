"""A new run never writes over an earlier run's checkpoints (--force).

``tools/train.py`` without ``--resume`` into a work dir that holds
checkpoints is refused before anything is built; ``--force`` moves the
earlier checkpoints into ``previous_<time>/`` first. Real tools/train.py
subprocesses on the tiny project.
"""
import glob
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from dcama_mm.engine.work_dirs import (WorkDirInUseError, check_new_run,
                                       checkpoint_dir, previous_run_files)
from tests.test_engine.run_helpers import (copy_run, hashes, log_folders,
                                           make_trained_project, train)
from tests.test_tools.tiny_project import TOOLS, run


@pytest.fixture(scope='module')
def project(tmp_path_factory):
    return make_trained_project(str(tmp_path_factory.mktemp('work_dir')))


def test_second_run_is_refused_before_any_work(project, tmp_path):
    work_dir = copy_run(project['trained'], str(tmp_path / 'run'))
    before = hashes(work_dir)
    proc = train(project, work_dir, max_epochs=1, check=False)
    assert proc.returncode != 0
    out = proc.stdout
    assert 'WorkDirInUseError' in out
    assert f'--work-dir {work_dir} already holds the checkpoints' in out
    assert 'epoch_1.pth, epoch_2.pth' in out and 'last_checkpoint' in out
    for offer in ('--resume', 'another --work-dir', '--force'):
        assert offer in out
    # nothing was built: no Runner log, no new log folder, nothing changed
    assert 'Epoch(train)' not in out and 'Distributed training' not in out
    assert hashes(work_dir) == before


def test_force_sets_the_earlier_run_aside(project, tmp_path):
    work_dir = copy_run(project['trained'], str(tmp_path / 'run'))
    before = hashes(work_dir)
    old = previous_run_files(work_dir)
    assert 'epoch_2.pth' in old
    proc = train(project, work_dir, '--force', max_epochs=1)
    aside = glob.glob(osp.join(work_dir, 'previous_*'))
    assert len(aside) == 1
    assert (f'--force: moved the {len(old)} checkpoint file(s) of the '
            f'earlier run in {work_dir}') in proc.stdout
    assert f'into {aside[0]}/' in proc.stdout
    # the earlier run's checkpoints, byte for byte, in previous_<time>/
    name = osp.basename(aside[0])
    after = hashes(work_dir)
    for rel in old:
        assert after[osp.join(name, rel)] == before[rel], rel
    # the new run alone in the work dir: no stale epoch_2.pth beside it
    assert previous_run_files(work_dir) == [
        'best_mIoU_epoch_1.pth', 'epoch_1.pth', 'last_checkpoint'
    ]
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip() == osp.join(work_dir, 'epoch_1.pth')
    ckpt = torch.load(osp.join(work_dir, 'epoch_1.pth'), map_location='cpu',
                      weights_only=False)
    assert ckpt['meta']['epoch'] == 1
    # the earlier logs stay where they were (one new log folder)
    assert len(log_folders(work_dir)) == 2


def test_config_resume_takes_the_checked_resume_path(project, tmp_path):
    # `resume=True` in the config / --cfg-options is a --resume, not a new
    # run into a used work dir
    work_dir = copy_run(project['trained'], str(tmp_path / 'run'))
    proc = train(project, work_dir, '--cfg-options', 'resume=True',
                 'train_cfg.max_epochs=3')
    assert 'WorkDirInUseError' not in proc.stdout
    assert 'Epoch(train) [3]' in proc.stdout
    assert 'Epoch(train) [1]' not in proc.stdout
    assert osp.isfile(osp.join(work_dir, 'epoch_3.pth'))


def test_force_and_resume_exclude_each_other(project, tmp_path):
    proc = train(project, str(tmp_path / 'run'), '--force', '--resume',
                 check=False)
    assert proc.returncode != 0
    assert '--force starts a new run and --resume continues one' in (
        proc.stdout)


def test_empty_or_log_only_work_dir_is_fine(tmp_path):
    cfg = Config(dict(work_dir=str(tmp_path / 'new')))
    assert check_new_run(cfg, resume=False, force=False) is None
    (tmp_path / 'new').mkdir()
    (tmp_path / 'new' / '20250101_000000').mkdir()
    assert check_new_run(cfg, resume=False, force=False) is None
    (tmp_path / 'new' / 'epoch_3.pth').write_bytes(b'x')
    with pytest.raises(WorkDirInUseError, match='epoch_3.pth'):
        check_new_run(cfg, resume=False, force=False)
    assert check_new_run(cfg, resume=True, force=False) is None


def test_checkpoint_out_dir_is_checked(tmp_path):
    out_dir = tmp_path / 'ckpts'
    (out_dir / 'run1').mkdir(parents=True)
    (out_dir / 'run1' / 'epoch_1.pth').write_bytes(b'x')
    cfg = Config(
        dict(
            work_dir=str(tmp_path / 'run1'),
            default_hooks=dict(checkpoint=dict(out_dir=str(out_dir)))))
    assert checkpoint_dir(cfg) == str(out_dir / 'run1')
    with pytest.raises(WorkDirInUseError, match=str(out_dir / 'run1')):
        check_new_run(cfg, resume=False, force=False)


def test_demo_over_an_earlier_run_trains_afresh_with_it_set_aside(
        project, tmp_path):
    """tools/run_demo.py (`make demo`) over an earlier run's work dir.

    The earlier run is the tiny project's 2-epoch training (what a first
    demo leaves, less its test folders); the demo runs on the tiny config
    and data.
    """
    work_dir = copy_run(project['trained'], str(tmp_path / 'demo'))
    before = hashes(work_dir)
    proc = run([
        'python', osp.join(TOOLS, 'run_demo.py'), '--config',
        project['config'], '--data-root',
        osp.join(project['root'], 'coco'), '--work-dir', work_dir,
        '--max-epochs', '1', '--pictures', '0'
    ], cwd=project['root'])
    aside = glob.glob(osp.join(work_dir, 'previous_*'))
    assert len(aside) == 1
    assert (f'{work_dir} held an earlier demo run: moved its') in proc.stdout
    assert f'the earlier demo run: {aside[0]}' in proc.stdout
    # the earlier run, byte for byte, in previous_<time>/
    after = hashes(work_dir)
    name = osp.basename(aside[0])
    for rel, digest in before.items():
        assert after[osp.join(name, rel)] == digest, rel
    # the new run's own checkpoints, logs and results beside it
    assert previous_run_files(work_dir) == [
        'best_mIoU_epoch_1.pth', 'epoch_1.pth', 'last_checkpoint'
    ]
    assert len(log_folders(work_dir)) == 1
    assert osp.isfile(osp.join(work_dir, 'demo_results.json'))


def test_dist_train_passes_the_rule_and_force_through(project, tmp_path):
    """2 CPU processes (dist_train.sh): refused before any work; --force
    moves the files once (rank 0) and trains.

    Every rank refuses, but torchrun stops the other worker as soon as the
    first one fails, so how many of the messages reach the log is a race:
    one at least.
    """
    work_dir = copy_run(project['trained'], str(tmp_path / 'run'))
    before = hashes(work_dir)
    old = previous_run_files(work_dir)
    dist_train = ['bash', osp.join(TOOLS, 'dist_train.sh'),
                  project['config'], '2', '--work-dir', work_dir,
                  '--cfg-options', 'train_cfg.max_epochs=1']
    refused = run(dist_train, cwd=project['root'], check=False)
    assert refused.returncode != 0
    assert refused.stdout.count('WorkDirInUseError: --work-dir') >= 1
    assert 'Epoch(train)' not in refused.stdout
    assert hashes(work_dir) == before
    forced = run(dist_train + ['--force'], cwd=project['root'])
    assert 'running 2 CPU processes with the gloo backend' in forced.stdout
    assert forced.stdout.count('--force: moved the') == 1
    aside = glob.glob(osp.join(work_dir, 'previous_*'))
    assert len(aside) == 1
    assert sorted(os.listdir(aside[0])) == old
    assert previous_run_files(work_dir) == [
        'best_mIoU_epoch_1.pth', 'epoch_1.pth', 'last_checkpoint'
    ]


@pytest.mark.parametrize('option, message', [
    ('train_cfg.max_epoch=1',
     "unknown train_cfg key 'max_epoch' (did you mean 'max_epochs'?)"),
    ('model.decode_head.num_head=8',
     "DCAMAHead: unknown argument 'num_head' (did you mean 'num_heads'?)"),
    ('optim_wrapper.paramwise_cfg.bias_decay_mul=0.',
     "unknown optim_wrapper.paramwise_cfg key 'bias_decay_mul' (did you mean "
     "'bias_decay_mult'?)"),
])
def test_force_moves_nothing_when_the_config_is_refused(
        project, tmp_path, option, message):
    """--force sets the earlier run aside only once the config has passed
    its checks and the Runner is built: a typo must not leave the work dir
    without checkpoints."""
    work_dir = copy_run(project['trained'], str(tmp_path / 'run'))
    before = hashes(work_dir)
    proc = train(project, work_dir, '--force', '--cfg-options', option,
                 check=False)
    assert proc.returncode != 0
    assert message in proc.stdout
    assert '--force: moved' not in proc.stdout
    assert not [d for d in os.listdir(work_dir) if d.startswith('previous_')]
    after = hashes(work_dir)
    assert {k: v for k, v in after.items() if k in before} == before
    assert 'epoch_2.pth' in after
