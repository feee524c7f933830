"""The tools end their process group before the process exits.

Seen in CI: a 2-process ``dist_train.sh`` finished its epochs, logged
"Training finished", then rank 0 aborted while Python shut down
(``terminate called without an active exception``, SIGABRT) and torchrun
reported the run as failed. The gloo process group was never destroyed, so
its C++ threads were still alive during interpreter finalisation; how often
that aborts is a race. What is certain is testable in one process: after
``tools/train.py`` and ``tools/test.py`` return, no process group is left.
"""
import os
import os.path as osp
import sys

import pytest
import torch.distributed as dist

from tests.test_tools.tiny_project import (free_port, load_tool,
                                           make_tiny_data, write_tiny_config)


@pytest.fixture
def torchrun_env(monkeypatch):
    """The environment torchrun gives a 1-process run (no watchdog: the
    watchdog starts only with ``TORCHELASTIC_RUN_ID``)."""
    for name, value in dict(
            RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', LOCAL_WORLD_SIZE='1',
            MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port())).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv('TORCHELASTIC_RUN_ID', raising=False)
    yield
    if dist.is_initialized():  # what the tools left (the bug)
        dist.destroy_process_group()


def _main(monkeypatch, tool, argv):
    monkeypatch.setattr(sys, 'argv', [tool] + argv)
    load_tool(tool).main()


def test_train_and_test_destroy_their_process_group(
        tmp_path, monkeypatch, torchrun_env):
    data_root = make_tiny_data(str(tmp_path))
    config = write_tiny_config(str(tmp_path / 'tiny.py'), data_root)
    work_dir = str(tmp_path / 'run')
    _main(monkeypatch, 'train.py', [
        config, '--work-dir', work_dir, '--launcher', 'pytorch',
        '--cfg-options', 'train_cfg.max_epochs=1'
    ])
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    assert not dist.is_initialized()

    monkeypatch.setenv('MASTER_PORT', str(free_port()))
    out = str(tmp_path / 'metrics.json')
    _main(monkeypatch, 'test.py', [
        config, osp.join(work_dir, 'epoch_1.pth'), '--work-dir',
        str(tmp_path / 'test'), '--launcher', 'pytorch', '--out', out
    ])
    assert osp.isfile(out)
    assert not dist.is_initialized()


def test_no_barrier_after_an_error(monkeypatch):
    """After an error a rank leaves without waiting at a barrier (the other
    ranks may never come), but still destroys its group."""
    from dcama_mm.engine import launch
    calls = []
    monkeypatch.setattr(dist, 'is_initialized', lambda: True)
    monkeypatch.setattr(dist, 'barrier', lambda: calls.append('barrier'))
    monkeypatch.setattr(dist, 'destroy_process_group',
                        lambda: calls.append('destroy'))
    launch.finish_distributed(completed=False)
    assert calls == ['destroy']
    launch.finish_distributed()
    assert calls == ['destroy', 'barrier', 'destroy']


def _end_of_run(rank: int, init_file: str, out: str) -> None:
    """Rank 1 fails (exits without reaching the end); rank 0 finishes."""
    from dcama_mm.engine import launch
    dist.init_process_group('gloo', init_method=f'file://{init_file}',
                            rank=rank, world_size=2)
    if rank == 1:
        os._exit(1)
    try:
        launch.finish_distributed(completed=True)
    except RuntimeError as err:
        with open(out, 'w') as f:
            f.write(str(err))
        os._exit(0)
    os._exit(2)


def test_a_finished_rank_says_that_another_one_failed(tmp_path):
    """The barrier at the end fails when another rank is gone: a message
    that says so, not gloo's "Connection closed by peer"."""
    import torch.multiprocessing as mp
    ctx = mp.get_context('fork')
    out = str(tmp_path / 'message')
    procs = [ctx.Process(target=_end_of_run,
                         args=(rank, str(tmp_path / 'init'), out))
             for rank in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0, 1]
    with open(out) as f:
        assert f.read().startswith(
            'rank 0 finished, but another process of the run did not reach '
            'the end: it failed or was stopped')
