# Copyright (c) dcama_mm contributors. All rights reserved.
"""Does a checkpoint fit a model? Strict loading of weights.

mmengine loads checkpoints with ``strict=False``: a checkpoint made for
another model loads "successfully", leaving most weights random, with one
log line as the only sign. Testing, inference and a backbone's pretrained
weights must instead load every weight of the model, so:

- :func:`checkpoint_fit` compares a state dict with a model after the
  model's own load-time hooks (e.g. Swin's resizing of its bias tables):
  model weights missing from the checkpoint, checkpoint keys the model does
  not have, and weights of another shape (BatchNorm's
  ``num_batches_tracked`` counters may be missing).
- :func:`check_checkpoint_fits` raises :class:`CheckpointMismatchError`
  with the checkpoint, the config and a few keys of each kind (with
  counts), plus what the checkpoint looks like (a reference DCAMA file to
  convert, backbone weights, the run that wrote it).
- :func:`load_fitting_checkpoint` reads, checks and loads strictly
  (``init_model``); :func:`check_pretrained_fits` checks a backbone's
  ``init_cfg=dict(type='Pretrained', ...)`` file.

What fits: a checkpoint written by the Runner (``state_dict`` holds every
weight of the model, the frozen backbone's included) and the output of
``tools/model_converters/dcama2mmseg.py`` (``backbone.*`` and
``decode_head.*``, all of them) under the config they were made for.
"""
import logging
import re
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import _load_checkpoint_to_model
from torch import nn

from .checkpoint_files import read_checkpoint

__all__ = [
    'CheckpointMismatchError', 'CheckpointFit', 'state_dict_of',
    'checkpoint_fit', 'check_checkpoint_fits', 'load_fitting_checkpoint',
    'check_pretrained_fits'
]

#: mmengine's default ``revise_keys``: DistributedDataParallel's prefix.
_REVISE_KEYS = ((r'^module\.', ''), )
#: Keys a model may lack in a checkpoint without harm.
_OPTIONAL = re.compile(r'(^|\.)num_batches_tracked$')
#: Keys of a reference DCAMA checkpoint (before conversion).
_REFERENCE_PREFIX = 'feature_extractor.'


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model it is loaded into."""


class CheckpointFit(NamedTuple):
    """How a state dict fits a model.

    Attributes:
        missing (list[str]): Model keys the state dict lacks.
        unexpected (list[str]): State dict keys the model does not have.
        mismatched (list[tuple]): ``(key, checkpoint shape, model shape)``.
        ignored (list[str]): Unexpected keys outside the model's modules
            (a classifier's ``fc``/``head``), when those are allowed.
        num_model_keys (int): Keys of the model's state dict.
        num_checkpoint_keys (int): Keys of the state dict.
    """
    missing: List[str]
    unexpected: List[str]
    mismatched: List[Tuple[str, Tuple[int, ...], Tuple[int, ...]]]
    ignored: List[str]
    num_model_keys: int
    num_checkpoint_keys: int

    @property
    def fits(self) -> bool:
        """Whether every model weight is loaded and nothing else is."""
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 3) -> str:
        """The counts and the first ``limit`` keys of each kind."""

        def some(keys: List[str]) -> str:
            more = ', ...' if len(keys) > limit else ''
            return ', '.join(keys[:limit]) + more

        parts = []
        if self.missing:
            parts.append(f'{len(self.missing)} of the model\'s '
                         f'{self.num_model_keys} weights are missing from '
                         f'it (e.g. {some(self.missing)})')
        if self.unexpected:
            parts.append(f'{len(self.unexpected)} of its '
                         f'{self.num_checkpoint_keys} keys are not in the '
                         f'model (e.g. {some(self.unexpected)})')
        if self.mismatched:
            shapes = [
                f'{key}: {list(ckpt)} in the file, {list(own)} in the model'
                for key, ckpt, own in self.mismatched
            ]
            verb = 'has' if len(self.mismatched) == 1 else 'have'
            parts.append(f'{len(self.mismatched)} {verb} another shape (e.g. '
                         f'{some(shapes)})')
        return '; '.join(parts) if parts else 'it fits'


def state_dict_of(checkpoint: Any) -> 'OrderedDict[str, Any]':
    """The state dict of a loaded checkpoint, as mmengine takes it.

    The ``state_dict`` entry, else the whole dict; DistributedDataParallel's
    ``module.`` prefix is removed (mmengine's default ``revise_keys``).

    Raises:
        CheckpointMismatchError: If it holds no dict of weights.
    """
    if not isinstance(checkpoint, Mapping):
        raise CheckpointMismatchError(
            f'the file holds a {type(checkpoint).__name__}, not a state dict')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, Mapping):
        raise CheckpointMismatchError(
            f'its state_dict is a {type(state_dict).__name__}, not a dict')
    revised = OrderedDict()
    for key, value in state_dict.items():
        for pattern, repl in _REVISE_KEYS:
            key = re.sub(pattern, repl, str(key))
        revised[key] = value
    return revised


def _adapted(model: nn.Module,
             state_dict: Mapping[str, Any]) -> Dict[str, Any]:
    """``state_dict`` as the model's load-time pre-hooks change it.

    The hooks (e.g. Swin's resizing of relative position bias tables, the
    dropping of buffers the model rebuilds) run on a shallow copy; a hook
    that fails on foreign weights is skipped (the shapes then tell).
    """
    adapted = dict(state_dict)
    for name, module in model.named_modules():
        prefix = f'{name}.' if name else ''
        for hook in module._load_state_dict_pre_hooks.values():
            try:
                hook(adapted, prefix, {}, True, [], [], [])
            except Exception:  # foreign weights: compare the raw shapes
                pass
    return adapted


def checkpoint_fit(model: nn.Module,
                   state_dict: Mapping[str, Any],
                   ignore_foreign: bool = False) -> CheckpointFit:
    """Compare a state dict with a model's; nothing is loaded.

    Keys of buffers the model rebuilds (non-persistent ones, e.g. Swin's
    ``relative_position_index``) are not counted as unexpected.

    Args:
        model (nn.Module): The model.
        state_dict (Mapping): The weights (keys as the model names them,
            see :func:`state_dict_of`).
        ignore_foreign (bool): Whether unexpected keys under a name the
            model has no module or weight of (a classifier's ``fc.*``,
            ``head.*``, a final ``norm3.*``) are ignored; keys under the
            model's own modules (e.g. ``layer3.6.*`` of a deeper ResNet)
            still count. Defaults to False.

    Returns:
        CheckpointFit: What is missing, unexpected and mis-shaped.
    """
    own = model.state_dict()
    adapted = _adapted(model, state_dict)
    rebuilt = {  # buffers the model computes itself, not loaded
        f'{name}.{buffer}' if name else buffer
        for name, module in model.named_modules()
        for buffer in module._non_persistent_buffers_set
    }
    tops = {name.split('.')[0] for name in own}
    tops.update(name for name, _ in model.named_children())
    missing = [
        k for k in own if k not in adapted and not _OPTIONAL.search(k)
    ]
    unexpected, ignored = [], []
    for key in adapted:
        if key in own or key in rebuilt:
            continue
        if ignore_foreign and key.split('.')[0] not in tops:
            ignored.append(key)
        else:
            unexpected.append(key)
    mismatched = []
    for key, value in adapted.items():
        if key in own and isinstance(value, torch.Tensor) and \
                value.shape != own[key].shape:
            mismatched.append((key, tuple(value.shape),
                               tuple(own[key].shape)))
    return CheckpointFit(missing, unexpected, mismatched, ignored, len(own),
                         len(state_dict))


def _layout_hint(model: nn.Module, state_dict: Mapping[str, Any],
                 meta: Mapping) -> Tuple[str, bool]:
    """What the checkpoint looks like, when that explains the mismatch.

    Returns:
        tuple[str, bool]: The hint (may be empty) and whether it says what
        to do instead (a file of another kind than the model's).
    """
    keys = list(state_dict)
    if keys and all(k.startswith(_REFERENCE_PREFIX) or k.startswith('model.')
                    for k in keys):
        return (' It is a reference DCAMA checkpoint: convert it with '
                'tools/model_converters/dcama2mmseg.py first.', True)
    tops = {name for name, _ in model.named_children()}
    if 'backbone' in tops and keys and not any(
            k.split('.')[0] in tops for k in keys):
        return (' Its keys (e.g. ' + ', '.join(keys[:2]) + ') are those '
                'of a bare backbone (e.g. torchvision/ImageNet weights), '
                'not of a DCAMA model: such weights go in '
                'model.backbone.init_cfg (converted with '
                'tools/model_converters/), and the model must be trained.',
                True)
    hints = []
    if meta.get('experiment_name'):
        hints.append(f'it was written by the run '
                     f'"{meta["experiment_name"]}" (its meta.cfg holds the '
                     'config it was trained with)')
    if meta.get('converter'):
        what = ', '.join(f'{k} {meta[k]}'
                         for k in ('arch', 'depth', 'layout') if k in meta)
        hints.append(f'it was written by {meta["converter"]}'
                     + (f' ({what})' if what else ''))
    return (' Note: ' + '; '.join(hints) + '.') if hints else '', False


def check_checkpoint_fits(model: nn.Module,
                          checkpoint: Any,
                          filename: str,
                          config: Optional[str],
                          partial: bool = False,
                          advice: Optional[str] = None) -> CheckpointFit:
    """Refuse a loaded checkpoint that does not fit ``model``.

    Args:
        model (nn.Module): The model (unwrapped).
        checkpoint (Any): The loaded checkpoint (``dict(state_dict=...,
            meta=...)`` or a bare state dict).
        filename (str): Where it was read from, for the message.
        config (str, optional): The config the model was built from, for
            the message.
        partial (bool): Only log a warning with the counts instead of
            raising (fine-tuning from part of a checkpoint). Defaults to
            False.
        advice (str, optional): What to do, ending the message. Defaults to
            None: use the config the checkpoint was made with.

    Returns:
        CheckpointFit: The comparison.

    Raises:
        CheckpointMismatchError: If it does not fit and ``partial`` is
            False.
    """
    target = f'the model of config "{config}"' if config else 'the model'
    try:
        state_dict = state_dict_of(checkpoint)
    except CheckpointMismatchError as err:
        raise CheckpointMismatchError(
            f'Checkpoint "{filename}" cannot be loaded into {target}: '
            f'{err}.') from err
    fit = checkpoint_fit(model, state_dict)
    if fit.fits:
        return fit
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else {}
    hint, foreign = _layout_hint(model, state_dict, meta if isinstance(
        meta, Mapping) else {})
    message = (f'Checkpoint "{filename}" does not fit {target}: '
               f'{fit.describe()}.{hint}')
    if partial:
        loaded = fit.num_model_keys - len(fit.missing) - len(fit.mismatched)
        print_log(
            f'{message} Loading the {loaded} entries that fit (partial '
            'loading).',
            logger='current',
            level=logging.WARNING)
        return fit
    if not foreign:
        message += ' ' + (advice or 'Use the config the checkpoint was made '
                          'with (or a checkpoint made for this config).')
    raise CheckpointMismatchError(message)


def load_fitting_checkpoint(model: nn.Module,
                            filename: str,
                            config: Optional[str] = None,
                            map_location: str = 'cpu') -> dict:
    """Read a checkpoint, refuse it unless it fits (strictly), load it.

    Args:
        model (nn.Module): The model.
        filename (str): The checkpoint (any mmengine scheme).
        config (str, optional): The config's name, for the messages.
            Defaults to None.
        map_location (str): As in :func:`torch.load`. Defaults to 'cpu'.

    Returns:
        dict: The loaded checkpoint (``meta`` etc.).

    Raises:
        FileNotFoundError: If a local file does not exist.
        NotACheckpointError: If it is not a PyTorch checkpoint.
        CheckpointMismatchError: If it does not fit the model.
    """
    checkpoint = read_checkpoint(filename, map_location=map_location)
    check_checkpoint_fits(
        model,
        checkpoint,
        filename,
        config,
        advice='Give the config the checkpoint was made with.')
    # checked above (num_batches_tracked counters may be missing)
    _load_checkpoint_to_model(
        model, checkpoint, strict=False, revise_keys=list(_REVISE_KEYS))
    return checkpoint if isinstance(checkpoint, dict) else {}


def check_pretrained_fits(module: nn.Module,
                          filename: str,
                          prefix: Optional[str] = None,
                          strict: bool = True,
                          option: str = 'init_cfg') -> CheckpointFit:
    """Check the ``Pretrained`` weights of a module before they are loaded.

    Every weight of ``module`` must be in the file with its shape, and the
    file must have no other weight under the module's own names; keys the
    module has no counterpart of at all (a classifier's ``fc``/``head``, a
    final norm) are ignored. With ``prefix`` (as in mmengine's
    ``PretrainedInit``), only the keys under it are taken, without it.

    Args:
        module (nn.Module): The module (e.g. a backbone).
        filename (str): The weights file (any mmengine scheme).
        prefix (str, optional): Take the keys under this prefix. Defaults
            to None (all keys).
        strict (bool): Raise when they do not fit; False only logs the
            counts (fine-tuning from part of them). Defaults to True.
        option (str): The config option that named the file, for the
            messages. Defaults to 'init_cfg'.

    Returns:
        CheckpointFit: The comparison.

    Raises:
        CheckpointMismatchError: If they do not fit and ``strict``.
    """
    # mapped, not read: only names and shapes are compared here, and
    # mmengine's PretrainedInit reads the file that passes
    checkpoint = read_checkpoint(filename, option=option, mmap=True)
    state_dict = state_dict_of(checkpoint)
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        state_dict = OrderedDict((k[len(prefix):], v)
                                 for k, v in state_dict.items()
                                 if k.startswith(prefix))
        if not state_dict:
            raise CheckpointMismatchError(
                f'{option}: no key of "{filename}" starts with the prefix '
                f'"{prefix}"; check the prefix.')
    fit = checkpoint_fit(module, state_dict, ignore_foreign=True)
    if fit.fits:
        return fit
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    hint, _ = _layout_hint(module, {}, meta if isinstance(meta, dict) else
                           {})
    message = (f'{option}: the weights "{filename}" do not fit '
               f'{type(module).__name__}{_arch_of(module)}: '
               f'{fit.describe()}.{hint}')
    if not strict:
        print_log(
            f'{message} Loading the part that fits (strict=False).',
            logger='current',
            level=logging.WARNING)
        return fit
    raise CheckpointMismatchError(
        message + ' Convert the weights of the architecture the config '
        'names (tools/model_converters/ prints what it converts), or, to '
        'fine-tune from the part that fits, pass --load-partial to '
        "tools/train.py (or set strict=False in this init_cfg).")


def _arch_of(module: nn.Module) -> str:
    """`` (depth 50)`` / `` (embed_dims 128, depths (2, 2, 18, 2))``."""
    if isinstance(getattr(module, 'depth', None), int):
        return f' (depth {module.depth})'
    if hasattr(module, 'embed_dims') and hasattr(module, 'depths'):
        return (f' (embed_dims {module.embed_dims}, depths '
                f'{tuple(module.depths)})')
    return ''
