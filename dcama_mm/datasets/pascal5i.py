# Copyright (c) dcama_mm contributors. All rights reserved.
"""PASCAL-5i: the 20 PASCAL VOC classes in 4 contiguous folds."""
import os.path as osp
import re
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine import fileio

from mmseg.registry import DATASETS
from .base_few_shot_dataset import BaseFewShotDataset
from .reference_episodes import replay_per_pair

NUM_FOLDS = 4
CLASSES_PER_FOLD = 5

#: Sub-folder of the split directory holding each split's fold lists.
_SPLIT_LIST_DIRS = dict(train='trn', test='val')

#: A fold-list line: image name, two underscores, class index + 1.
_LINE_PATTERN = re.compile(r'^(\S+)__(\d+)$')


def pascal5i_fold_classes(fold: int, split: str,
                          num_classes: int = 20) -> List[int]:
    """Class indices of a PASCAL-5i fold.

    Fold ``i`` tests on the contiguous classes ``5i .. 5i + 4`` and trains on
    the other 15.

    Args:
        fold (int): The fold, 0-3.
        split (str): 'train' or 'test'.
        num_classes (int): Number of classes. Defaults to 20.

    Returns:
        list[int]: Ascending class indices.
    """
    per_fold = num_classes // NUM_FOLDS
    test = list(range(fold * per_fold, (fold + 1) * per_fold))
    if split == 'test':
        return test
    return [c for c in range(num_classes) if c not in test]


def parse_fold_list(path: str, num_classes: int = 20) -> List[Tuple[str, int]]:
    """Read a PASCAL-5i fold list in the reference format.

    Each non-empty line is ``<image name>__<class index + 1>``, e.g.
    ``2007_000033__01`` (image ``2007_000033``, class 0, aeroplane).

    Args:
        path (str): The list file.
        num_classes (int): Number of classes; class numbers must lie in
            ``1 .. num_classes``. Defaults to 20.

    Returns:
        list[tuple[str, int]]: ``(image name, class index)`` pairs in file
        order.
    """
    if not fileio.exists(path):
        raise FileNotFoundError(
            f'PascalVOC5iDataset: the fold list {path!r} does not exist. '
            'Copy the benchmark\'s split lists (`trn/fold{0-3}.txt`, '
            '`val/fold{0-3}.txt`) into `split_dir` or set `split_dir`/'
            '`data_root`.')
    try:
        text = fileio.get_text(path)
    except UnicodeDecodeError as err:
        raise ValueError(
            f'PascalVOC5iDataset: the fold list {path!r} is not a text '
            'file.') from err
    pairs = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        match = _LINE_PATTERN.match(line)
        if match is None or not 1 <= int(match.group(2)) <= num_classes:
            raise ValueError(
                f'PascalVOC5iDataset: line {line_no} of the fold list '
                f'{path!r} is {line!r}; expected "<image name>__<class>" '
                f'with a class number in 1..{num_classes}, e.g. '
                '"2007_000033__01".')
        pairs.append((match.group(1), int(match.group(2)) - 1))
    if not pairs:
        raise ValueError(
            f'PascalVOC5iDataset: the fold list {path!r} is empty.')
    return pairs


@DATASETS.register_module()
class PascalVOC5iDataset(BaseFewShotDataset):
    """PASCAL-5i few-shot segmentation dataset.

    The 20 PASCAL VOC classes, indexed 0..19, form 4 folds: fold ``i``
    tests on the classes ``5i .. 5i + 4`` and trains on the other 15. The
    images of each class come from the benchmark's fold lists (OSLSM /
    PFENet / HSNet lineage), ``(image, class)`` pairs written as lines
    ``2007_000033__01`` (image name, class index + 1): training reads
    ``trn/fold{j}.txt`` of the three other folds, testing reads
    ``val/fold{i}.txt``. Layout (mmseg's ``pascal_voc12_aug`` one plus the
    lists)::

        data/VOCdevkit/VOC2012/           (data_root)
        ├── JPEGImages/<name>.jpg
        ├── SegmentationClassAug/<name>.png   class index + 1, 255 ignore
        └── splits/                       (split_dir)
            ├── trn/fold0.txt ... fold3.txt
            └── val/fold0.txt ... fold3.txt

    The query mask is 1 where the label is ``class + 1``, 255 where it is
    255 (object boundaries, ignored by the metric) and 0 elsewhere; support
    masks turn 255 into 0 (see :class:`PackFewShotInputs`).

    **Episodes.** With ``query_from_list=True`` (the default for testing)
    episode ``i`` takes as query the ``(i mod N)``-th pair of the fold list
    (``N`` pairs; pairs of a class skipped for having fewer than
    ``shots + 1`` images are left out), as the reference's test loader
    does, so 1000 test episodes cover every pair of a list of at most 1000
    pairs at least once; the ``shots``
    supports are drawn (without replacement, seeded with ``[seed, i]``)
    among the other images of the class. With ``query_from_list=False``
    (the default for training) episodes are class-uniform, as for
    COCO-20i (see :class:`BaseFewShotDataset`). With
    ``shuffle_records=True`` (the shipped training configs; the reference's
    training order) every block of ``N`` consecutive episodes, i.e. every
    epoch by default, takes each (image, class) pair once as query, in a
    fresh random order
    (:meth:`~BaseFewShotDataset.sample_episode_shuffled_record`). All are a
    pure function of ``(seed, index)``.

    With ``replay_reference=True`` (test split) the episodes are the
    reference's (:func:`~dcama_mm.datasets.reference_episodes.
    replay_per_pair`): query ``i`` is pair ``i mod N`` of the list as the
    file has it (repeated lines included), supports drawn by the
    reference's loop over the class's listed images, possibly repeating
    each other.

    Args:
        fold (int): The fold, 0-3. Defaults to 0.
        shots (int): Support images per episode (K >= 1). Defaults to 1.
        split (str): 'train' (the 15 training classes, ``trn`` lists of the
            other folds) or 'test' (the fold's 5 classes, its ``val`` list).
            Validation uses 'test' with another ``seed``. Defaults to
            'test'.
        split_dir (str): Folder of the fold lists, relative to
            ``data_root`` unless absolute. Defaults to 'splits'.
        query_from_list (bool, optional): Whether episode ``i``'s query is
            the ``(i mod N)``-th pair of the list (see above). Defaults to
            None, meaning ``True`` in test mode and ``False`` otherwise.
        shuffle_records (bool): Whether the query follows a fresh random
            order of all pairs in every block of ``N`` episodes (see above;
            excludes ``query_from_list``). Defaults to False.
        num_episodes (int, optional): See :class:`BaseFewShotDataset`
            (1000 for testing). Defaults to None.
        seed (int): Seed of the episodes. Defaults to 0.
        data_root (str): The VOC2012 folder. Defaults to ''.
        data_prefix (dict, optional): ``img_path`` and ``seg_map_path``
            folders, relative to ``data_root``. Defaults to None, meaning
            ``dict(img_path='JPEGImages',
            seg_map_path='SegmentationClassAug')``.
        img_suffix (str): Image file suffix. Defaults to '.jpg'.
        seg_map_suffix (str): Mask file suffix. Defaults to '.png'.
        pipeline (Sequence[dict | Callable]): Episode transforms.
            Defaults to ().
        test_mode (bool, optional): Defaults to None, meaning
            ``split == 'test'``.
        **kwargs: Other arguments of :class:`BaseFewShotDataset`.
    """

    METAINFO = dict(
        classes=('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
                 'car', 'cat', 'chair', 'cow', 'diningtable', 'dog',
                 'horse', 'motorbike', 'person', 'pottedplant', 'sheep',
                 'sofa', 'train', 'tvmonitor'))
    # annotations on the stored pixels; the reference reads them unturned
    EXIF_ORIENTATION = False

    def __init__(self,
                 fold: int = 0,
                 shots: int = 1,
                 split: str = 'test',
                 split_dir: str = 'splits',
                 query_from_list: Optional[bool] = None,
                 shuffle_records: bool = False,
                 num_episodes: Optional[int] = None,
                 seed: int = 0,
                 data_root: str = '',
                 data_prefix: Optional[dict] = None,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 test_mode: Optional[bool] = None,
                 **kwargs) -> None:
        if isinstance(fold, bool) or fold not in range(NUM_FOLDS):
            raise ValueError(
                'PascalVOC5iDataset: `fold` must be 0, 1, 2 or 3, but got '
                f'{fold!r}.')
        if split not in _SPLIT_LIST_DIRS:
            raise ValueError(
                "PascalVOC5iDataset: `split` must be 'train' or 'test' (use "
                "'test' with another `seed` for validation), but got "
                f'{split!r}.')
        self.fold = fold
        self.split = split
        self.img_suffix = img_suffix
        self.seg_map_suffix = seg_map_suffix
        test_mode = split == 'test' if test_mode is None else test_mode
        self.shuffle_records = bool(shuffle_records)
        if self.shuffle_records and query_from_list:
            raise ValueError(
                'PascalVOC5iDataset: `shuffle_records=True` and '
                '`query_from_list=True` both choose the query; set one.')
        self.query_from_list = (test_mode and not self.shuffle_records) \
            if query_from_list is None else bool(query_from_list)
        if data_prefix is None:
            data_prefix = dict(
                img_path='JPEGImages', seg_map_path='SegmentationClassAug')
        super().__init__(
            shots=shots,
            num_episodes=num_episodes,
            seed=seed,
            ann_file=split_dir,
            data_root=data_root,
            data_prefix=data_prefix,
            pipeline=pipeline,
            test_mode=test_mode,
            **kwargs)

    @property
    def split_dir(self) -> str:
        """The folder of the fold lists (joined with ``data_root``)."""
        return self.ann_file

    def get_episode_class_ids(self) -> List[int]:
        """The fold's 5 test or 15 training classes."""
        return pascal5i_fold_classes(self.fold, self.split,
                                     len(self._metainfo['classes']))

    def list_files(self) -> List[str]:
        """The fold lists this split reads, in reading order."""
        list_dir = osp.join(self.split_dir, _SPLIT_LIST_DIRS[self.split])
        folds = [self.fold] if self.split == 'test' else [
            f for f in range(NUM_FOLDS) if f != self.fold
        ]
        return [osp.join(list_dir, f'fold{f}.txt') for f in folds]

    def records_source(self) -> str:
        """The fold lists, for error messages."""
        return ', '.join(repr(f) for f in self.list_files())

    def load_data_list(self) -> List[dict]:
        """Read the fold lists into (class, image) records, in list order.

        Duplicate pairs are kept once (all of them with
        ``replay_reference=True``, as the reference reads the list). Every
        listed image and mask must exist (checked by the base class,
        ``check_files``).
        """
        img_dir = self.data_prefix.get('img_path', '')
        seg_dir = self.data_prefix.get('seg_map_path', '')
        num_classes = len(self._metainfo['classes'])
        data_list: List[dict] = []
        seen = set()
        for list_file in self.list_files():
            for name, class_id in parse_fold_list(list_file, num_classes):
                if (name, class_id) in seen and not self.replay_reference:
                    continue
                seen.add((name, class_id))
                data_list.append(
                    dict(
                        img_path=osp.join(img_dir, name + self.img_suffix),
                        seg_map_path=osp.join(seg_dir,
                                              name + self.seg_map_suffix),
                        class_id=class_id))
        return data_list

    def sample_episode(self, rng: np.random.Generator,
                       index: int) -> Tuple[int, int, List[int]]:
        """Draw episode ``index`` (see the class docstring).

        Args:
            rng (np.random.Generator): The episode's generator, seeded with
                ``[seed, index]``.
            index (int): The episode index.

        Returns:
            tuple: ``(class_id, query_record, support_records)``.
        """
        if self.shuffle_records:
            return self.sample_episode_shuffled_record(rng, index)
        if self.query_from_list:
            return self.sample_episode_per_record(rng, index)
        return super().sample_episode(rng, index)

    def replay_reference_episodes(self) -> List[Tuple[int, int, List[int]]]:
        """The reference's PASCAL-5i test episodes (see the class doc)."""
        positions = {}
        for c, records in self._class_record_ids.items():
            positions.update({int(r): p for p, r in enumerate(records)})
        names = {
            c: self._reference_class_names(c)
            for c in self._class_record_ids
        }
        episodes = replay_per_pair(
            self.seed, self._list_class_ids,
            [positions[int(r)] for r in self._list_record_ids], names,
            self.num_episodes, self.shots)
        return self._class_positions_to_records(episodes)
