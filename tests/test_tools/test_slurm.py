"""tools/slurm_train.sh and tools/slurm_test.sh with a stand-in ``srun``.

The stand-in (first on PATH) records its arguments and starts the
``--ntasks`` tasks on this machine with the variables Slurm sets
(``SLURM_PROCID``, ``SLURM_LOCALID``, ``SLURM_NTASKS``, ``SLURM_NODELIST``,
...); a stand-in ``scontrol`` names the first host. The tasks are real
2-process gloo runs of tools/train.py / tools/test.py with
``--launcher slurm``; the result must equal tools/dist_train.sh's.
"""
import glob
import json
import os
import os.path as osp
import stat
import sys

import pytest
import torch

from tests.test_tools.tiny_project import (TEST_EPISODES, TOOLS,
                                           make_tiny_data, run, tool_env,
                                           write_tiny_config)

STAND_IN_SRUN = '''#!{python}
"""A stand-in srun: records its arguments, runs --ntasks tasks here."""
import json, os, subprocess, sys

args = sys.argv[1:]
with open({record!r}, 'a') as f:
    f.write(json.dumps(args) + '\\n')
options, i = {{}}, 0
while i < len(args) and args[i].startswith('-'):
    if '=' in args[i]:
        key, value = args[i].split('=', 1)
    else:
        key, value = args[i], args[i + 1]
        i += 1
    options[key] = value
    i += 1
command = args[i:]
ntasks = int(options['--ntasks'])
procs = []
for rank in range(ntasks):
    env = dict(os.environ)
    env.update(SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank),
               SLURM_NTASKS=str(ntasks), SLURM_NPROCS=str(ntasks),
               SLURM_NODELIST='cpu-node-[01]', SLURM_NNODES='1',
               SLURM_NODEID='0', SLURM_JOB_ID='4242',
               SLURM_JOB_NAME=options.get('--job-name', ''),
               SLURM_JOB_PARTITION=options.get('-p', ''))
    procs.append(subprocess.Popen(command, env=env))
sys.exit(max(p.wait() for p in procs))
'''

STAND_IN_SCONTROL = '''#!/bin/sh
# a stand-in scontrol: `scontrol show hostname NODELIST` -> this machine
echo 127.0.0.1
echo cpu-node-02
'''


def _executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    """Tiny data and config, a stand-in srun/scontrol, and the reference
    2-process tools/dist_train.sh run."""
    root = tmp_path_factory.mktemp('slurm')
    data_root = make_tiny_data(str(root))
    config = write_tiny_config(str(root / 'tiny.py'), data_root)
    bin_dir = root / 'bin'
    bin_dir.mkdir()
    record = root / 'srun_calls.jsonl'
    _executable(bin_dir / 'srun',
                STAND_IN_SRUN.format(python=sys.executable,
                                     record=str(record)))
    _executable(bin_dir / 'scontrol', STAND_IN_SCONTROL)
    dist_dir = str(root / 'dist_train')
    run(['bash', osp.join(TOOLS, 'dist_train.sh'), config, '2',
         '--work-dir', dist_dir], cwd=str(root))
    return dict(root=root, config=config, bin=bin_dir, record=record,
                dist_dir=dist_dir)


def _slurm_env(cluster, **extra):
    settings = dict(GPUS='2', GPUS_PER_NODE='2', CPUS_PER_TASK='1',
                    GRES='')
    settings.update(extra)
    env = tool_env(settings)
    env['PATH'] = f'{cluster["bin"]}{os.pathsep}{env["PATH"]}'
    env['MASTER_PORT'] = env.pop('PORT')
    for name in ('MASTER_ADDR', 'RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        env.pop(name, None)
    return env


def _calls(cluster):
    with open(cluster['record']) as f:
        return [json.loads(line) for line in f]


def _state_dict(path):
    return torch.load(path, map_location='cpu', weights_only=False)[
        'state_dict']


def test_slurm_train_equals_dist_train(cluster):
    work_dir = str(cluster['root'] / 'slurm_train')
    proc = run(['bash', osp.join(TOOLS, 'slurm_train.sh'), 'cpu', 'tiny_job',
                cluster['config'], work_dir],
               cwd=str(cluster['root']),
               env=_slurm_env(cluster, SRUN_ARGS='--quotatype=auto'))
    # srun got mmseg's options and the tool with --launcher slurm
    args = _calls(cluster)[-1]
    assert args[:7] == [
        '-p', 'cpu', '--job-name=tiny_job', '--ntasks=2',
        '--ntasks-per-node=2', '--cpus-per-task=1', '--kill-on-bad-exit=1'
    ]
    assert args[7] == '--quotatype=auto'
    assert args[9:] == [
        '-u', osp.join(TOOLS, 'train.py'), cluster['config'],
        f'--work-dir={work_dir}', '--launcher', 'slurm'
    ]
    assert not any(a.startswith('--gres') for a in args)
    log = proc.stdout
    assert 'running 2 CPU processes with the gloo backend' in log
    assert 'Distributed training: True' in log
    assert 'Epoch(train) [2][2/2]' in log
    # the same training as 2 torchrun processes: identical weights
    ours = _state_dict(osp.join(work_dir, 'epoch_2.pth'))
    theirs = _state_dict(osp.join(cluster['dist_dir'], 'epoch_2.pth'))
    assert ours.keys() == theirs.keys()
    for key in theirs:
        assert torch.equal(ours[key], theirs[key]), key
    # and the same validation mIoU per epoch
    assert _val_mious(work_dir) == _val_mious(cluster['dist_dir'])


def _val_mious(work_dir):
    (scalars, ) = glob.glob(osp.join(work_dir, '*', 'vis_data',
                                     'scalars.json'))
    with open(scalars) as f:
        return [r['mIoU'] for r in map(json.loads, f) if 'mIoU' in r]


def test_slurm_test_equals_one_process(cluster):
    root = cluster['root']
    ckpt = osp.join(cluster['dist_dir'], 'epoch_2.pth')
    slurm_out, one_out = str(root / 'slurm.json'), str(root / 'one.json')
    proc = run(['bash', osp.join(TOOLS, 'slurm_test.sh'), 'cpu', 'tiny_test',
                cluster['config'], ckpt, '--out', slurm_out,
                '--work-dir', str(root / 'slurm_test')],
               cwd=str(root),
               env=_slurm_env(cluster, GRES='gpu:2'))
    assert 'running 2 CPU processes with the gloo backend' in proc.stdout
    args = _calls(cluster)[-1]
    assert '--gres=gpu:2' in args
    assert args[-8:] == [
        cluster['config'], ckpt, '--out', slurm_out, '--work-dir',
        str(root / 'slurm_test'), '--launcher', 'slurm'
    ]
    run(['python', osp.join(TOOLS, 'test.py'), cluster['config'], ckpt,
         '--out', one_out, '--work-dir', str(root / 'one_test')],
        cwd=str(root))
    with open(slurm_out) as f:
        slurm = json.load(f)['metrics']
    with open(one_out) as f:
        one = json.load(f)['metrics']
    assert slurm['num_episodes'] == TEST_EPISODES
    assert slurm['mIoU'] == one['mIoU']
    assert slurm['FB-IoU'] == one['FB-IoU']


@pytest.mark.parametrize('script, extra', [('slurm_train.sh', ['wd']),
                                           ('slurm_test.sh', ['x.pth'])])
def test_slurm_scripts_reject_bad_input(cluster, script, extra):
    root = str(cluster['root'])
    proc = run(['bash', osp.join(TOOLS, script), 'cpu', 'job'],
               cwd=root, env=_slurm_env(cluster), check=False)
    assert proc.returncode == 2 and 'usage:' in proc.stdout
    proc = run(['bash', osp.join(TOOLS, script), 'cpu', 'job',
                'missing.py'] + extra,
               cwd=root, env=_slurm_env(cluster), check=False)
    assert proc.returncode == 2
    assert 'CONFIG: the file "missing.py" does not exist' in proc.stdout
    proc = run(['bash', osp.join(TOOLS, script), 'cpu', 'job',
                cluster['config'], 'wd'],
               cwd=root, env=_slurm_env(cluster, GPUS='two'), check=False)
    assert proc.returncode == 2
    if script == 'slurm_test.sh':
        assert 'CHECKPOINT: the file "wd" does not exist' in proc.stdout
    else:
        assert 'GPUS must be a positive integer, got "two"' in proc.stdout


def test_slurm_launcher_outside_srun_says_so(monkeypatch):
    from mmengine.config import Config

    from dcama_mm.engine.launch import setup_cpu_distributed
    if torch.cuda.is_available():
        pytest.skip('mmengine initialises Slurm runs on GPUs')
    for name in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match='--launcher slurm: SLURM_PROCID, '
                       'SLURM_NTASKS, SLURM_NODELIST not set; start the '
                       'tool with srun'):
        setup_cpu_distributed(Config(dict(model=dict())), 'slurm')
