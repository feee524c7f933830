"""EpisodeSampler: mmengine's DefaultSampler split, episode offsets."""
from contextlib import contextmanager

import numpy as np
import pytest
from mmengine.dataset import DefaultSampler, sampler
from mmseg.registry import DATA_SAMPLERS

from dcama_mm.datasets import EpisodeSampler


class _Sized:

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


@contextmanager
def _dist_info(rank, world):
    """Make mmengine's samplers see ``rank`` of ``world`` processes."""
    orig = sampler.get_dist_info
    sampler.get_dist_info = lambda: (rank, world)
    try:
        yield
    finally:
        sampler.get_dist_info = orig


@pytest.mark.parametrize('round_up', [True, False])
@pytest.mark.parametrize('n,world', [(1, 1), (5, 1), (7, 2), (10, 3),
                                     (4, 4), (3, 5)])
def test_indices_are_default_samplers_plus_epoch_offset(n, world, round_up):
    for rank in range(world):
        with _dist_info(rank, world):
            reference = DefaultSampler(
                _Sized(n), shuffle=False, seed=0, round_up=round_up)
            test = EpisodeSampler(_Sized(n), round_up=round_up)
            train = EpisodeSampler(_Sized(n), train=True, round_up=round_up)
        expected = list(reference)
        assert len(test) == len(train) == len(reference) == len(expected)
        for epoch in range(3):
            test.set_epoch(epoch)
            train.set_epoch(epoch)
            assert list(test) == expected
            assert list(train) == [epoch * n + i for i in expected]


def test_is_a_default_sampler_built_from_the_registry():
    built = DATA_SAMPLERS.build(
        dict(type='EpisodeSampler', dataset=_Sized(3), train=True, seed=7))
    assert isinstance(built, EpisodeSampler)
    assert isinstance(built, DefaultSampler)
    assert not built.shuffle
    assert built.seed == 7 and built.train
    built.set_epoch(1)
    assert list(built) == [3, 4, 5]


def test_no_seed_draws_nothing():
    state = np.random.get_state()
    s = EpisodeSampler(_Sized(4))
    assert s.seed is None
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1])
    assert list(s) == [0, 1, 2, 3]
