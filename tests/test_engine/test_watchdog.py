"""torchrun killed with SIGKILL: its workers stop instead of going on.

A real ``python -m torch.distributed.run --nproc_per_node 2`` of
tools/train.py (gloo, CPU) on the tiny project, trained for many epochs;
once it has written a checkpoint the launcher is killed with SIGKILL and
both workers must exit within seconds, writing no further checkpoint.
"""
import glob
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest

from dcama_mm.engine.watchdog import (LAUNCHER_GONE_EXIT_CODE,
                                      start_launcher_watchdog)
from tests.test_tools.tiny_project import (TOOLS, free_port, make_tiny_data,
                                           tool_env, write_tiny_config)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith('linux'), reason='reads /proc')


def _children(pid):
    """Pids of the live processes whose parent is ``pid`` (from /proc)."""
    result = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != 'Z':
            result.append(int(entry))
    return result


def _alive(pid):
    """Whether ``pid`` runs (a zombie waiting for its reaper does not)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def _wait_for(condition, timeout, step=0.2):
    end = time.time() + timeout
    while time.time() < end:
        if condition():
            return True
        time.sleep(step)
    return condition()


def test_workers_stop_when_torchrun_is_killed(tmp_path):
    root = str(tmp_path)
    config = write_tiny_config(
        osp.join(root, 'tiny.py'), make_tiny_data(root))
    work_dir = osp.join(root, 'run')
    log_path = osp.join(root, 'torchrun.log')
    cmd = [
        sys.executable, '-m', 'torch.distributed.run', '--nnodes', '1',
        '--nproc_per_node', '2', '--master_addr', '127.0.0.1',
        '--master_port', str(free_port()),
        osp.join(TOOLS, 'train.py'), config, '--launcher', 'pytorch',
        '--work-dir', work_dir, '--cfg-options',
        'train_cfg.max_epochs=1000'
    ]
    with open(log_path, 'w') as log:
        launcher = subprocess.Popen(
            cmd, cwd=root, env=tool_env(), stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert _wait_for(
            lambda: osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
            or launcher.poll() is not None, timeout=400), 'no checkpoint'
        assert launcher.poll() is None, open(log_path).read()[-4000:]
        workers = _children(launcher.pid)
        assert len(workers) == 2, workers
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait(timeout=10)
        start = time.time()
        stopped = _wait_for(
            lambda: not any(_alive(p) for p in workers), timeout=20)
        took = time.time() - start
        assert stopped, (f'the workers {workers} still train 20 s after '
                         'torchrun was killed')
        checkpoints = sorted(glob.glob(osp.join(work_dir, '*.pth')))
        time.sleep(3)
        assert sorted(glob.glob(osp.join(work_dir, '*.pth'))) == checkpoints
        with open(log_path) as f:
            log_text = f.read()
        assert (f'The launcher of this worker (torchrun, pid '
                f'{launcher.pid}) is gone: stopping worker rank') in log_text
        assert took < 10, f'the workers took {took:.1f} s to stop'
    finally:
        try:
            os.killpg(launcher.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_no_watchdog_outside_torchrun(monkeypatch):
    monkeypatch.delenv('TORCHELASTIC_RUN_ID', raising=False)
    assert start_launcher_watchdog('pytorch') is None
    monkeypatch.setenv('TORCHELASTIC_RUN_ID', 'x')
    assert start_launcher_watchdog('none') is None
    assert LAUNCHER_GONE_EXIT_CODE != 0
