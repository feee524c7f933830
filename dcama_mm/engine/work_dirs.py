# Copyright (c) dcama_mm contributors. All rights reserved.
"""One run per work directory: no new run over an earlier run's checkpoints.

mmengine's Runner writes ``epoch_N.pth``, ``best_<metric>_epoch_N.pth`` and
``last_checkpoint`` into the work directory (or the checkpoint hook's
``out_dir``) whatever is there already: a second run into the same
directory overwrites some of the first run's checkpoints, keeps others
beside them and repoints ``last_checkpoint``, so that a later ``--resume``
continues a mixture of both. :func:`check_new_run` refuses that before
anything is built; ``--force`` moves the earlier checkpoints aside into a
``previous_<time>`` folder (:func:`set_aside`) so that nothing is lost.
"""
import glob
import os
import os.path as osp
import shutil
import time
from typing import List, Optional, Sequence

from mmengine.config import Config
from mmengine.logging import print_log

__all__ = [
    'checkpoint_dir', 'previous_run_files', 'check_new_run', 'set_aside',
    'launcher_rank', 'WorkDirInUseError'
]

#: The name of the file in which mmengine records the latest checkpoint.
LAST_CHECKPOINT = 'last_checkpoint'


class WorkDirInUseError(FileExistsError):
    """A new run was started in a directory that holds a run's checkpoints."""


def launcher_rank() -> int:
    """The global rank the launcher gave this process (0 when alone).

    Read from ``RANK`` (torchrun) or ``SLURM_PROCID`` (srun) because the
    process group is not initialised yet when the work directory is checked.
    """
    return int(os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0')))


def checkpoint_dir(cfg: Config) -> str:
    """The folder the Runner's ``CheckpointHook`` writes checkpoints into.

    ``cfg.work_dir``, or ``<out_dir>/<basename of work_dir>`` when the
    config's ``default_hooks.checkpoint.out_dir`` is set (mmengine's rule).
    """
    work_dir = cfg.work_dir
    hook = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    out_dir = hook.get('out_dir', None)
    if out_dir:
        return osp.join(out_dir, osp.basename(osp.normpath(work_dir)))
    return work_dir


def previous_run_files(folder: str) -> List[str]:
    """Names of the checkpoint files of an earlier run in ``folder``.

    The ``*.pth`` files and ``last_checkpoint`` directly in ``folder``
    (sorted); an empty list when the folder does not exist.
    """
    if not osp.isdir(folder):
        return []
    names = [osp.basename(p) for p in glob.glob(osp.join(folder, '*.pth'))]
    if osp.isfile(osp.join(folder, LAST_CHECKPOINT)):
        names.append(LAST_CHECKPOINT)
    return sorted(names)


def _aside_folder(folder: str) -> str:
    """A new ``previous_<time>`` folder name in ``folder``."""
    stamp = time.strftime('%Y%m%d_%H%M%S', time.localtime())
    target = osp.join(folder, f'previous_{stamp}')
    suffix = 1
    while osp.exists(target):
        target = osp.join(folder, f'previous_{stamp}_{suffix}')
        suffix += 1
    return target


def set_aside(folder: str, names: Sequence[str]) -> str:
    """Move ``names`` of ``folder`` into a new ``folder/previous_<time>/``.

    Args:
        folder (str): The work (checkpoint) directory.
        names (Sequence[str]): File or folder names in ``folder``.

    Returns:
        str: The folder they were moved into.
    """
    target = _aside_folder(folder)
    os.makedirs(target)
    for name in names:
        shutil.move(osp.join(folder, name), osp.join(target, name))
    return target


def _shorten(names: Sequence[str], limit: int = 6) -> str:
    shown = ', '.join(names[:limit])
    if len(names) > limit:
        shown += f', ... ({len(names)} files)'
    return shown


def check_new_run(cfg: Config,
                  resume: bool,
                  force: bool,
                  option: str = '--work-dir',
                  nothing_to_resume: bool = False,
                  move: bool = True) -> Optional[str]:
    """Refuse to start a new run over an earlier run's checkpoints.

    Call it before the Runner is built. Nothing is checked when resuming
    (``resume``: the run continues in its own folder). Otherwise, when the
    checkpoint folder (:func:`checkpoint_dir`) holds ``*.pth`` files or
    ``last_checkpoint``:

    - without ``force``: raise :class:`WorkDirInUseError`, which names the
      folder and a few of the files and offers ``--resume``, another
      ``--work-dir`` or ``--force``;
    - with ``force``: the process of rank 0 moves those files into
      ``<folder>/previous_<time>/`` (:func:`set_aside`) and says so; the
      other ranks leave them to it (nothing is written before every rank
      has built its Runner, so they cannot race with it).

    Args:
        cfg (Config): The config, ``work_dir`` set.
        resume (bool): Whether the run resumes.
        force (bool): Whether ``--force`` was given.
        option (str): The option that named the folder, for the message.
        nothing_to_resume (bool): Whether ``--resume`` was given but found
            no intact checkpoint (changes the advice of the message).
        move (bool): Whether ``force`` moves the files now; False only
            checks (``tools/train.py`` checks before the Runner is built
            and moves once it is built: a config the Runner refuses leaves
            the folder as it was). Defaults to True.

    Returns:
        str, optional: The folder the files were moved into, if any.

    Raises:
        WorkDirInUseError: When the folder holds checkpoints and neither
            ``resume`` nor ``force`` is set.
    """
    if resume:
        return None
    folder = checkpoint_dir(cfg)
    names = previous_run_files(folder)
    if not names:
        return None
    if not force:
        advice = ('--resume found none of them intact to continue from; pass'
                  if nothing_to_resume else
                  'Pass --resume to continue that run,')
        raise WorkDirInUseError(
            f'{option} {folder} already holds the checkpoints of an earlier '
            f'run ({_shorten(names)}); a new run there would overwrite some '
            f'of them and mix the two runs. {advice} another {option} for a '
            'new run, or --force to move them into '
            f'{osp.join(folder, "previous_<time>")}/ and start afresh.')
    if not move or launcher_rank() != 0:
        return None
    target = set_aside(folder, names)
    print_log(
        f'--force: moved the {len(names)} checkpoint file(s) of the earlier '
        f'run in {folder} ({_shorten(names)}) into {target}/; this run '
        'starts afresh.',
        logger='current')
    return target
