# Copyright (c) dcama_mm contributors. All rights reserved.
"""How :class:`BaseFewShotDataset` draws episodes: class-uniform, one per
record, in the reference's shuffled record order, or replayed."""
import logging
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log


class EpisodeSchemesMixin:
    """The episode schemes of :class:`~dcama_mm.datasets.BaseFewShotDataset`
    (which provides ``shots``, ``seed``, ``data_list`` and the per-class
    record indices it builds in ``full_init`` with :meth:`_group_by_class`).
    """

    def _group_by_class(self, records: Sequence[dict],
                        class_ids: Sequence[int]) -> List[int]:
        """Index ``records`` (all of ``class_ids``) by class.

        Sets the per-class record indices, the records of the usable
        classes in record order and their classes. A class with fewer than
        ``shots + 1`` images is skipped with a warning (an error with
        ``replay_reference``).

        Args:
            records (Sequence[dict]): The dataset's records.
            class_ids (Sequence[int]): The split's classes, ascending.

        Returns:
            list[int]: The usable classes, ascending.
        """
        owner = type(self).__name__
        by_class: Dict[int, List[int]] = defaultdict(list)
        for i, record in enumerate(records):
            by_class[int(record['class_id'])].append(i)
        usable = []
        for class_id in class_ids:
            num = len(by_class.get(class_id, ()))
            if self.replay_reference:
                num = len({records[i]['img_path'] for i in by_class[class_id]})
                if num < self.shots + 1:
                    raise ValueError(
                        f'{owner}: replay_reference=True needs every class '
                        f'of the split to have at least shots + 1 = '
                        f'{self.shots + 1} different images, as the '
                        f"reference's lists do, but class {class_id} "
                        f'({self._class_name(class_id)}) has {num} in '
                        f"{self.records_source()}; use the reference's "
                        'lists or replay_reference=False.')
            if num < self.shots + 1:
                print_log(
                    f'{owner}: class {class_id} '
                    f'({self._class_name(class_id)}) has {num} image(s), '
                    f'fewer than shots + 1 = {self.shots + 1}; it is '
                    'skipped.',
                    logger='current',
                    level=logging.WARNING)
                continue
            usable.append(class_id)
        if not usable:
            raise ValueError(
                f'{owner}: no class of this split has at least shots + 1 = '
                f'{self.shots + 1} images (annotation file '
                f'{self.ann_file!r}); check the data and the `shots`/`fold` '
                'options.')
        self._episode_class_ids = tuple(usable)
        self._class_record_ids = {
            c: np.asarray(by_class[c], dtype=np.int64)
            for c in usable
        }
        record_class_ids = np.asarray([int(r['class_id']) for r in records],
                                      dtype=np.int64)
        self._list_record_ids = np.flatnonzero(
            np.isin(record_class_ids, usable)).astype(np.int64)
        self._list_class_ids = record_class_ids[self._list_record_ids]
        return usable

    def sample_episode(self, rng: np.random.Generator,
                       index: int) -> Tuple[int, int, List[int]]:
        """Draw one episode.

        The class is uniform over the episode classes, the query uniform over
        the class's records and the ``shots`` supports uniform over the
        class's other records, all distinct.

        Args:
            rng (np.random.Generator): The episode's own generator, seeded
                with ``[seed, index]``.
            index (int): The episode index.

        Returns:
            tuple: ``(class_id, query_record, support_records)`` where the
            records are indices into the dataset's records
            (:meth:`get_data_info`).
        """
        class_ids = self._episode_class_ids
        class_id = class_ids[int(rng.integers(len(class_ids)))]
        record_ids = self._class_record_ids[class_id]
        num = len(record_ids)
        query = int(rng.integers(num))
        supports = rng.choice(num - 1, size=self.shots, replace=False)
        supports = supports + (supports >= query)  # skip the query
        return (class_id, int(record_ids[query]),
                [int(record_ids[s]) for s in supports])

    def sample_episode_per_record(self, rng: np.random.Generator,
                                  index: int) -> Tuple[int, int, List[int]]:
        """Draw an episode whose query is the ``(index mod N)``-th record.

        The ``N`` records are those of the usable classes (records of
        classes skipped for having fewer than ``shots + 1`` images are left
        out), in record order, so ``N`` consecutive episodes take every
        record once as query. The ``shots`` supports are drawn without
        replacement among the other records of the query's class.

        Args:
            rng (np.random.Generator): The episode's own generator, seeded
                with ``[seed, index]``.
            index (int): The episode index.

        Returns:
            tuple: ``(class_id, query_record, support_records)``, as
            :meth:`sample_episode`.
        """
        pos = index % len(self._list_record_ids)
        query = int(self._list_record_ids[pos])
        class_id = int(self._list_class_ids[pos])
        candidates = self._class_record_ids[class_id]
        candidates = candidates[candidates != query]
        supports = rng.choice(candidates, size=self.shots, replace=False)
        return class_id, query, [int(s) for s in supports]

    def sample_episode_shuffled_record(
            self, rng: np.random.Generator,
            index: int) -> Tuple[int, int, List[int]]:
        """Draw an episode whose query follows a shuffled record order.

        The reference's training order for PASCAL-5i and FSS-1000: the
        episode indices are cut into blocks of ``N`` (the records of the
        usable classes); block ``b`` takes every record once as query, in
        the order of a permutation drawn with
        ``numpy.random.default_rng([seed, b, N])``. With the default
        ``len(dataset) == N`` a block is a training epoch (the
        :class:`~dcama_mm.datasets.EpisodeSampler` yields
        ``epoch * N + i``), so each epoch uses every record exactly once, in
        a fresh order. The supports are drawn, and the arguments and the
        result are, as in :meth:`sample_episode_per_record`.
        """
        num = len(self._list_record_ids)
        block, pos = divmod(index, num)
        cached = getattr(self, '_block_order', None)
        if cached is None or cached[0] != block:
            order = np.random.default_rng([self.seed, block,
                                           num]).permutation(num)
            cached = self._block_order = (block, order)
        return self.sample_episode_per_record(rng, int(cached[1][pos]))

    def replay_reference_episodes(self) -> List[Tuple[int, int, List[int]]]:
        """The reference code's test episodes (``replay_reference=True``).

        Called once, when the records are loaded.

        Returns:
            list[tuple]: ``len(self)`` episodes ``(class_id, query_record,
            support_records)``, as :meth:`sample_episode`.
        """
        raise NotImplementedError(
            f'{type(self).__name__} cannot replay the reference episodes.')

    def _class_positions_to_records(
            self, episodes: Sequence[Tuple[int, int, List[int]]]
    ) -> List[Tuple[int, int, List[int]]]:
        """Episodes given as positions in their class's records -> as
        record indices."""
        out = []
        for class_id, query, supports in episodes:
            records = self._class_record_ids[class_id]
            out.append((class_id, int(records[query]),
                        [int(records[s]) for s in supports]))
        return out

    def _reference_class_names(self, class_id: int) -> List[str]:
        """Image paths of a class's records, in record order."""
        return [
            self.data_list[i]['img_path']
            for i in self._class_record_ids[class_id]
        ]
