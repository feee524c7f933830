# Copyright (c) dcama_mm contributors. All rights reserved.
"""Strict checkpoint loading in mmengine's Runner.

The Runner loads ``load_from`` (and ``--resume`` checkpoints) with
``strict=False``. :class:`CheckpointFitHook` checks the loaded checkpoint
in ``after_load_checkpoint``, i.e. after the file is read and before any
weight is copied into the model or any episode is run, and refuses one that
does not fit the model (:mod:`dcama_mm.models.utils.checkpoint_checks`).
``tools/test.py`` and ``tools/train.py`` add it with
:func:`configure_checkpoint_loading`.
"""
from typing import Any, Iterator, List, Optional

from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmseg.registry import HOOKS
from ...models.utils.checkpoint_checks import check_checkpoint_fits

__all__ = ['CheckpointFitHook', 'configure_checkpoint_loading']

_TEST_ADVICE = ('Test it with the config it was trained with (or a '
                'checkpoint made for this config).')
_TRAIN_ADVICE = ('Use the config it was made with, or, to fine-tune from the '
                 'weights of it that fit, pass --load-partial to '
                 'tools/train.py (config: load_partial = True).')


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Refuse a checkpoint that does not fit the model, before loading it.

    Args:
        partial (bool): Allow a checkpoint that fits only in part (logs the
            counts of missing / unexpected / mis-shaped weights): fine-tuning
            from part of a checkpoint. Defaults to False.
        advice (str, optional): What the error tells the user to do.
            Defaults to None: the training advice (``--load-partial``).
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 partial: bool = False,
                 advice: Optional[str] = None) -> None:
        self.partial = partial
        self.advice = advice or _TRAIN_ADVICE

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Check ``checkpoint`` against the runner's (unwrapped) model.

        Raises:
            CheckpointMismatchError: If it does not fit and ``partial`` is
                False.
        """
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        # mmengine keeps the path privately; auto-resume finds it itself
        filename = getattr(runner, '_load_from', None) or (
            f'the latest checkpoint of {runner.work_dir}')
        check_checkpoint_fits(
            model,
            checkpoint,
            filename,
            getattr(runner.cfg, 'filename', None),
            partial=self.partial,
            advice=self.advice)


def _pretrained_cfgs(cfg: Any) -> Iterator[dict]:
    """Every ``init_cfg`` entry of type ``Pretrained`` under ``cfg``."""
    if isinstance(cfg, dict):
        if cfg.get('type') == 'Pretrained':
            yield cfg
        for value in cfg.values():
            yield from _pretrained_cfgs(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            yield from _pretrained_cfgs(value)


def configure_checkpoint_loading(cfg: Config,
                                 testing: bool = False,
                                 partial: bool = False) -> None:
    """Make the Runner of ``cfg`` load checkpoints strictly (in place).

    Adds :class:`CheckpointFitHook` to ``custom_hooks`` (once). For
    training, ``partial`` (``tools/train.py --load-partial``) or the
    config's ``load_partial = True`` allow fine-tuning from part of a
    checkpoint: ``load_from`` may then fit partly and the backbone's
    ``Pretrained`` ``init_cfg`` files get ``strict=False`` (read by
    ``FrozenBackboneMixin``; mmengine's ``PretrainedInit`` elsewhere takes
    no ``strict`` and loads non-strictly anyway). Testing is
    always strict.

    Args:
        cfg (Config): The tool's config.
        testing (bool): Whether the Runner tests (always strict). Defaults
            to False.
        partial (bool): Allow partial loading in training. Defaults to
            False.
    """
    partial = not testing and (partial or bool(cfg.get('load_partial')))
    if partial:
        cfg.load_partial = True
        backbone = (cfg.get('model') or {}).get('backbone')
        for init_cfg in _pretrained_cfgs(backbone):
            init_cfg['strict'] = False
    hooks: List = list(cfg.get('custom_hooks') or [])
    hooks = [h for h in hooks if not (isinstance(h, dict) and h.get(
        'type') in ('CheckpointFitHook', CheckpointFitHook))]
    hooks.append(
        dict(
            type='CheckpointFitHook',
            partial=partial,
            advice=_TEST_ADVICE if testing else None))
    cfg.custom_hooks = hooks
