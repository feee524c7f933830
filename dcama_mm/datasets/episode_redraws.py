# Copyright (c) dcama_mm contributors. All rights reserved.
"""Training episodes whose files cannot be read are redrawn
(``max_redraws``), deterministically."""
import logging
import warnings
from typing import Optional

import numpy as np
from mmengine.dist import get_rank
from mmengine.logging import print_log

from .episode_schemes import EpisodeSchemesMixin
from .transforms.load_episode import LoadEpisode

#: Third entry of the redraw generators' seed, so that the redraws of
#: episode ``i`` never share a generator with an episode.
REDRAW_TAG = 0x5EDA


class _UnreadableEpisode(Exception):
    """A file-loading transform of the pipeline failed (wraps its error)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _warn(message: str) -> None:
    """Log a warning on rank 0; elsewhere, where mmengine's logger shows
    errors only, through :mod:`warnings` (printed to stderr)."""
    if get_rank() == 0:
        print_log(message, logger='current', level=logging.WARNING)
    else:
        warnings.warn(message, UserWarning, stacklevel=3)


def check_max_redraws(max_redraws: int, test_mode: bool, owner: str) -> int:
    """Check the ``max_redraws`` option of a dataset.

    Args:
        max_redraws (int): Substitute episodes tried per unreadable episode.
        test_mode (bool): Whether the dataset is a test/validation one.
        owner (str): The dataset's class name, for messages.

    Returns:
        int: ``max_redraws``.
    """
    if isinstance(max_redraws, bool) or not isinstance(
            max_redraws, int) or max_redraws < 0:
        raise ValueError(
            f'{owner}: `max_redraws` must be an integer >= 0 (0: an '
            'unreadable file stops the run), but got '
            f'{max_redraws!r}.')
    if max_redraws and test_mode:
        raise ValueError(
            f'{owner}: `max_redraws={max_redraws}` is for training; a test '
            'or validation set must load its own episodes (an unreadable '
            'file stops it, naming the file). Set max_redraws=0 here.')
    return max_redraws


class EpisodeRedrawMixin:
    """Load an episode, redrawing it while its files cannot be read.

    With ``max_redraws = n > 0`` (training only) an episode whose images or
    masks cannot be read by the pipeline's
    :class:`~dcama_mm.datasets.transforms.LoadEpisode` (missing, corrupt,
    undecodable, a mask of another size than its image) is replaced by a
    class-uniform episode drawn with
    ``numpy.random.default_rng([seed, index, REDRAW_TAG, r])`` for the
    ``r``-th redraw, ``r = 1..n``: a pure function of ``(seed, index)``, so
    a resumed run, any number of data workers and any number of processes
    see the same substitute episodes. Each redraw logs a warning naming the
    file and the number of episodes redrawn so far by this process (a data
    worker counts its own); ``num_redrawn`` holds that count. After ``n``
    failed redraws the error names the episode and the last file. Errors of
    other transforms are never redrawn.

    Used by :class:`~dcama_mm.datasets.BaseFewShotDataset`, which provides
    ``seed``, ``pipeline``, ``max_redraws`` and ``describe_episode``.
    """

    num_redrawn: int = 0

    def redraw_episode_info(self, index: int, redraw: int) -> dict:
        """The ``redraw``-th substitute of episode ``index``.

        Args:
            index (int): The episode index.
            redraw (int): 1 for the first substitute, 2 for the next, ...

        Returns:
            dict: As :meth:`get_episode_info`, with ``redraw`` set.
        """
        rng = np.random.default_rng([self.seed, index, REDRAW_TAG, redraw])
        class_id, query_id, support_ids = EpisodeSchemesMixin.sample_episode(
            self, rng, index)
        info = self.describe_episode(index, class_id, query_id, support_ids)
        info['redraw'] = redraw
        return info

    def _apply_pipeline(self, info: dict) -> Optional[dict]:
        """Run the pipeline; the errors of its loading transforms come out
        as :class:`_UnreadableEpisode`."""
        data = info
        for transform in self.pipeline.transforms:
            try:
                data = transform(data)
            except (OSError, ValueError) as err:
                if isinstance(transform, LoadEpisode):
                    raise _UnreadableEpisode(err) from err
                raise
            if data is None:
                return None
        return data

    def load_with_redraws(self, info: dict, index: int) -> Optional[dict]:
        """Run the pipeline on episode ``index`` (described by ``info``),
        redrawing it up to ``max_redraws`` times (see the class doc).

        Args:
            info (dict): :meth:`get_episode_info` of ``index``.
            index (int): The episode index.

        Returns:
            dict | None: The pipeline's output.
        """
        owner = type(self).__name__
        for redraw in range(1, self.max_redraws + 2):
            try:
                return self._apply_pipeline(info)
            except _UnreadableEpisode as unreadable:
                err = unreadable.error
            if redraw > self.max_redraws:
                kind = next(k for k in (FileNotFoundError, OSError,
                                        ValueError) if isinstance(err, k))
                raise kind(
                    f'{owner}: episode {index} and its {self.max_redraws} '
                    f'redraw(s) cannot be loaded; the last error: {err} '
                    '(too many unreadable files: fix or remove them; '
                    '`max_redraws` sets how many substitutes are '
                    'tried).') from err
            self.num_redrawn += 1
            _warn(f'{owner}: episode {index} cannot be loaded ({err}); '
                  f'drawing substitute {redraw} of at most '
                  f'{self.max_redraws}. Episodes redrawn by this process so '
                  f'far: {self.num_redrawn}.')
            info = self.redraw_episode_info(index, redraw)
        raise AssertionError('unreachable')  # pragma: no cover
