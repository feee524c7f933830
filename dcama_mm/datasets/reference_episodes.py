# Copyright (c) dcama_mm contributors. All rights reserved.
"""The test episodes of the reference DCAMA code, replayed exactly.

The reference draws its test episodes from numpy's legacy global generator,
seeded once, in episode order; every draw is
``np.random.choice(population, 1, replace=False)[0]``, which consumes a
full permutation of the population. The functions below make exactly these
calls, with exactly these populations and in this order, on a *local*
``numpy.random.RandomState(seed)``, and return the whole sequence of
episodes at once (``docs/protocol.md``, "Replaying the reference's
episodes"). The episodes are then a pure function of ``(seed, index)``,
whatever the number of workers or processes.

Each function returns a list of ``(class_id, query, supports)`` where
``query`` and ``supports`` are positions in the populations given.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    'reference_choice', 'reference_supports', 'replay_class_uniform',
    'replay_per_pair', 'replay_fss1000', 'FSS1000_IMAGE_NUMBERS'
]

#: The image numbers the reference draws FSS-1000 supports from
#: (``<n>.jpg`` of the query's class folder).
FSS1000_IMAGE_NUMBERS = tuple(range(1, 11))

#: ``(class_id, query position, support positions)``.
ReplayedEpisode = Tuple[int, int, List[int]]


def reference_choice(rng: np.random.RandomState, size: int) -> int:
    """``rng.choice(population, 1, replace=False)[0]`` as a position.

    Args:
        rng (np.random.RandomState): The legacy generator.
        size (int): Length of the population.

    Returns:
        int: The position drawn (``population[position]`` is the value).
    """
    return int(rng.choice(size, 1, replace=False)[0])


def reference_supports(rng: np.random.RandomState, names: Sequence[str],
                       query: str, shots: int) -> List[int]:
    """The reference's support loop: draw until ``shots`` non-query draws.

    Supports may repeat each other; a draw equal to the query (by name) is
    discarded.

    Args:
        rng (np.random.RandomState): The legacy generator.
        names (Sequence[str]): The class's images, in list order.
        query (str): The query's name.
        shots (int): Number of supports.

    Returns:
        list[int]: Positions in ``names``.
    """
    if all(name == query for name in names):
        raise ValueError(
            f'The class of {query!r} has no image other than the query: '
            'the reference would draw supports forever.')
    supports: List[int] = []
    while len(supports) < shots:
        pos = reference_choice(rng, len(names))
        if names[pos] != query:
            supports.append(pos)
    return supports


def replay_class_uniform(seed: int, class_ids: Sequence[int],
                         class_names: Sequence[Sequence[str]],
                         num_episodes: int,
                         shots: int) -> List[ReplayedEpisode]:
    """COCO-20i: class uniform, then query and supports in its list.

    Args:
        seed (int): The reference's ``np.random.seed``.
        class_ids (Sequence[int]): The fold's classes, ascending.
        class_names (Sequence[Sequence[str]]): Per class of ``class_ids``,
            its images in list order.
        num_episodes (int): Episodes to draw.
        shots (int): Supports per episode.

    Returns:
        list: ``(class_id, query, supports)``, positions in the class's list.
    """
    rng = np.random.RandomState(seed)
    episodes = []
    for _ in range(num_episodes):
        k = reference_choice(rng, len(class_ids))
        names = class_names[k]
        query = reference_choice(rng, len(names))
        supports = reference_supports(rng, names, names[query], shots)
        episodes.append((int(class_ids[k]), query, supports))
    return episodes


def replay_per_pair(seed: int, pair_classes: Sequence[int],
                    pair_positions: Sequence[int],
                    class_names: dict, num_episodes: int,
                    shots: int) -> List[ReplayedEpisode]:
    """PASCAL-5i: query ``i`` is pair ``i mod N``, supports in its class.

    Args:
        seed (int): The reference's ``np.random.seed``.
        pair_classes (Sequence[int]): Class of each pair, in file order.
        pair_positions (Sequence[int]): Position of each pair's image in its
            class's list.
        class_names (dict[int, Sequence[str]]): class -> its images, in
            file order.
        num_episodes (int): Episodes to draw.
        shots (int): Supports per episode.

    Returns:
        list: ``(class_id, query, supports)``, positions in the class's list.
    """
    rng = np.random.RandomState(seed)
    episodes = []
    for index in range(num_episodes):
        pair = index % len(pair_classes)
        class_id = int(pair_classes[pair])
        names = class_names[class_id]
        query = int(pair_positions[pair])
        supports = reference_supports(rng, names, names[query], shots)
        episodes.append((class_id, query, supports))
    return episodes


def replay_fss1000(seed: int, query_numbers: Sequence[Optional[int]],
                   shots: int) -> List[Tuple[int, List[int]]]:
    """FSS-1000: query ``i`` is image ``i``; supports among ``1..10.jpg``.

    The reference draws a support's number ``n`` uniformly in ``1..10`` and
    keeps ``<query folder>/<n>.jpg`` unless it is the query (repeats among
    supports allowed).

    Args:
        seed (int): The reference's ``np.random.seed``.
        query_numbers (Sequence[int | None]): Per query image, in episode
            order, the ``n`` of its file name ``<n>.jpg`` (None when the name
            is not a number: no draw equals it).
        shots (int): Supports per episode.

    Returns:
        list[tuple[int, list[int]]]: Per episode, the query position and
        the support image numbers ``n`` (``<n>.jpg`` of the query's folder).
    """
    rng = np.random.RandomState(seed)
    episodes = []
    for pos, number in enumerate(query_numbers):
        supports: List[int] = []
        while len(supports) < shots:
            n = FSS1000_IMAGE_NUMBERS[reference_choice(
                rng, len(FSS1000_IMAGE_NUMBERS))]
            if n != number:
                supports.append(n)
        episodes.append((pos, supports))
    return episodes
