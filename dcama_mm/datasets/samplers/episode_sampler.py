# Copyright (c) dcama_mm contributors. All rights reserved.
"""Sampler of episode indices for the episodic few-shot datasets."""
import math
from typing import Iterator, Optional, Sized

from mmengine.dist import get_dist_info

from mmseg.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class EpisodeSampler:
    """Yield episode indices of a :class:`BaseFewShotDataset`, split over
    ranks.

    An episode is a pure function of the dataset's ``(seed, index)``, so the
    sampler only decides which indices each rank loads:

    - ``train=True``: epoch ``e`` uses the indices
      ``e * len(dataset) + i``, ``i`` in ``0..len(dataset)-1``: fresh
      episodes every epoch, reproducible from the epoch alone (resuming
      replays the same episodes).
    - ``train=False``: the indices ``0..len(dataset)-1``, every epoch.

    The indices are split across ranks as mmengine's
    ``DefaultSampler(shuffle=False, round_up=True)`` splits them
    (interleaved, the last ranks padded with the first indices), so
    mmengine's result collection restores the exact 1-process order and
    drops the padding: a test gives the same result on 1 process or N.

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
        rank, world_size = get_dist_info()
        self.rank = rank
        self.world_size = world_size
        self.dataset = dataset
        self.train = train
        self.seed = seed
        self.round_up = round_up
        self.epoch = 0
        num = len(dataset)
        if round_up:
            self.num_samples = math.ceil(num / world_size)
            self.total_size = self.num_samples * world_size
        else:
            self.num_samples = math.ceil((num - rank) / world_size)
            self.total_size = num

    def __iter__(self) -> Iterator[int]:
        """Iterate over this rank's episode indices."""
        num = len(self.dataset)
        indices = list(range(num))
        if self.round_up and self.total_size > num:
            indices = (indices * math.ceil(self.total_size / num))
            indices = indices[:self.total_size]
        indices = indices[self.rank:self.total_size:self.world_size]
        offset = self.epoch * num if self.train else 0
        return iter(offset + i for i in indices)

    def __len__(self) -> int:
        """Number of indices of this rank."""
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch (selects the episodes in training).

        Args:
            epoch (int): The epoch number.
        """
        self.epoch = epoch
