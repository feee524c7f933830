# Copyright (c) dcama_mm contributors. All rights reserved.
"""Checkpoint files in and out of the weight converters.

The command-line converters in ``tools/model_converters/`` share these
steps: read a state dict from a released file (plain, or under ``model`` /
``state_dict``, possibly with DistributedDataParallel's ``module.`` prefix),
refuse to overwrite an existing output unless forced, and write
``dict(state_dict=..., meta=...)``, the layout mmengine's
``load_checkpoint`` reads.
"""
import argparse
import os
import os.path as osp
from collections import OrderedDict
from typing import Callable, Dict, Mapping, Optional, Tuple

import torch

from .checkpoint_files import check_checkpoint_file, pickled_strings

__all__ = [
    'converter_arg_parser', 'load_state_dict_file', 'check_output_path',
    'save_checkpoint_file', 'convert_checkpoint_file',
    'is_dcama_mm_checkpoint', 'AlreadyDCAMAMMError'
]

_WRAPPER_KEYS = ('model', 'state_dict')
_DDP_PREFIX = 'module.'


def converter_arg_parser(description: str,
                         src_help: str) -> argparse.ArgumentParser:
    """The command line of a converter: ``SRC DST [--force]``.

    Args:
        description (str): What the converter does.
        src_help (str): What ``SRC`` is.

    Returns:
        argparse.ArgumentParser: The parser.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help=src_help)
    parser.add_argument('dst', help='output checkpoint path')
    parser.add_argument(
        '--force', action='store_true', help='overwrite an existing DST')
    return parser


class AlreadyDCAMAMMError(ValueError):
    """A file given to a converter is a dcama_mm checkpoint already."""


def is_dcama_mm_checkpoint(keys) -> bool:
    """Whether state-dict keys are those of a dcama_mm ``FewShotSegmentor``
    (``backbone.*`` and ``decode_head.attentions.*``)."""
    keys = [k for k in keys if isinstance(k, str)]
    return any(k.startswith('backbone.') for k in keys) and any(
        k.startswith('decode_head.attentions.') for k in keys)


def _already_dcama_mm(path: str) -> AlreadyDCAMAMMError:
    return AlreadyDCAMAMMError(
        f'{path} is already a dcama_mm checkpoint: nothing to convert. Use '
        'it directly: tools/test.py CONFIG CHECKPOINT, tools/infer.py, '
        'init_model(CONFIG, CHECKPOINT).')


def _unreadable(path: str, exc: Exception) -> ValueError:
    """The error for a ``torch.save`` file ``weights_only`` cannot load."""
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip archive torch can list
        unsafe = []
    if unsafe and is_dcama_mm_checkpoint(pickled_strings(path)):
        return _already_dcama_mm(path)
    if unsafe:
        return ValueError(
            f'{path} pickles Python objects besides tensors (e.g. '
            f'{", ".join(unsafe[:3])}), which the converters do not load '
            '(only tensors are, weights_only=True); give the released '
            'weights file (a dict of tensors).')
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ''
    return ValueError(f'{path} is not a readable PyTorch checkpoint '
                      f'({type(exc).__name__}: {first[:200]}); it may be '
                      'damaged: download it again.')


def load_state_dict_file(path: str) -> Dict[str, torch.Tensor]:
    """Read the state dict of a checkpoint file.

    The state dict is the whole file or the dict under its ``model`` or
    ``state_dict`` key (tried in that order). When every key starts with
    ``module.`` (a model saved from ``DistributedDataParallel``), the prefix
    is removed. Only tensors and plain containers are unpickled
    (``weights_only=True``).

    Args:
        path (str): The checkpoint file.

    Returns:
        dict[str, torch.Tensor]: The state dict.

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        NotACheckpointError: If it is not a PyTorch checkpoint (a text
            file, other bytes, a truncated archive).
        AlreadyDCAMAMMError: If it is a checkpoint written by dcama_mm's
            Runner (nothing to convert).
        ValueError: If it pickles objects other than tensors, or holds no
            dict.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist: pass the path of '
                                'the downloaded checkpoint.')
    check_checkpoint_file(
        path, advice='Pass the downloaded weights file (.pth).')
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # torch raises several types here
        raise _unreadable(path, exc) from exc
    if not isinstance(ckpt, dict):
        raise ValueError(f'{path} holds a {type(ckpt).__name__}, not a state '
                         'dict.')
    for key in _WRAPPER_KEYS:
        if isinstance(ckpt.get(key), dict):
            ckpt = ckpt[key]
            break
    if ckpt and all(
            isinstance(k, str) and k.startswith(_DDP_PREFIX) for k in ckpt):
        ckpt = OrderedDict((k[len(_DDP_PREFIX):], v) for k, v in ckpt.items())
    return ckpt


def check_output_path(path: str, force: bool = False) -> None:
    """Refuse to overwrite an existing output file unless forced.

    Args:
        path (str): The output file.
        force (bool): Whether overwriting is allowed (the converters'
            ``--force``). Defaults to False.

    Raises:
        FileExistsError: If ``path`` exists and ``force`` is False.
    """
    if osp.exists(path) and not force:
        raise FileExistsError(f'{path} exists; pass --force to overwrite it.')


def save_checkpoint_file(state_dict: Mapping[str, torch.Tensor],
                         path: str,
                         meta: Optional[dict] = None) -> None:
    """Write ``dict(state_dict=..., meta=...)``, creating the folder.

    Args:
        state_dict (Mapping[str, torch.Tensor]): The weights.
        path (str): The output file.
        meta (dict, optional): Where the weights come from. Defaults to None
            (an empty dict).
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    torch.save(dict(state_dict=state_dict, meta=dict(meta or {})), path)


def convert_checkpoint_file(
    src: str,
    dst: str,
    convert: Callable[[Mapping[str, torch.Tensor]], Mapping[str,
                                                            torch.Tensor]],
    meta: Optional[dict] = None,
    force: bool = False,
    inspect: Optional[Callable[[Mapping[str, torch.Tensor]], dict]] = None
) -> Tuple[Dict[str, torch.Tensor], Mapping[str, torch.Tensor]]:
    """Read ``src``, convert its state dict and write ``dst``.

    ``dst`` is checked before ``src`` is read, and nothing is written when
    reading or converting fails.

    Args:
        src (str): The released checkpoint (see
            :func:`load_state_dict_file`).
        dst (str): The output file (see :func:`save_checkpoint_file`).
        convert (Callable): Maps the source state dict to the converted one,
            raising ``ValueError`` on a layout it does not know, e.g.
            :func:`~dcama_mm.models.utils.convert_official_swin`.
        meta (dict, optional): Stored in the output's ``meta`` after
            ``converted_from`` (the file name of ``src``). Defaults to None.
        force (bool): Whether ``dst`` may be overwritten. Defaults to False.
        inspect (Callable, optional): Called with the source state dict
            after ``convert`` accepted it; returns what to add to ``meta``
            (e.g. the detected depth) or raises ``ValueError`` (e.g. another
            depth than the user asked for). Defaults to None.

    Returns:
        tuple[dict, Mapping]: The source and the converted state dicts.

    Raises:
        FileNotFoundError: If ``src`` does not exist.
        FileExistsError: If ``dst`` exists and ``force`` is False.
        ValueError: If ``src`` is not a checkpoint or ``convert`` rejects
            it; the message starts with ``src``.
    """
    check_output_path(dst, force)
    weights = load_state_dict_file(src)
    if is_dcama_mm_checkpoint(weights):
        raise _already_dcama_mm(src)
    try:
        converted = convert(weights)
        found = inspect(weights) if inspect is not None else {}
    except ValueError as exc:
        raise ValueError(f'{src}: {exc}') from exc
    meta = {'converted_from': osp.basename(src), **(meta or {}), **found}
    save_checkpoint_file(converted, dst, meta=meta)
    return weights, converted
