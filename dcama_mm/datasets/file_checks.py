# Copyright (c) dcama_mm contributors. All rights reserved.
"""Check up front that the files a dataset lists exist.

A missing image or mask would otherwise be found only when an episode
using it is drawn, possibly hours into a run. :func:`missing_files` lists
each folder once (one ``os.scandir`` per folder, not one ``stat`` per file),
so checking the 120k files of COCO-20i's training split takes a fraction of
a second on a local disk. Paths on other storage (``s3://...``,
``http://...``, read through mmengine's file backends) are not checked.
"""
import logging
import os
from typing import Iterable, List, Sequence, Set

from mmengine.logging import print_log

__all__ = ['missing_files', 'check_record_files']

#: What the message calls the files of each record key.
_KINDS = dict(img_path='image', seg_map_path='mask')
#: How many missing names a message shows per kind.
SHOWN = 5


def _is_local(path: str) -> bool:
    """Whether ``path`` is on the local file system (not ``scheme://``)."""
    return '://' not in path


def _folder_files(folder: str) -> Set[str]:
    """Names of the files (and links to files) in ``folder``; empty if the
    folder does not exist."""
    try:
        with os.scandir(folder or '.') as entries:
            return {entry.name for entry in entries if entry.is_file()}
    except (FileNotFoundError, NotADirectoryError):
        return set()


def missing_files(paths: Iterable[str]) -> List[str]:
    """The paths among ``paths`` that are not files, in first-seen order.

    Each folder is listed once (``os.scandir``), however many paths it
    holds; no file is opened or stat-ed one by one. Paths that are not
    local (``scheme://...``) are taken as present.

    Args:
        paths (Iterable[str]): File paths (repeats allowed).

    Returns:
        list[str]: The missing paths, each once.
    """
    unique = dict.fromkeys(paths)
    sep = os.sep
    if os.altsep:  # Windows: either separator ends the folder
        folders = {p[:max(p.rfind(sep), p.rfind(os.altsep)) + 1]
                   for p in unique}
    else:
        folders = {p[:p.rfind(sep) + 1] for p in unique}
    # the folder keeps its trailing separator: folder + name == path
    present: Set[str] = set()
    for folder in folders:
        if _is_local(folder):
            present.update(folder + n for n in _folder_files(folder))
    missing = unique.keys() - present
    if not missing:
        return []
    return [p for p in unique if p in missing and _is_local(p)]


def check_record_files(records: Sequence[dict],
                       owner: str,
                       data_root: str,
                       source: str,
                       keys: Sequence[str] = ('img_path', 'seg_map_path')
                       ) -> None:
    """Raise if a file named by the records does not exist.

    Args:
        records (Sequence[dict]): The dataset's records.
        owner (str): The dataset's class name, for the message.
        data_root (str): Its ``data_root``, for the message.
        source (str): The list/annotation file(s) the records come from,
            for the message.
        keys (Sequence[str]): The record keys holding file paths.
            Defaults to ``('img_path', 'seg_map_path')``.

    Raises:
        FileNotFoundError: Naming the data root, the list file, the number
            of missing files of each kind and the first few of them.
    """
    paths = [r[k] for r in records for k in keys if r.get(k) is not None]
    if not any(_is_local(p) for p in paths):
        if paths:
            print_log(
                f'{owner}: the files are not on a local disk; their '
                'existence is not checked up front.',
                logger='current',
                level=logging.INFO)
        return
    missing = set(missing_files(paths))
    if not missing:
        return
    parts = []
    for key in keys:
        listed = list(dict.fromkeys(r[key] for r in records
                                    if r.get(key) is not None))
        absent = [p for p in listed if p in missing]
        if absent:
            shown = ', '.join(repr(p) for p in absent[:SHOWN])
            more = ', ...' if len(absent) > SHOWN else ''
            parts.append(f'{len(absent)} of the {len(listed)} '
                         f'{_KINDS.get(key, key)}s ({shown}{more})')
    raise FileNotFoundError(
        f'{owner}: {" and ".join(parts)} listed in {source} (data_root '
        f'{data_root!r}) do not exist. Check `data_root`/`data_prefix` '
        'and the list files; re-run the dataset converter if masks are '
        'missing; or, on a file system too slow to list, turn this check '
        'off with '
        '`check_files=False` (a missing file then stops the run when its '
        'episode is drawn).')
