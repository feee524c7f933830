# Copyright (c) dcama_mm contributors. All rights reserved.
"""The tools' rule for the files they write: nothing a user had is
overwritten without ``--force``, and a path that cannot be written is
refused before the long work, not after it.

Used by ``tools/test.py --out``, ``tools/deployment/pytorch2onnx.py``,
``tools/infer.py --out`` / ``FewShotInferencer(out_dir=...)`` and the
``--out`` of ``tools/misc/print_config.py``,
``tools/analysis_tools/eval_n_way.py`` and ``amp_agreement.py``.
"""
import argparse
import glob
import os
import os.path as osp
from typing import Iterable, List, Optional, Sequence, TextIO


def existing_files(paths: Iterable[str]) -> List[str]:
    """The paths of ``paths`` that exist (files or folders), in order."""
    return [path for path in paths if osp.lexists(path)]


def overwrite_refusal(existing: Sequence[str],
                      what: str,
                      instead: str,
                      shown: int = 3,
                      force: str = '--force') -> str:
    """The message refusing to overwrite ``existing`` files.

    Args:
        existing (Sequence[str]): The files that exist.
        what (str): What they are, e.g. ``'Export file(s)'``.
        instead (str): The other way out, e.g. ``'choose another OUT_DIR'``.
        shown (int): How many files are named. Defaults to 3.
        force (str): The option that overwrites. Defaults to '--force'.

    Returns:
        str: ``'<what> already exist: a, b and 2 more: <instead>, or pass
        --force to overwrite them.'``
    """
    more = (f' and {len(existing) - shown} more'
            if len(existing) > shown else '')
    return (f'{what} already exist: {", ".join(existing[:shown])}{more}: '
            f'{instead}, or pass {force} to overwrite them.')


def blocking_file(folder: str) -> Optional[str]:
    """The existing file that keeps ``folder`` from being a folder: the
    path itself or the nearest existing path above it, when that is not a
    folder (``out.txt`` for ``out.txt/pred``); None when there is none."""
    path = osp.abspath(folder)
    while not osp.lexists(path):
        parent = osp.dirname(path)
        if parent == path:
            return None
        path = parent
    return None if osp.isdir(path) else path


def check_output_folder(folder: str, option: str,
                        subfolders: Sequence[str] = ()) -> None:
    """Refuse an output folder that is (or lies under) an existing file.

    Args:
        folder (str): The output folder.
        option (str): Its name in messages, e.g. ``'--out'``.
        subfolders (Sequence[str]): Sub-folders written to (``'pred'``);
            each must not be a file either. Defaults to ().

    Raises:
        NotADirectoryError: Naming the option and the file.
    """
    blocker = blocking_file(folder)
    if blocker is not None:
        raise NotADirectoryError(
            f'{option} {folder}: {blocker} is a file, not a folder; '
            f'{option} names the folder the results are written to: give '
            'a folder (new or existing).')
    for sub in filter(None, subfolders):
        path = osp.join(folder, sub)
        if osp.lexists(path) and not osp.isdir(path):
            raise NotADirectoryError(
                f'{option} {folder}: {path} is a file, not a folder, and '
                f'the results are written into {path}/: move that file '
                f'away or give another {option}.')


def check_output_file(path: str, force: bool,
                      suffix: Optional[str] = None) -> None:
    """Refuse an output file that would overwrite one (unless ``force``)
    or could not be written.

    Args:
        path (str): The file to write.
        force (bool): Whether an existing file may be overwritten.
        suffix (str, optional): The ending it must have, e.g. ``'.json'``.

    Raises:
        ValueError: A wrong ending, a folder at ``path``, or a file where
            a folder above it should be.
        FileExistsError: ``path`` exists and ``force`` is False.
    """
    if suffix is not None and not path.endswith(suffix):
        raise ValueError(f'"{path}" must be a {suffix} file name.')
    if osp.isdir(path):
        raise ValueError(f'{path} is a folder: give a file name in it, e.g. '
                         f'{osp.join(path, "metrics" + (suffix or ""))}.')
    blocker = blocking_file(osp.dirname(osp.abspath(path)))
    if blocker is not None:
        raise ValueError(f'{path} cannot be written: {blocker} is a file, '
                         'not a folder.')
    if osp.lexists(path) and not force:
        raise FileExistsError(
            f'{path} already exists: give another file name, or pass '
            '--force to overwrite it.')


def check_output_option(parser: argparse.ArgumentParser,
                        path: Optional[str],
                        force: bool,
                        suffix: Optional[str] = None,
                        option: str = '--out') -> None:
    """:func:`check_output_file` for a command-line option: a refusal is
    the parser's error (``argument --out: ...``, exit status 2), given
    before the tool does its work. Nothing to check when ``path`` is None.
    """
    if path is None:
        return
    try:
        check_output_file(path, force, suffix=suffix)
    except (ValueError, FileExistsError) as err:
        parser.error(f'argument {option}: {err}')


def open_output_file(path: str) -> TextIO:
    """Open ``path`` for writing text, making the folders above it."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    return open(path, 'w', encoding='utf-8')


def check_picture_option(parser: argparse.ArgumentParser, folder: str,
                         force: bool, option: str) -> None:
    """:func:`check_picture_folder` for a command-line option: a refusal
    is the parser's error (``argument --show-dir: ...``, exit status 2)."""
    try:
        check_picture_folder(folder, force, option)
    except (NotADirectoryError, FileExistsError) as err:
        parser.error(f'argument {option}: {err}')


def check_picture_folder(folder: str, force: bool, option: str,
                         pattern: str = 'episode_*.png') -> None:
    """Refuse a picture folder that holds pictures of an earlier run.

    The names a run writes (``episode_<index>_<class>.png``) are known
    only once its episodes are drawn, so any file matching ``pattern``
    counts: a later run would overwrite some of them and mix two runs.

    Args:
        folder (str): The folder the pictures are written to.
        force (bool): Whether earlier pictures may be overwritten.
        option (str): Its name in messages, e.g. ``'--show-dir'``.
        pattern (str): The pictures' names. Defaults to 'episode_*.png'.

    Raises:
        NotADirectoryError: ``folder`` is (or lies under) a file.
        FileExistsError: ``folder`` holds such pictures and ``force`` is
            False.
    """
    check_output_folder(folder, option)
    earlier = sorted(glob.glob(osp.join(glob.escape(folder), pattern)))
    if earlier and not force:
        raise FileExistsError(
            overwrite_refusal(
                earlier, 'Episode pictures',
                f'give another {option} (or remove them)'))
