# Copyright (c) dcama_mm contributors. All rights reserved.
"""Sampler of episode indices for the episodic few-shot datasets."""
from typing import Iterator, Optional, Sized

from mmengine.dataset import DefaultSampler

from mmseg.registry import DATA_SAMPLERS
from ...utils.checks import strict_arguments


@DATA_SAMPLERS.register_module()
@strict_arguments
class EpisodeSampler(DefaultSampler):
    """Yield episode indices of a :class:`BaseFewShotDataset`, split over
    ranks.

    An episode is a pure function of the dataset's ``(seed, index)``, so the
    sampler only decides which indices each rank loads:

    - ``train=True``: epoch ``e`` uses the indices
      ``e * len(dataset) + i``, ``i`` in ``0..len(dataset)-1``: fresh
      episodes every epoch, reproducible from the epoch alone (resuming
      replays the same episodes).
    - ``train=False``: the indices ``0..len(dataset)-1``, every epoch.

    The indices ``i`` are those of mmengine's
    ``DefaultSampler(shuffle=False, round_up=round_up)`` (interleaved over
    the ranks, the last ranks padded with the first indices), so mmengine's
    result collection restores the exact 1-process order and drops the
    padding: a test gives the same result on 1 process or N.

    Args:
        dataset (Sized): The episodic dataset.
        train (bool): Whether to draw new episodes each epoch.
            Defaults to False.
        seed (int, optional): Passed by mmengine's Runner; unused, the
            episodes depend on the dataset's own ``seed``. Defaults to None.
        round_up (bool): Whether to pad so that every rank has the same
            number of indices. Defaults to True.
    """

    def __init__(self,
                 dataset: Sized,
                 train: bool = False,
                 seed: Optional[int] = None,
                 round_up: bool = True) -> None:
        # Without shuffling the seed is unused; a given one keeps
        # DefaultSampler from drawing (and broadcasting) a random seed.
        super().__init__(
            dataset,
            shuffle=False,
            seed=0 if seed is None else seed,
            round_up=round_up)
        self.seed = seed
        self.train = train

    def global_position(self, position: int) -> Optional[int]:
        """Where this rank's ``position``-th index of an epoch stands in the
        1-process order.

        Args:
            position (int): 0 for the first index this rank yields in an
                epoch, 1 for the next, ...

        Returns:
            int | None: The position ``i`` in ``0..len(dataset)-1`` (in
            testing, the episode index), or None for a padding index (a
            repeat of an episode another rank loads, dropped by mmengine's
            result collection).
        """
        pos = self.rank + int(position) * self.world_size
        return pos if pos < len(self.dataset) else None

    def __iter__(self) -> Iterator[int]:
        """Iterate over this rank's episode indices of the current epoch."""
        offset = self.epoch * len(self.dataset) if self.train else 0
        return (offset + i for i in super().__iter__())
