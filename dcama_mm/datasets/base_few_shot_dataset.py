# Copyright (c) dcama_mm contributors. All rights reserved.
"""Base class of the episodic few-shot segmentation datasets."""
import copy
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset

from ..utils.checks import strict_arguments
from .episode_redraws import EpisodeRedrawMixin, check_max_redraws
from .episode_schemes import EpisodeSchemesMixin
from .file_checks import check_record_files

#: Value of ignored pixels in the query mask (PASCAL boundaries).
IGNORE_INDEX = 255


@strict_arguments
class BaseFewShotDataset(EpisodeSchemesMixin, EpisodeRedrawMixin,
                         BaseDataset):
    """Base class of episodic few-shot segmentation datasets.

    An *episode* is one query image and ``shots`` support images of the same
    class, with the binary masks of that class. Episodes are a pure function
    of ``(seed, index)``: :meth:`get_episode_info` draws episode ``index``
    with ``numpy.random.default_rng([seed, index])`` and never touches a
    global random state, so the same run yields the same episodes with any
    number of data workers or processes. ``len(dataset)`` is the number of
    episodes (``num_episodes``), but ``dataset[index]`` accepts any
    non-negative index: :class:`~dcama_mm.datasets.EpisodeSampler` yields
    ``epoch * len(dataset) + i`` in training to draw fresh episodes each
    epoch.

    The dataset holds one *record* per (class, image) candidate, a dict with
    at least:

    - ``img_path`` (str): path of the image.
    - ``seg_map_path`` (str): path of a single-channel ``uint8`` PNG mask.
    - ``class_id`` (int): index of the class in ``metainfo['classes']``.

    The mask of class ``c`` is read from the PNG through a 256-entry lookup
    table (:meth:`get_seg_lut`): pixel value -> 0 (background),
    1 (foreground) or 255 (ignore). The default table maps ``c + 1`` to 1,
    255 to 255 and everything else to 0, which fits label PNGs storing
    ``class index + 1`` (COCO-20i, PASCAL-5i).

    **What a subclass implements**

    - :meth:`load_data_list` (required): return the records of the split.
      Only records of the classes listed by :meth:`get_episode_class_ids`
      are used; records with another ``class_id`` are dropped. Raise
      ``FileNotFoundError``/``ValueError`` naming the file on bad input.
    - :meth:`get_episode_class_ids` (required): the class indices this
      split/fold draws episodes from, e.g. from ``self.fold`` and
      ``self.split``.
    - :meth:`get_seg_lut` (optional): another pixel-value lookup table, or
      None for binary masks (FSS-1000: the binary-mask rule of
      :mod:`~dcama_mm.datasets.transforms.binary_mask`).
    - :meth:`sample_episode` (optional): another episode scheme. The default
      draws the class uniformly, the query uniformly among the class's
      images and ``shots`` distinct supports among the others (the
      COCO-20i/PASCAL-5i protocol). The test protocols of PASCAL-5i and
      FSS-1000 (query ``i`` is the ``i``-th record) return
      :meth:`sample_episode_per_record` instead.
    - ``METAINFO = dict(classes=(...))`` with all class names in benchmark
      order.

    - :meth:`replay_reference_episodes` (optional): the reference code's
      own test episodes, for ``replay_reference=True``.
    - :meth:`default_num_episodes` (optional): ``len(dataset)`` when
      ``num_episodes`` is None.

    A class with fewer than ``shots + 1`` images cannot form an episode: it
    is skipped with a logged warning and left out of
    ``metainfo['episode_class_ids']``; if no class is left, a ``ValueError``
    is raised. With ``replay_reference=True`` such a class is an error (the
    reference's lists give every class enough images, and skipping one
    would change the episodes of all others).

    **Replaying the reference.** With ``replay_reference=True`` (test
    splits only) the episodes are the ones the reference DCAMA code's
    ``test.py`` draws from numpy's global generator seeded with ``seed``
    (:mod:`~dcama_mm.datasets.reference_episodes`): the whole sequence is
    drawn once, from a local ``numpy.random.RandomState(seed)``, when the
    records are loaded, so it is still a pure function of
    ``(seed, index)``. Its supports may repeat each other, as in the
    reference. ``len(dataset)`` then defaults to the reference's episode
    count and larger indices are refused.

    **Files.** When the records are loaded, every image and mask they name
    must exist (``check_files``; one listing per folder,
    :mod:`~dcama_mm.datasets.file_checks`), or a ``FileNotFoundError``
    names the data root, the list file, the number missing and the first
    few. In training, ``max_redraws`` replaces an episode whose files
    cannot be read by a deterministic substitute
    (:class:`~dcama_mm.datasets.episode_redraws.EpisodeRedrawMixin`).

    The dict handed to the pipeline (see
    :class:`~dcama_mm.datasets.transforms.LoadEpisode`) has the query's
    ``img_path``/``seg_map_path``, ``support_img_paths``,
    ``support_seg_map_paths``, ``seg_lut``, ``class_id``, ``shots``,
    ``episode_index`` and ``exif_orientation`` (:attr:`EXIF_ORIENTATION`:
    whether images are turned upright by their EXIF tag; the benchmark
    datasets, whose annotations are drawn on the stored pixels, say False,
    as the reference reads them; a folder of the user's photos, True).

    Args:
        shots (int): Number of support images per episode (K >= 1).
            Defaults to 1.
        num_episodes (int, optional): ``len(dataset)``: episodes per test run
            or per training epoch. ``None`` means 1000 in test mode and the
            number of (class, image) records in training (one epoch sees as
            many episodes as the reference's). Defaults to None.
        seed (int): Seed of the episodes. Use different seeds for validation
            and testing. Defaults to 0.
        replay_reference (bool): Whether the episodes are the reference
            code's test episodes (see above). Defaults to False.
        ann_file (str): Annotation/list file, relative to ``data_root``
            unless absolute. Defaults to ''.
        metainfo (dict, optional): Overrides of the class metainfo.
            Defaults to None.
        data_root (str): Root of the dataset. Defaults to ''.
        data_prefix (dict, optional): Prefixes of the data paths, joined with
            ``data_root``. Defaults to None (``dict(img_path='')``).
        pipeline (Sequence[dict | Callable]): Transforms applied to each
            episode. Defaults to ().
        test_mode (bool): Whether the dataset is used for testing. Only
            changes the default of ``num_episodes``. Defaults to False.
        lazy_init (bool): Whether to defer loading the records until first
            use. Defaults to False.
        serialize_data (bool): Whether to keep the records serialised in one
            numpy buffer, shared by the data workers. Defaults to True.
        check_files (bool): Whether to check, when the records are loaded,
            that every listed image and mask exists. Turn it off only where
            listing the folders is too slow (some network file systems).
            Defaults to True.
        max_redraws (int): Training only: how many substitute episodes to
            try for an episode whose files cannot be read (0: the error
            stops the run). Defaults to 0.
    """

    METAINFO: dict = dict(classes=())
    #: Whether the images are read turned upright by their EXIF orientation
    #: (as displayed) or as stored (benchmark annotations).
    EXIF_ORIENTATION: bool = True

    def __init__(self,
                 shots: int = 1,
                 num_episodes: Optional[int] = None,
                 seed: int = 0,
                 replay_reference: bool = False,
                 ann_file: str = '',
                 metainfo: Optional[dict] = None,
                 data_root: str = '',
                 data_prefix: Optional[dict] = None,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 test_mode: bool = False,
                 lazy_init: bool = False,
                 serialize_data: bool = True,
                 check_files: bool = True,
                 max_redraws: int = 0) -> None:
        if isinstance(shots, bool) or not isinstance(shots, int) \
                or shots < 1:
            raise ValueError(
                f'`shots` must be an integer >= 1 (the number of support '
                f'images per episode), but got {shots!r}.')
        if num_episodes is not None and (
                isinstance(num_episodes, bool)
                or not isinstance(num_episodes, int) or num_episodes < 1):
            raise ValueError(
                f'`num_episodes` must be a positive integer or None, but got '
                f'{num_episodes!r}.')
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(
                f'`seed` must be a non-negative integer, but got {seed!r}.')
        if not isinstance(replay_reference, bool):
            raise ValueError(
                f'`replay_reference` must be True or False, but got '
                f'{replay_reference!r}.')
        if replay_reference and not test_mode:
            raise ValueError(
                f'{type(self).__name__}: `replay_reference=True` replays the '
                "reference's *test* episodes; use it on a test split "
                '(test_mode=True), not for training.')
        if not isinstance(check_files, bool):
            raise ValueError('`check_files` must be True or False, but got '
                             f'{check_files!r}.')
        self.max_redraws = check_max_redraws(max_redraws, test_mode,
                                             type(self).__name__)
        self.check_files = check_files
        self.shots = shots
        self.seed = seed
        self.replay_reference = replay_reference
        # (class ids [E], query records [E], support records [E, K])
        self._replayed: Optional[Tuple[np.ndarray, np.ndarray,
                                       np.ndarray]] = None
        self._num_episodes_cfg = num_episodes
        self._class_record_ids: Dict[int, np.ndarray] = {}
        # the records of the usable classes, in record order, and their class
        self._list_record_ids = np.zeros(0, dtype=np.int64)
        self._list_class_ids = np.zeros(0, dtype=np.int64)
        self._episode_class_ids: Tuple[int, ...] = ()
        super().__init__(
            ann_file=ann_file,
            metainfo=metainfo,
            data_root=data_root,
            data_prefix=dict(img_path='') if data_prefix is None else dict(
                data_prefix),
            serialize_data=serialize_data,
            pipeline=list(pipeline),
            test_mode=test_mode,
            lazy_init=lazy_init)

    # ------------------------------------------------------------------
    # What subclasses implement
    # ------------------------------------------------------------------
    def load_data_list(self) -> List[dict]:
        """Load the (class, image) records of the split.

        Returns:
            list[dict]: Records with ``img_path``, ``seg_map_path`` and
            ``class_id``.
        """
        raise NotImplementedError(
            f'{type(self).__name__} must implement `load_data_list`.')

    def get_episode_class_ids(self) -> List[int]:
        """Class indices this split/fold draws episodes from.

        Returns:
            list[int]: Indices into ``metainfo['classes']``.
        """
        raise NotImplementedError(
            f'{type(self).__name__} must implement `get_episode_class_ids`.')

    def get_seg_lut(self, class_id: int) -> np.ndarray:
        """Lookup table turning a mask PNG into the mask of a class.

        Args:
            class_id (int): Index of the episode's class.

        Returns:
            np.ndarray | None: ``uint8`` array of 256 entries, pixel value
            -> 0 (background), 1 (foreground) or 255 (ignore); None for
            binary masks (read by the rule of
            :mod:`dcama_mm.datasets.transforms.binary_mask`). By default
            ``class_id + 1`` -> 1, 255 -> 255, others -> 0.
        """
        lut = np.zeros(256, dtype=np.uint8)
        lut[IGNORE_INDEX] = IGNORE_INDEX
        lut[class_id + 1] = 1
        return lut

    def default_num_episodes(self) -> int:
        """``len(dataset)`` when ``num_episodes`` is None.

        Returns:
            int: 1000 in test mode (the reference's test runs), else the
            number of (class, image) records of the usable classes.
        """
        if self.test_mode:
            return 1000
        return len(self._list_record_ids)

    # ------------------------------------------------------------------
    # Episodes
    # ------------------------------------------------------------------
    def full_init(self) -> None:
        """Load the records, group them by class and serialise them."""
        if self._fully_initialized:
            return
        data_list = self.load_data_list()
        wanted = {int(c) for c in self.get_episode_class_ids()}
        kept = [r for r in data_list if int(r['class_id']) in wanted]
        if self.check_files:
            check_record_files(kept, type(self).__name__, self.data_root,
                               self.records_source())
        usable = self._group_by_class(kept, sorted(wanted))
        self._metainfo['episode_class_ids'] = list(usable)
        # Reported with every result (docs/protocol.md: seed and episodes).
        self._metainfo['seed'] = self.seed
        self._metainfo['shots'] = self.shots
        self._metainfo['replay_reference'] = self.replay_reference
        self.data_list = kept
        if self._num_episodes_cfg is not None:
            self.num_episodes = self._num_episodes_cfg
        else:
            self.num_episodes = self.default_num_episodes()
        if self.replay_reference:
            episodes = self.replay_reference_episodes()
            self._replayed = (
                np.asarray([e[0] for e in episodes], dtype=np.int64),
                np.asarray([e[1] for e in episodes], dtype=np.int64),
                np.asarray([e[2] for e in episodes],
                           dtype=np.int64).reshape(len(episodes),
                                                   self.shots))
        if self.serialize_data:
            # mmengine's _serialize_data already runs gc.collect().
            self.data_bytes, self.data_address = self._serialize_data()
        self._fully_initialized = True

    def records_source(self) -> str:
        """The file(s) the records come from, for error messages."""
        return repr(self.ann_file)

    def _class_name(self, class_id: int) -> str:
        classes = self._metainfo.get('classes', ())
        return str(classes[class_id]) if class_id < len(classes) else '?'

    @property
    def num_records(self) -> int:
        """Number of (class, image) records the episodes are drawn from."""
        self.full_init()
        if self.serialize_data:
            return len(self.data_address)
        return len(self.data_list)

    def __len__(self) -> int:
        """Number of episodes (per test run or per training epoch)."""
        self.full_init()
        return self.num_episodes

    def get_episode_info(self, index: int) -> dict:
        """Describe episode ``index`` (before loading any file).

        Args:
            index (int): Any non-negative integer.

        Returns:
            dict: Query ``img_path``/``seg_map_path``, ``support_img_paths``,
            ``support_seg_map_paths``, ``seg_lut``, ``class_id``, ``shots``,
            ``episode_index`` and ``exif_orientation``.
        """
        if isinstance(index, bool) or not isinstance(
                index, (int, np.integer)) or index < 0:
            raise ValueError(f'Episode index must be a non-negative integer, '
                             f'but got {index!r}.')
        self.full_init()
        index = int(index)
        if self._replayed is not None:
            if index >= len(self._replayed[0]):
                raise ValueError(
                    f'{type(self).__name__}: episode {index} does not exist: '
                    'with replay_reference=True the episodes are the '
                    f"reference's {len(self._replayed[0])} (0.."
                    f'{len(self._replayed[0]) - 1}).')
            class_id = int(self._replayed[0][index])
            query_id = int(self._replayed[1][index])
            support_ids = [int(s) for s in self._replayed[2][index]]
        else:
            rng = np.random.default_rng([self.seed, index])
            class_id, query_id, support_ids = self.sample_episode(rng, index)
        return self.describe_episode(index, class_id, query_id, support_ids)

    def describe_episode(self, index: int, class_id: int, query_id: int,
                         support_ids: Sequence[int]) -> dict:
        """The pipeline's input for an episode of records (see
        :meth:`get_episode_info`)."""
        query = self.get_data_info(query_id)
        supports = [self.get_data_info(i) for i in support_ids]
        info = copy.copy(query)
        info.pop('sample_idx', None)
        info.update(
            class_id=int(class_id),
            shots=len(supports),
            episode_index=index,
            exif_orientation=self.EXIF_ORIENTATION,
            seg_lut=self.get_seg_lut(int(class_id)),
            support_img_paths=[s['img_path'] for s in supports],
            support_seg_map_paths=[s['seg_map_path'] for s in supports])
        return info

    def __getitem__(self, index: int) -> dict:
        """Load and transform episode ``index``.

        Args:
            index (int): Any non-negative integer.

        Returns:
            dict: The pipeline's output.
        """
        info = self.get_episode_info(index)
        if self.max_redraws:
            results = self.load_with_redraws(info, int(index))
        else:
            results = self.pipeline(info)
        if results is None:
            raise ValueError(
                f'The pipeline of {type(self).__name__} dropped episode '
                f'{index}; few-shot pipelines must not filter episodes.')
        return results

    def prepare_data(self, idx: int) -> dict:
        """Same as ``self[idx]``."""
        return self[idx]
