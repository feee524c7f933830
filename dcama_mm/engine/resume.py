# Copyright (c) dcama_mm contributors. All rights reserved.
"""Which checkpoint ``--resume`` continues from, decided before the Runner.

mmengine's Runner resolves ``resume=True`` only once everything is built,
trusts ``last_checkpoint`` blindly (a truncated file ends in a raw
traceback; a missing one logs "Auto resumed from the latest checkpoint
None" and trains from scratch). :func:`resolve_resume` decides first:

- ``--resume`` (auto): the checkpoint ``last_checkpoint`` names if it is
  intact, else the newest intact ``epoch_*.pth`` / ``iter_*.pth`` of the
  work directory (saying which one was skipped and why), else nothing:
  the run starts from scratch and says so plainly;
- ``--resume PATH``: that file, which must be intact, or a
  :class:`BadCheckpointError` naming it.

Either way the checkpoint must hold its optimizer state: ``best_*.pth``
(and every checkpoint of a run saved with ``save_optimizer=False``) has
none, and mmengine would resume it with a fresh optimizer and schedule
without a word; such a checkpoint is refused, with ``load_from`` offered
for starting a new run from its weights.

The check (:func:`checkpoint_problem`) is cheap: a checkpoint written by
``torch.save`` is a zip archive, so its CRCs are verified and its pickled
part is read with the tensors memory-mapped, not loaded.
"""
import glob
import os.path as osp
import re
import zipfile
from typing import List, Optional, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from ..utils.compat import load_local_checkpoint
from .work_dirs import LAST_CHECKPOINT, checkpoint_dir, launcher_rank

__all__ = [
    'BadCheckpointError', 'NO_OPTIMIZER', 'checkpoint_problem',
    'resume_candidates', 'find_resume_checkpoint', 'resolve_resume'
]

#: Checkpoints a run can continue from (``best_*`` ones hold no optimizer).
_RESUMABLE = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


#: The problem of a checkpoint saved without its optimizer state. mmengine
#: would resume its weights and epoch with a fresh optimizer (and, for
#: best_*.pth, a fresh learning-rate schedule) without a word, so it is
#: refused, not skipped: a run saved with ``save_optimizer=False`` has no
#: checkpoint with it, and skipping them all would train from scratch.
NO_OPTIMIZER = (
    'holds no optimizer state (mmengine saves best_*.pth without it, and '
    'every checkpoint of a run with default_hooks.checkpoint.'
    'save_optimizer=False)')


def _no_optimizer_problem(checkpoint: dict) -> str:
    """:data:`NO_OPTIMIZER` and what resuming would lose."""
    lost = ('a fresh optimizer' if 'param_schedulers' in checkpoint else
            'a fresh optimizer and learning-rate schedule')
    return f'{NO_OPTIMIZER}: resuming from it would go on with {lost}'


class BadCheckpointError(ValueError):
    """A checkpoint to resume from is missing, truncated or unreadable,
    or holds no optimizer state."""


def _no_optimizer_error(path: str, what: str,
                        problem: str) -> BadCheckpointError:
    """The error for a checkpoint to resume that has no optimizer."""
    return BadCheckpointError(
        f'{what} {problem}. Resume from a checkpoint '
        'saved with it (an epoch_*.pth / iter_*.pth of a run that saves the '
        'optimizer), or start a new run from its weights: '
        f'--cfg-options load_from={path} without --resume (there is no '
        'option to resume without the optimizer state).')


def _zip_problem(path: str) -> Optional[str]:
    """What is wrong with a zip-format (torch >= 1.6) checkpoint, if any."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        return ('is truncated or corrupt (its zip archive cannot be read: '
                f'{err}); it was probably cut short while it was written')
    if bad is not None:
        return f'is corrupt (the entry {bad} fails its CRC check)'
    if not any(name.endswith('/data.pkl') or name == 'data.pkl'
               for name in names):
        return 'is a zip archive but not a PyTorch checkpoint (no data.pkl)'
    return None


def _content_problem(path: str) -> Tuple[Optional[str], dict]:
    """What keeps the checkpoint's content from being resumed, if any,
    and its ``meta``."""
    try:
        checkpoint = load_local_checkpoint(
            path, map_location='cpu', mmap=zipfile.is_zipfile(path))
    except Exception as err:  # noqa: BLE001 (any unpickling error)
        return (f'cannot be read by torch.load ({type(err).__name__}: '
                f'{err})'), {}
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        return 'is not a training checkpoint (no "state_dict")', {}
    meta = checkpoint.get('meta') or {}
    if 'epoch' not in meta or 'iter' not in meta:
        return ('is not a training checkpoint of mmengine (its "meta" has no '
                'epoch / iter)'), meta
    if 'optimizer' not in checkpoint:
        return _no_optimizer_problem(checkpoint), meta
    return None, meta


def _examine(path: str) -> Tuple[Optional[str], dict]:
    """:func:`checkpoint_problem` and the checkpoint's ``meta`` (``{}``
    when it cannot be read), from one read of the file."""
    if not osp.isfile(path):
        return 'does not exist', {}
    if osp.getsize(path) == 0:
        return 'is empty (0 bytes)', {}
    with open(path, 'rb') as f:
        head = f.read(4)
    if head.startswith(b'PK'):
        problem = _zip_problem(path)
        if problem is not None:
            return problem, {}
    elif not head.startswith(b'\x80'):
        return ('is not a PyTorch checkpoint (neither a zip archive nor a '
                'pickle)'), {}
    return _content_problem(path)


def checkpoint_problem(path: str) -> Optional[str]:
    """What is wrong with ``path`` as a checkpoint to resume, if anything.

    Args:
        path (str): A local checkpoint file.

    Returns:
        str, optional: None when the file is intact, else the reason
        (worded to follow the file's name); for an intact checkpoint
        without optimizer state it starts with :data:`NO_OPTIMIZER`.
    """
    return _examine(path)[0]


def _last_checkpoint_target(folder: str) -> Optional[str]:
    """The path ``folder/last_checkpoint`` names, if the file exists."""
    pointer = osp.join(folder, LAST_CHECKPOINT)
    if not osp.isfile(pointer):
        return None
    with open(pointer) as f:
        target = f.read().strip()
    return target or None


def resume_candidates(folder: str) -> List[str]:
    """The checkpoints of ``folder`` to resume from, best first.

    The one ``last_checkpoint`` names, then the ``epoch_*.pth`` /
    ``iter_*.pth`` files, highest number first.
    """
    numbered: List[Tuple[int, str]] = []
    for path in glob.glob(osp.join(folder, '*.pth')):
        match = _RESUMABLE.match(osp.basename(path))
        if match:
            numbered.append((int(match.group(2)), path))
    candidates = [path for _, path in sorted(numbered, reverse=True)]
    last = _last_checkpoint_target(folder)
    if last is not None:
        candidates = [last] + [
            p for p in candidates
            if osp.abspath(p) != osp.abspath(last)
        ]
    return candidates


def find_resume_checkpoint(folder: str
                           ) -> Tuple[Optional[str], List[Tuple[str, str]]]:
    """The newest intact checkpoint of ``folder`` and the ones skipped.

    Returns:
        tuple: The checkpoint (None when there is none) and the
        ``(path, problem)`` pairs of the candidates skipped before it.

    Raises:
        BadCheckpointError: When the newest intact candidate holds no
            optimizer state.
    """
    found, _, skipped = _find(folder)
    return found, skipped


def _find(folder: str
          ) -> Tuple[Optional[str], dict, List[Tuple[str, str]]]:
    """:func:`find_resume_checkpoint`, with the found checkpoint's
    ``meta``."""
    skipped: List[Tuple[str, str]] = []
    for path in resume_candidates(folder):
        problem, meta = _examine(path)
        if problem is None:
            return path, meta, skipped
        if problem.startswith(NO_OPTIMIZER):
            raise _no_optimizer_error(
                path, f'--resume: the latest intact checkpoint {path}',
                problem)
        skipped.append((path, problem))
    return None, {}, skipped


def _say_if_finished(cfg: Config, path: str, meta: dict) -> None:
    """Warn when ``path`` (its ``meta``) already ends the schedule of
    ``cfg.train_cfg`` (mmengine then trains nothing and logs only "Training
    finished")."""
    loop = cfg.get('train_cfg') or {}
    for key, done in (('max_epochs', 'epoch'), ('max_iters', 'iter')):
        if key in loop and done in meta and meta[done] >= loop[key]:
            _say(f'--resume: {path} ends {done} {meta[done]} of '
                 f'train_cfg.{key}={loop[key]}: the run is complete and '
                 f'nothing will be trained (raise train_cfg.{key} to train '
                 'on).', warning=True)
            return


def _say(message: str, warning: bool = False) -> None:
    """Log ``message`` once (on the launcher's rank 0)."""
    if launcher_rank() == 0:
        print_log(message, logger='current', level=30 if warning else 20)


def resolve_resume(cfg: Config, resume: Optional[str]) -> Optional[str]:
    """Decide what ``--resume`` continues from and set ``cfg`` accordingly.

    Sets ``cfg.resume`` / ``cfg.load_from`` to an explicit, checked
    checkpoint (so the Runner never searches itself), or, when an automatic
    resume finds nothing, ``cfg.resume = False``: training starts from
    scratch, and the log says so.

    Args:
        cfg (Config): The config, ``work_dir`` set.
        resume (str, optional): ``--resume``: None (no resume), ``'auto'``
            or a checkpoint path.

    Returns:
        str, optional: The checkpoint the run resumes from.

    Raises:
        BadCheckpointError: When an explicit ``--resume PATH`` is missing,
            truncated or unreadable, or when the checkpoint to resume from
            holds no optimizer state.
    """
    if resume is None:
        return None
    if resume != 'auto':
        problem, meta = _examine(resume)
        if problem is not None and problem.startswith(NO_OPTIMIZER):
            raise _no_optimizer_error(
                resume, f'--resume {resume}: the checkpoint', problem)
        if problem is not None:
            raise BadCheckpointError(
                f'--resume {resume}: the checkpoint {problem}. Give an intact '
                'checkpoint, or --resume without a path to continue from the '
                'newest intact checkpoint of the work directory.')
        cfg.resume, cfg.load_from = True, resume
        _say(f'Resuming from {resume} (--resume).')
        _say_if_finished(cfg, resume, meta)
        return resume
    folder = checkpoint_dir(cfg)
    found, meta, skipped = _find(folder)
    for path, problem in skipped:
        _say(f'--resume: skipping {path}: the checkpoint {problem}.',
             warning=True)
    if found is None:
        cfg.resume, cfg.load_from = False, None
        what = ('no intact checkpoint' if skipped else 'no checkpoint')
        _say(f'--resume: found {what} to resume from in {folder}: training '
             'starts from scratch.', warning=True)
        return None
    cfg.resume, cfg.load_from = True, found
    if skipped:
        _say(f'--resume: resuming from the newest intact checkpoint {found} '
             f'instead (what the skipped epochs trained is redone).',
             warning=True)
    else:
        _say(f'--resume: resuming from the latest checkpoint {found}.')
    _say_if_finished(cfg, found, meta)
    return found
