# Copyright (c) dcama_mm contributors. All rights reserved.
"""Save and restore the random states with each checkpoint.

mmengine's checkpoints hold the seed but not the random generators' states,
so a resumed run draws other dropout masks (and, e.g., other data-loader
base seeds) than the run it continues: its weights drift away from those of
an uninterrupted run. :class:`RandomStateHook` stores, per rank, the states
of torch (CPU, and the current CUDA device when CUDA is in use), numpy's
global generator and Python's ``random`` in ``checkpoint['meta']
['random_states']`` and restores them when training resumes, so that on
the CPU a resumed run equals an uninterrupted one bit for bit.
"""
import random
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_dist_info, is_distributed
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmseg.registry import HOOKS

__all__ = ['RandomStateHook', 'capture_random_state', 'restore_random_state']

RandomState = Dict[str, Any]


def capture_random_state() -> RandomState:
    """The states of torch, CUDA (if in use), numpy and Python ``random``.

    Only tensors and plain Python values, so that a checkpoint holding it
    still loads with ``torch.load(weights_only=True)``.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: RandomState = dict(
        torch=torch.get_rng_state(),
        numpy=dict(
            kind=str(kind),
            keys=torch.from_numpy(keys.astype(np.int64)),
            pos=int(pos),
            has_gauss=int(has_gauss),
            cached_gaussian=float(cached)),
        python=random.getstate())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state()
    return state


def restore_random_state(state: RandomState) -> None:
    """Set the generators to ``state`` (from :func:`capture_random_state`).

    The tensors are brought to the CPU first: mmengine's resume loads a
    checkpoint onto the training device (``map_location=get_device()``).
    """
    torch.set_rng_state(state['torch'].cpu())
    numpy = state['numpy']
    np.random.set_state(
        (numpy['kind'], numpy['keys'].cpu().numpy().astype(np.uint32),
         numpy['pos'], numpy['has_gauss'], numpy['cached_gaussian']))
    version, internal, gauss_next = state['python']
    random.setstate((version, tuple(internal), gauss_next))
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state['cuda'].cpu())


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Keep the random states in the checkpoints; restore them on resume.

    - ``after_train_epoch`` (before the ``CheckpointHook``, which has
      priority ``VERY_LOW``): the state of every rank at the end of the
      epoch's training is recorded (gathered on rank 0 in distributed runs,
      where only rank 0 writes checkpoints).
    - ``before_save_checkpoint``: that list, one state per rank, goes into
      ``checkpoint['meta']['random_states']`` (also in the best-checkpoint,
      saved after validation: it is the state training goes on from).
    - ``after_val``: validation during training is fenced off: the states
      are set back to the end-of-epoch ones, so that training continues
      from exactly the states the checkpoint holds (the validation loop
      draws from torch's generator too, e.g. for its data loader's base
      seed), with or without an interruption.
    - ``after_load_checkpoint`` when resuming: this rank's state is kept and
      set at ``before_train_epoch``, after everything the Runner does
      between loading and training (it re-seeds when the checkpoint's seed
      differs from the config's).

    The data-loader worker processes are seeded by mmengine's
    ``worker_init_fn`` from the seed, rank and worker id alone, and the
    episodes are a pure function of ``(seed, epoch, index)``
    (``EpisodeSampler``), so they need no state of their own.

    Iteration-based checkpoints (``CheckpointHook(by_epoch=False)``) get
    the state of the last training iteration; in distributed runs that is
    gathered at the iterations where such a checkpoint is saved.
    """

    priority = 'LOW'

    def __init__(self) -> None:
        self._state: Optional[RandomState] = None
        self._states: Optional[List[RandomState]] = None
        self._pending: Optional[RandomState] = None

    # ----- recording -------------------------------------------------
    def _record(self, gather: bool) -> None:
        self._state = capture_random_state()
        if gather and is_distributed():
            self._states = all_gather_object(self._state)
        elif not is_distributed():
            self._states = [self._state]

    def _iter_checkpoint_now(self, runner) -> bool:
        """Whether an iteration-based CheckpointHook saves after this iter."""
        for hook in runner.hooks:
            if type(hook).__name__ != 'CheckpointHook' or hook.by_epoch:
                continue
            if (hook.every_n_train_iters(runner, hook.interval,
                                         hook.save_begin)
                    or (hook.save_last and hook.is_last_train_iter(runner))):
                return True
        return False

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Any = None,
                         outputs: Any = None) -> None:
        """Record the state after each iteration (no collective unless an
        iteration-based checkpoint is saved now)."""
        self._record(gather=is_distributed()
                     and self._iter_checkpoint_now(runner))

    def after_train_epoch(self, runner) -> None:
        """Record (and gather) the end-of-epoch state of every rank."""
        self._record(gather=True)

    def after_val(self, runner) -> None:
        """Undo validation's draws: training goes on from the saved state."""
        if self._state is not None:
            restore_random_state(self._state)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Store one state per rank in ``checkpoint['meta']``."""
        states = self._states
        if states is None:
            states = [capture_random_state()]
        checkpoint.setdefault('meta', {})['random_states'] = states

    # ----- restoring -------------------------------------------------
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """When resuming, keep this rank's state for ``before_train_epoch``.
        """
        if not getattr(runner, '_resume', False):
            return  # load_from (fine-tuning, testing): a run of its own
        states = (checkpoint.get('meta') or {}).get('random_states')
        rank, world_size = get_dist_info()
        if not states:
            print_log(
                'The checkpoint holds no random states (saved without '
                'RandomStateHook): the resumed run draws other dropout masks '
                'than an uninterrupted one would.',
                logger='current',
                level=30)
            return
        if len(states) != world_size:
            print_log(
                f'The checkpoint holds the random states of {len(states)} '
                f'processes, this run has {world_size}: process {rank} takes '
                f'those of process {rank % len(states)} (the run is not the '
                'one an uninterrupted run would give).',
                logger='current',
                level=30)
        self._pending = states[rank % len(states)]

    def before_train_epoch(self, runner) -> None:
        """Set the resumed state before the first epoch draws anything."""
        if self._pending is None:
            return
        restore_random_state(self._pending)
        self._state, self._pending = self._pending, None
        print_log(
            'Restored the random states of torch, numpy and random from the '
            'checkpoint.',
            logger='current')
