# Copyright (c) dcama_mm contributors. All rights reserved.
"""``randomness``, mmengine's seed settings, checked before the Runner.

The Runner passes ``randomness`` to :func:`mmengine.runner.set_random_seed`,
which hands the seed to numpy: ``--cfg-options randomness.seed=x`` ended
in numpy's ``TypeError: Cannot cast scalar from dtype('<U1') ...`` while
the Runner was being built, and a key typo in torch's argument error. Here
both are refused with the config checks, naming the option.
"""
import inspect

from mmengine.config import Config
from mmengine.runner import set_random_seed

from ..utils.checks import check_keys

#: numpy's seeds are 32-bit.
SEED_LIMIT = 2**32
_BOOL_KEYS = ('deterministic', 'diff_rank_seed')


def check_randomness(cfg: Config) -> None:
    """Refuse an unknown key or a bad value in ``cfg.randomness``.

    ``seed`` must be None (a random seed, logged by mmengine) or an
    integer in ``[0, 2**32)``; ``deterministic`` and ``diff_rank_seed``
    True or False.

    Args:
        cfg (Config): The full config, after ``--cfg-options``.

    Raises:
        UnknownOptionError: On a key ``set_random_seed`` does not take.
        ValueError: On a bad value, naming the option.
    """
    randomness = cfg.get('randomness')
    if not isinstance(randomness, dict):
        return
    check_keys('randomness', 'key', randomness,
               inspect.signature(set_random_seed).parameters)
    seed = randomness.get('seed')
    if seed is not None and (isinstance(seed, bool)
                             or not isinstance(seed, int)
                             or not 0 <= seed < SEED_LIMIT):
        raise ValueError(
            f'randomness.seed: {seed!r} is not an integer in [0, 2**32): '
            'give one (e.g. --cfg-options randomness.seed=0), or None for '
            'a random seed.')
    for key in _BOOL_KEYS:
        value = randomness.get(key, False)
        if not isinstance(value, bool):
            raise ValueError(
                f'randomness.{key}: {value!r} is not True or False (e.g. '
                f'--cfg-options randomness.{key}=True).')


__all__ = ['SEED_LIMIT', 'check_randomness']
