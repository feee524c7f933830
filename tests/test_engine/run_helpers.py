"""Shared by the work-dir, resume and watchdog tests: a tiny trained run.

The tiny project of ``tests/test_tools/tiny_project.py`` trained for 2
epochs once with the real Runner; :func:`copy_run` gives each test its own
copy (``last_checkpoint`` repointed at the copy).
"""
import glob
import hashlib
import os
import os.path as osp
import shutil
from typing import Dict, List, Optional

from mmengine.runner import Runner

from tests.test_tools.test_train_test import _train_args
from tests.test_tools.tiny_project import (TOOLS, load_tool, make_tiny_data,
                                           run, write_tiny_config)

TRAIN = osp.join(TOOLS, 'train.py')


def make_trained_project(root: str) -> Dict[str, str]:
    """Tiny data, config and a 2-epoch run in ``root/trained``."""
    data_root = make_tiny_data(root)
    config = write_tiny_config(osp.join(root, 'tiny.py'), data_root)
    work_dir = osp.join(root, 'trained')
    train_tool = load_tool('train.py')
    cfg = train_tool.build_cfg(_train_args(config, work_dir, max_epochs=2))
    Runner.from_cfg(cfg).train()
    return dict(root=root, config=config, trained=work_dir)


def copy_run(src: str, dst: str) -> str:
    """Copy the work dir ``src`` to ``dst``; repoint ``last_checkpoint``."""
    shutil.copytree(src, dst)
    pointer = osp.join(dst, 'last_checkpoint')
    with open(pointer) as f:
        target = f.read().strip()
    with open(pointer, 'w') as f:
        f.write(osp.join(dst, osp.basename(target)))
    return dst


def hashes(folder: str) -> Dict[str, str]:
    """sha1 of every file under ``folder``, by path relative to it."""
    result = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                result[osp.relpath(path, folder)] = hashlib.sha1(
                    f.read()).hexdigest()
    return result


def log_folders(work_dir: str) -> List[str]:
    """The Runner's timestamped log folders of ``work_dir``."""
    return sorted(glob.glob(osp.join(work_dir, '2*_*')))


def train(project: Dict[str, str], work_dir: str, *options: str,
          max_epochs: Optional[int] = None, check: bool = True):
    """Run ``tools/train.py`` on the tiny config in a subprocess."""
    cmd = ['python', TRAIN, project['config'], '--work-dir', work_dir]
    cmd += list(options)
    if max_epochs is not None:
        cmd += ['--cfg-options', f'train_cfg.max_epochs={max_epochs}']
    return run(cmd, cwd=project['root'], check=check)
