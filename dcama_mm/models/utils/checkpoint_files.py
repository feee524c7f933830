# Copyright (c) dcama_mm contributors. All rights reserved.
"""Reading checkpoint files with messages that say what the file is.

torch's own errors on a file that is not a checkpoint depend on the first
bytes it happens to unpickle ("unpickling stack underflow", ``KeyError:
101``, or, with ``weights_only=True``, the advice to re-run with
``weights_only=False``). :func:`not_a_checkpoint_reason` looks at the file
instead (without unpickling anything): ``torch.save`` writes a zip archive
holding ``data.pkl`` (the legacy format starts with a pickled magic number,
older ones are tar archives), so anything else is named for what it is.
"""
import codecs
import os.path as osp
import pickletools
import tarfile
import zipfile
from typing import Any, Callable, List, Optional, Union

from mmengine.runner import CheckpointLoader

from dcama_mm.utils.compat import load_local_checkpoint

__all__ = [
    'NotACheckpointError', 'not_a_checkpoint_reason', 'check_checkpoint_file',
    'read_checkpoint', 'pickled_strings'
]

_ZIP_MAGIC = b'PK\x03\x04'
#: ``pickle.dumps(torch.serialization.MAGIC_NUMBER, protocol=2)``: the start
#: of a file written with ``_use_new_zipfile_serialization=False``.
_LEGACY_MAGIC = b'\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.'


class NotACheckpointError(ValueError):
    """A file given as a checkpoint is not a (readable) PyTorch
    checkpoint."""


def _is_remote(path: str) -> bool:
    return '://' in path


def _text_start(head: bytes) -> Optional[str]:
    """The first line of ``head`` when it is text (UTF-8 without control
    characters other than white space), else None."""
    try:
        text = codecs.getincrementaldecoder('utf-8')().decode(head)
    except UnicodeDecodeError:
        return None
    if any(ord(ch) < 32 and ch not in '\t\n\r\x0c' for ch in text):
        return None
    first = text.strip().splitlines()[0] if text.strip() else ''
    return first[:40] + ('...' if len(first) > 40 else '')


def not_a_checkpoint_reason(path: str) -> Optional[str]:
    """Why the local file ``path`` cannot be a PyTorch checkpoint.

    Only the file's structure is read (zip directory, first bytes); nothing
    is unpickled.

    Args:
        path (str): An existing local file.

    Returns:
        str | None: None when the file has the layout ``torch.save`` writes
        (a complete zip archive with a ``data.pkl``, the legacy pickle
        format, or a tar archive), else what the file is instead, e.g.
        ``"a text file starting with 'hello'"``.
    """
    with open(path, 'rb') as f:
        head = f.read(256)
    if not head:
        return 'the file is empty'
    if head.startswith(_ZIP_MAGIC):
        if not zipfile.is_zipfile(path):
            return ('a truncated or damaged zip archive: its directory is '
                    'missing, e.g. the download or copy did not finish')
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if not any(name.endswith('data.pkl') for name in names):
            return (f'a zip archive of {len(names)} file(s) without the '
                    "data.pkl that torch.save writes")
        return None
    if head.startswith(_LEGACY_MAGIC) or tarfile.is_tarfile(path):
        return None
    text = _text_start(head)
    if text is not None:
        return f'a text file starting with {text!r}'
    first = ' '.join(f'{byte:02x}' for byte in head[:8])
    return (f'its first bytes are {first}, neither the zip archive '
            'torch.save writes nor its legacy format')


def check_checkpoint_file(path: str,
                          option: Optional[str] = None,
                          advice: Optional[str] = None) -> None:
    """Raise :class:`NotACheckpointError` if a local file is no checkpoint.

    Missing files and URLs are not checked here.

    Args:
        path (str): The checkpoint path.
        option (str, optional): The option that named it, put before the
            message (e.g. ``'load_from'``). Defaults to None.
        advice (str, optional): What to do, ending the message. Defaults
            to None: give a file of tools/train.py or of a converter.

    Raises:
        NotACheckpointError: ``"<path> is not a PyTorch checkpoint
            (<why>)..."``.
    """
    if _is_remote(path) or not osp.isfile(path):
        return
    reason = not_a_checkpoint_reason(path)
    if reason is not None:
        where = f'{option}: ' if option else ''
        raise NotACheckpointError(
            f'{where}{path} is not a PyTorch checkpoint ({reason}). ' +
            (advice or 'Give a .pth file written by tools/train.py (in its '
             'work dir) or by a converter in tools/model_converters/.'))


def read_checkpoint(filename: str,
                    map_location: Optional[Union[str, Callable]] = 'cpu',
                    option: Optional[str] = None,
                    mmap: bool = False) -> Any:
    """Load a checkpoint through mmengine's loaders, with clear errors.

    Every scheme of :class:`mmengine.runner.CheckpointLoader` works (local
    files, ``https://``, ``torchvision://``, ...). A local file is checked
    first (:func:`check_checkpoint_file`); an error while unpickling it is
    re-raised as :class:`NotACheckpointError` naming the file.

    Args:
        filename (str): The checkpoint.
        map_location (str | Callable, optional): As in :func:`torch.load`.
            Defaults to 'cpu'.
        option (str, optional): The option that named it, for the
            messages. Defaults to None.
        mmap (bool): Map a local zip-format file instead of reading it
            (:func:`~dcama_mm.utils.load_local_checkpoint`), for a look at
            the keys and shapes that leaves the reading to the loader that
            needs the data. Other files are read. Defaults to False.

    Returns:
        Any: The loaded object (usually a dict).

    Raises:
        FileNotFoundError: If a local file does not exist.
        NotACheckpointError: If it is not a readable PyTorch checkpoint.
    """
    local = not _is_remote(filename)
    if local:
        filename = osp.expanduser(filename)
        if not osp.isfile(filename):
            where = f'{option}: ' if option else ''
            raise FileNotFoundError(
                f'{where}the checkpoint "{filename}" does not exist.')
        check_checkpoint_file(filename, option)
    try:
        if local and mmap and zipfile.is_zipfile(filename):
            return load_local_checkpoint(
                filename, map_location=map_location, mmap=True)
        return CheckpointLoader.load_checkpoint(
            filename, map_location=map_location)
    except Exception as exc:  # torch raises many types on damaged files
        if not local:
            raise
        raise NotACheckpointError(
            f'{filename} is not a readable PyTorch checkpoint '
            f'({type(exc).__name__}: {exc}); it may be damaged: copy or '
            'download it again.') from exc


def pickled_strings(path: str, limit: int = 100000) -> List[str]:
    """The strings pickled in a ``torch.save`` zip archive, unexecuted.

    The archive's ``data.pkl`` is walked opcode by opcode with
    :mod:`pickletools` (nothing is unpickled or imported), so the key names
    of a checkpoint can be read even when it pickles objects that
    ``torch.load(weights_only=True)`` refuses.

    Args:
        path (str): A local ``torch.save`` file (zip format).
        limit (int): At most this many strings are returned. Defaults to
            100000.

    Returns:
        list[str]: The strings, in file order; empty for a file of
        another format.
    """
    if not zipfile.is_zipfile(path):
        return []
    strings: List[str] = []
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith('data.pkl')]
        if not names:
            return []
        data = archive.read(names[0])
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if isinstance(arg, str) and 'UNICODE' in opcode.name:
                strings.append(arg)
                if len(strings) >= limit:
                    break
    except ValueError:  # a damaged pickle: keep what was read
        pass
    return strings
