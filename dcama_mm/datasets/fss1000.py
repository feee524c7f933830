# Copyright (c) dcama_mm contributors. All rights reserved.
"""FSS-1000: 1000 classes of 10 images with fixed class splits."""
import os.path as osp
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine import fileio

from mmseg.registry import DATASETS
from .base_few_shot_dataset import BaseFewShotDataset
from .reference_episodes import FSS1000_IMAGE_NUMBERS, replay_fss1000

#: The class-list files, in class-index order: training classes first, then
#: validation, then test (the reference's indices 0-519, 520-759, 760-999).
SPLIT_LIST_FILES = (('train', 'trn.txt'), ('val', 'val.txt'),
                    ('test', 'test.txt'))


def read_class_list(path: str) -> List[str]:
    """Read an FSS-1000 class list: one class (folder) name per line.

    Args:
        path (str): The list file.

    Returns:
        list[str]: The class names, sorted (the reference's order).
    """
    if not fileio.exists(path):
        raise FileNotFoundError(
            f'FSS1000Dataset: the class list {path!r} does not exist. Put '
            'the benchmark\'s class lists `trn.txt`, `val.txt` and '
            '`test.txt` into `split_dir` or set `split_dir`/`data_root`.')
    try:
        text = fileio.get_text(path)
    except UnicodeDecodeError as err:
        raise ValueError(
            f'FSS1000Dataset: the class list {path!r} is not a text '
            'file.') from err
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise ValueError(f'FSS1000Dataset: the class list {path!r} is empty.')
    for line_no, name in enumerate(names, start=1):
        if '/' in name or '\\' in name or name in ('.', '..') \
                or len(name.split()) != 1:
            raise ValueError(
                f'FSS1000Dataset: entry {line_no} of the class list '
                f'{path!r} is {name!r}; expected one class folder name per '
                'line.')
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(
            f'FSS1000Dataset: the class list {path!r} repeats class(es) '
            f'{dup[:5]}.')
    return sorted(names)


@DATASETS.register_module()
class FSS1000Dataset(BaseFewShotDataset):
    """FSS-1000 few-shot segmentation dataset.

    1000 classes of 10 images each, split by class into 520 training, 240
    validation and 240 test classes by the benchmark's class lists. Layout::

        data/FSS-1000/                    (data_root)
        ├── <class>/1.jpg, 1.png, ..., 10.jpg, 10.png
        └── splits/                       (split_dir)
            ├── trn.txt, val.txt, test.txt   one class name per line

    Masks are grey PNGs read by the binary-mask rule
    (:mod:`~dcama_mm.datasets.transforms.binary_mask`: pixels ``>= 128``
    are foreground in 0/255 masks). Class indices
    follow the reference: the sorted training classes, then the sorted
    validation classes, then the sorted test classes, so
    ``metainfo['classes']`` holds all classes of the three lists (all three
    are read) and the split's classes are a contiguous range.

    **Episodes.** With ``one_episode_per_image=True`` (the default for
    testing) episode ``i`` takes as query the ``(i mod N)``-th image of the
    split (``N`` images, classes in order, images sorted by name), and
    ``len(dataset)`` defaults to ``N`` (2400 for the test split): one
    episode per image, as in the reference. The ``shots`` supports are drawn
    without replacement (seeded with ``[seed, i]``) among the other images
    of the class; the reference draws with replacement, so its 5-shot
    episodes may repeat a support. With ``one_episode_per_image=False``
    (the default for training) episodes are class-uniform (see
    :class:`BaseFewShotDataset`), unless ``shuffle_records=True`` (the
    shipped training configs; the reference's training order): every block
    of ``N`` consecutive episodes, i.e. every epoch by default, takes each
    image once as query, in a fresh random order.

    With ``replay_reference=True`` (test split) the episodes are the
    reference's (:func:`~dcama_mm.datasets.reference_episodes.
    replay_fss1000`): query ``i`` is image ``i`` (classes in order, images
    in string order, ``1.jpg, 10.jpg, 2.jpg, ...``), and each support is
    ``<n>.jpg`` of the query's folder for ``n`` drawn in ``1..10``, skipping
    the query, repeats allowed; every class folder must hold ``1.jpg`` to
    ``10.jpg``.

    Args:
        split (str): 'train', 'val' or 'test'. Defaults to 'test'.
        shots (int): Support images per episode (K >= 1). Defaults to 1.
        split_dir (str): Folder of the class lists, relative to
            ``data_root`` unless absolute. Defaults to 'splits'.
        one_episode_per_image (bool, optional): See above. Defaults to None,
            meaning ``True`` in test mode and ``False`` otherwise.
        shuffle_records (bool): Whether the query follows a fresh random
            order of all images in every block of ``N`` episodes (see above;
            excludes ``one_episode_per_image``). Defaults to False.
        num_episodes (int, optional): Episodes per run or epoch. Defaults to
            None: the number of images with ``one_episode_per_image``, else
            as in :class:`BaseFewShotDataset`.
        seed (int): Seed of the episodes. Defaults to 0.
        data_root (str): The FSS-1000 folder. Defaults to ''.
        data_prefix (dict, optional): ``img_path``: the folder holding the
            class folders, relative to ``data_root``. Defaults to None,
            meaning ``dict(img_path='')``.
        img_suffix (str): Image file suffix. Defaults to '.jpg'.
        seg_map_suffix (str): Mask file suffix. Defaults to '.png'.
        pipeline (Sequence[dict | Callable]): Episode transforms.
            Defaults to ().
        test_mode (bool, optional): Defaults to None, meaning
            ``split != 'train'``.
        **kwargs: Other arguments of :class:`BaseFewShotDataset`.
    """

    METAINFO = dict(classes=())
    # annotations on the stored pixels; the reference reads them unturned
    EXIF_ORIENTATION = False

    def __init__(self,
                 split: str = 'test',
                 shots: int = 1,
                 split_dir: str = 'splits',
                 one_episode_per_image: Optional[bool] = None,
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
        splits = [name for name, _ in SPLIT_LIST_FILES]
        if split not in splits:
            raise ValueError(
                f'FSS1000Dataset: `split` must be one of {splits}, but got '
                f'{split!r}.')
        self.split = split
        self.img_suffix = img_suffix
        self.seg_map_suffix = seg_map_suffix
        test_mode = split != 'train' if test_mode is None else test_mode
        self.shuffle_records = bool(shuffle_records)
        if self.shuffle_records and one_episode_per_image:
            raise ValueError(
                'FSS1000Dataset: `shuffle_records=True` and '
                '`one_episode_per_image=True` both choose the query; set '
                'one.')
        self.one_episode_per_image = (
            test_mode and not self.shuffle_records) \
            if one_episode_per_image is None else bool(one_episode_per_image)
        self._split_ranges = {}
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
        """The folder of the class lists (joined with ``data_root``)."""
        return self.ann_file

    def records_source(self) -> str:
        """The split's class list, for error messages."""
        name = dict(SPLIT_LIST_FILES)[self.split]
        return f'the class folders of {osp.join(self.split_dir, name)!r}'

    def _read_classes(self) -> None:
        """Read the three class lists into ``metainfo['classes']``."""
        classes: List[str] = []
        for split, file_name in SPLIT_LIST_FILES:
            names = read_class_list(osp.join(self.split_dir, file_name))
            self._split_ranges[split] = range(
                len(classes),
                len(classes) + len(names))
            classes += names
        if len(set(classes)) != len(classes):
            dup = sorted({c for c in classes if classes.count(c) > 1})
            raise ValueError(
                f'FSS1000Dataset: class(es) {dup[:5]} appear in more than '
                f'one class list of {self.split_dir!r}; the splits must be '
                'disjoint.')
        self._metainfo['classes'] = tuple(classes)

    def get_episode_class_ids(self) -> List[int]:
        """The classes of the split: a contiguous range of indices."""
        if not self._split_ranges:
            self._read_classes()
        return list(self._split_ranges[self.split])

    def get_seg_lut(self, class_id: int) -> None:
        """None: the masks are binary, read by the binary-mask rule
        (:mod:`dcama_mm.datasets.transforms.binary_mask`: pixel values
        ``>= 128`` are foreground, the rest background)."""
        return None

    def load_data_list(self) -> List[dict]:
        """List the images of the split's classes (sorted by name).

        Every class folder must exist; every image must have its mask
        (checked by the base class, ``check_files``).
        """
        self._read_classes()
        classes = self._metainfo['classes']
        img_root = self.data_prefix.get('img_path', '') or self.data_root
        data_list = []
        for class_id in self._split_ranges[self.split]:
            class_dir = osp.join(img_root, classes[class_id])
            if not osp.isdir(class_dir):
                raise FileNotFoundError(
                    f'FSS1000Dataset: the folder {class_dir!r} of class '
                    f'{classes[class_id]!r} (listed in {self.split}) does '
                    'not exist; check `data_root` and the class lists.')
            images = sorted(
                fileio.list_dir_or_file(
                    class_dir, list_dir=False, suffix=self.img_suffix))
            for img_name in images:
                stem = img_name[:-len(self.img_suffix)]
                seg_map_path = osp.join(class_dir, stem + self.seg_map_suffix)
                data_list.append(
                    dict(
                        img_path=osp.join(class_dir, img_name),
                        seg_map_path=seg_map_path,
                        class_id=class_id))
        return data_list

    def default_num_episodes(self) -> int:
        """One episode per image with ``one_episode_per_image`` or
        ``replay_reference`` (2400 for the test split), else as
        :meth:`BaseFewShotDataset.default_num_episodes`."""
        if self.one_episode_per_image or self.replay_reference:
            return len(self._list_record_ids)
        return super().default_num_episodes()

    def replay_reference_episodes(self) -> List[Tuple[int, int, List[int]]]:
        """The reference's FSS-1000 test episodes (see the class doc)."""
        by_path = {}
        for c, records in self._class_record_ids.items():
            paths = {self.data_list[r]['img_path']: int(r) for r in records}
            folder = osp.dirname(self.data_list[records[0]]['img_path'])
            for n in FSS1000_IMAGE_NUMBERS:
                path = osp.join(folder, f'{n}{self.img_suffix}')
                if path not in paths:
                    raise ValueError(
                        'FSS1000Dataset: replay_reference=True draws the '
                        f'supports among 1{self.img_suffix} .. '
                        f'{FSS1000_IMAGE_NUMBERS[-1]}{self.img_suffix} of '
                        f'each class folder, as the reference does, but '
                        f'{path!r} does not exist (or has no mask).')
                by_path[(c, n)] = paths[path]
        queries = self._list_record_ids
        num = len(queries)
        numbers = []
        for r in queries:
            stem = osp.basename(self.data_list[r]['img_path'])
            stem = stem[:-len(self.img_suffix)]
            numbers.append(int(stem) if stem.isdigit() else None)
        # the stream runs past N when num_episodes > N: queries cycle
        numbers = [numbers[i % num] for i in range(self.num_episodes)]
        out = []
        for pos, supports in replay_fss1000(self.seed, numbers, self.shots):
            query = int(queries[pos % num])
            class_id = int(self.data_list[query]['class_id'])
            out.append((class_id, query,
                        [by_path[(class_id, n)] for n in supports]))
        return out

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
        if self.one_episode_per_image:
            return self.sample_episode_per_record(rng, index)
        return super().sample_episode(rng, index)
