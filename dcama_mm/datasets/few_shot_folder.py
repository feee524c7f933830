# Copyright (c) dcama_mm contributors. All rights reserved.
"""Your own classes: a folder of class folders, each with images and masks."""
import logging
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.logging import print_log

from mmseg.registry import DATASETS
from .base_few_shot_dataset import BaseFewShotDataset
from .transforms.image_modes import FileSize, image_file_size

SPLITS = ('train', 'val', 'test')
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


@DATASETS.register_module()
class FewShotFolderDataset(BaseFewShotDataset):
    """Few-shot episodes from a folder of class folders.

    The layout people have for their own classes::

        data_root/
        ├── <class A>/img1.jpg, img1_mask.png, img2.png, img2_mask.png, ...
        ├── <class B>/...
        └── (optional) train.txt, val.txt, test.txt   one class per line

    Every image (a file with an image ending that is not a mask) needs its
    mask: the image's stem + ``mask_suffix`` (default ``'_mask.png'``), a
    binary mask read by the binary-mask rule
    (:mod:`~dcama_mm.datasets.transforms.binary_mask`: 0/1 or 0/255) of
    the image's size as displayed (EXIF orientation applied: a phone
    photo stored sideways takes a mask of its upright size). The classes
    of each split come from the list files ``split_files`` when given,
    otherwise from a random split of the sorted class folders by
    ``split_ratios`` (train, val, test) with ``split_seed``, the same on
    every machine. ``metainfo['classes']`` are
    all class folders, sorted.

    Episodes follow :class:`BaseFewShotDataset`: class-uniform in training,
    one episode per image in testing (``one_episode_per_image``), as
    FSS-1000 is tested.

    The folder is checked when the dataset is built: a missing mask, a mask
    of another size than its image, an empty class folder, a class listed
    but absent, two images of one stem (``a.jpg`` and ``a.png``: one mask
    ``a_mask.png`` for both) give an error naming the files; a class with fewer
    than ``shots + 1`` images is skipped with a warning naming its folder.

    Args:
        split (str): 'train', 'val' or 'test'. Defaults to 'test'.
        shots (int): Supports per episode (K >= 1). Defaults to 1.
        mask_suffix (str): Mask file name = image stem + this. Defaults to
            '_mask.png'.
        split_files (dict, optional): ``{split: list file}`` relative to
            ``data_root`` (each line a class folder name). Defaults to None.
        split_ratios (Sequence[float]): Fractions of the classes for train,
            val and test when there are no list files. Defaults to
            (0.6, 0.2, 0.2).
        split_seed (int): Seed of that split. Defaults to 0.
        one_episode_per_image (bool, optional): Defaults to None: True in
            test mode.
        num_episodes (int, optional): Episodes per run or epoch. Defaults to
            None: one per image with ``one_episode_per_image``, else as
            :class:`BaseFewShotDataset`.
        seed (int): Seed of the episodes. Defaults to 0.
        data_root (str): The folder of class folders. Defaults to ''.
        pipeline (Sequence[dict | Callable]): Episode transforms.
            Defaults to ().
        test_mode (bool, optional): Defaults to None: ``split != 'train'``.
        **kwargs: Other arguments of :class:`BaseFewShotDataset`.
    """

    METAINFO = dict(classes=())

    def __init__(self,
                 split: str = 'test',
                 shots: int = 1,
                 mask_suffix: str = '_mask.png',
                 split_files: Optional[Dict[str, str]] = None,
                 split_ratios: Sequence[float] = (0.6, 0.2, 0.2),
                 split_seed: int = 0,
                 one_episode_per_image: Optional[bool] = None,
                 num_episodes: Optional[int] = None,
                 seed: int = 0,
                 data_root: str = '',
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 test_mode: Optional[bool] = None,
                 **kwargs) -> None:
        if split not in SPLITS:
            raise ValueError(f'FewShotFolderDataset: `split` must be one of '
                             f'{SPLITS}, but got {split!r}.')
        if split_files is not None and (not isinstance(split_files, dict)
                                        or split not in split_files):
            raise ValueError(
                'FewShotFolderDataset: `split_files` must be a dict with a '
                f'list file for {split!r}, got {split_files!r}.')
        ratios = tuple(float(r) for r in split_ratios)
        if len(ratios) != 3 or min(ratios) < 0 or abs(sum(ratios) - 1) > 1e-6:
            raise ValueError(
                'FewShotFolderDataset: `split_ratios` must be 3 fractions '
                f'(train, val, test) summing to 1, got {split_ratios!r}.')
        if not mask_suffix or '/' in mask_suffix:
            raise ValueError('FewShotFolderDataset: `mask_suffix` must be a '
                             f'file-name ending, got {mask_suffix!r}.')
        self.split = split
        self.mask_suffix = mask_suffix
        self.split_files = split_files
        self.split_ratios = ratios
        self.split_seed = split_seed
        test_mode = split != 'train' if test_mode is None else test_mode
        self.one_episode_per_image = test_mode \
            if one_episode_per_image is None else bool(one_episode_per_image)
        self._split_ids: List[int] = []
        super().__init__(
            shots=shots,
            num_episodes=num_episodes,
            seed=seed,
            ann_file='',
            data_root=data_root,
            pipeline=pipeline,
            test_mode=test_mode,
            **kwargs)

    # ------------------------------------------------------------------
    # classes and splits
    # ------------------------------------------------------------------
    def _class_folders(self) -> List[str]:
        if not osp.isdir(self.data_root):
            raise FileNotFoundError(
                f'FewShotFolderDataset: data_root {self.data_root!r} is not '
                'a folder; it must hold one folder per class.')
        names = sorted(
            n for n in os.listdir(self.data_root)
            if osp.isdir(osp.join(self.data_root, n))
            and not n.startswith('.'))
        if not names:
            raise ValueError(
                f'FewShotFolderDataset: {self.data_root!r} holds no class '
                'folder.')
        return names

    def _split_classes(self, names: List[str]) -> List[str]:
        """The class folders of ``self.split``."""
        if self.split_files is not None:
            path = osp.join(self.data_root, self.split_files[self.split])
            if not osp.isfile(path):
                raise FileNotFoundError(
                    f'FewShotFolderDataset: the class list {path!r} of split '
                    f'{self.split!r} does not exist.')
            listed = _read_class_list(path)
            absent = [n for n in listed if n not in names]
            if absent:
                raise FileNotFoundError(
                    f'FewShotFolderDataset: class(es) {absent[:5]} listed in '
                    f'{path!r} have no folder in {self.data_root!r}.')
            self._check_disjoint_lists(path, listed)
            return sorted(set(listed))
        self._warn_unused_lists()
        order = np.random.RandomState(self.split_seed).permutation(len(names))
        cut1 = int(round(self.split_ratios[0] * len(names)))
        cut2 = cut1 + int(round(self.split_ratios[1] * len(names)))
        part = {'train': order[:cut1], 'val': order[cut1:cut2],
                'test': order[cut2:]}[self.split]
        chosen = sorted(names[i] for i in part)
        if not chosen:
            raise ValueError(
                f'FewShotFolderDataset: split {self.split!r} gets no class of '
                f'the {len(names)} in {self.data_root!r} with split_ratios '
                f'{self.split_ratios}; add classes, change the ratios or give '
                'split_files.')
        return chosen

    def _warn_unused_lists(self) -> None:
        """Warn when ``data_root`` holds the list files of the README's
        layout (``train.txt``, ...) but ``split_files`` is not set: the
        split is then the random one, not theirs."""
        found = [f'{s}.txt' for s in SPLITS
                 if osp.isfile(osp.join(self.data_root, f'{s}.txt'))]
        if not found:
            return
        print_log(
            f'FewShotFolderDataset: {self.data_root!r} holds '
            f'{", ".join(found)}, but `split_files` is not set: the classes '
            f'are split at random by split_ratios={self.split_ratios} with '
            f'split_seed={self.split_seed}, not by these lists. To use them, '
            "set split_files=dict(train='train.txt', val='val.txt', "
            "test='test.txt') in each dataloader's dataset.",
            logger='current',
            level=logging.WARNING)

    def _check_disjoint_lists(self, path: str, listed: List[str]) -> None:
        """Refuse a class that the training list and the validation or
        test list (of ``split_files``, where they exist) both name:
        few-shot testing is on classes the model was not trained on.
        Validation and test may share classes (COCO-20i and PASCAL-5i
        validate on the test classes)."""
        for split, name in self.split_files.items():
            other = osp.join(self.data_root, name)
            if split == self.split or 'train' not in (split, self.split) \
                    or not osp.isfile(other):
                continue
            shared = sorted(set(listed) & set(_read_class_list(other)))
            if shared:
                raise ValueError(
                    f'FewShotFolderDataset: class(es) {shared[:5]} are '
                    f'listed both in {path!r} ({self.split}) and in '
                    f'{other!r} ({split}); the splits must have no class in '
                    'common (a few-shot model is tested on classes it was '
                    'not trained on): list each class in one file.')

    def get_episode_class_ids(self) -> List[int]:
        """The split's classes (indices into the sorted class folders)."""
        if not self._split_ids:
            names = self._class_folders()
            self._metainfo['classes'] = tuple(names)
            self._split_ids = [
                names.index(n) for n in self._split_classes(names)
            ]
        return list(self._split_ids)

    def records_source(self) -> str:
        """The class folders, for error messages."""
        return f'the class folders of {self.data_root!r}'

    def get_seg_lut(self, class_id: int) -> None:
        """None: masks are binary (the binary-mask rule)."""
        return None

    # ------------------------------------------------------------------
    # records
    # ------------------------------------------------------------------
    def _class_records(self, class_id: int) -> List[dict]:
        name = self._metainfo['classes'][class_id]
        folder = osp.join(self.data_root, name)
        files = sorted(os.listdir(folder))
        names = set(files)
        images = [
            f for f in files if f.lower().endswith(IMG_EXTENSIONS)
            and not f.endswith(self.mask_suffix)
        ]
        if not images:
            raise ValueError(
                f'FewShotFolderDataset: the class folder {folder!r} holds no '
                f'image (images end with {", ".join(IMG_EXTENSIONS)}; masks '
                f'with {self.mask_suffix!r}).')
        _check_one_image_per_mask(folder, images, self.mask_suffix)
        records = []
        for img_name in images:
            img_path = osp.join(folder, img_name)
            mask_path = osp.join(folder,
                                 osp.splitext(img_name)[0] + self.mask_suffix)
            if osp.basename(mask_path) not in names:
                raise FileNotFoundError(
                    f'FewShotFolderDataset: the image {img_path!r} has no '
                    f'mask {mask_path!r} (mask = image stem + '
                    f'{self.mask_suffix!r}).')
            _check_mask_size(img_path, mask_path)
            records.append(
                dict(img_path=img_path, seg_map_path=mask_path,
                     class_id=class_id))
        if len(records) < self.shots + 1:
            # the base class skips the class and warns; name the folder
            print_log(
                f'FewShotFolderDataset: {folder!r} has {len(records)} '
                f'image(s), fewer than shots + 1 = {self.shots + 1}.',
                logger='current',
                level=logging.WARNING)
        return records

    def describe_episode(self, index: int, class_id: int, query_id: int,
                         support_ids: Sequence[int]) -> dict:
        """As :meth:`BaseFewShotDataset.describe_episode`, with
        ``support_masks_nonempty``: a support mask without foreground (a
        blank mask in a class folder) is refused by ``LoadEpisode``, naming
        it, rather than making an episode without an example (testing
        stops; training redraws it with ``max_redraws``)."""
        info = super().describe_episode(index, class_id, query_id,
                                        support_ids)
        info['support_masks_nonempty'] = True
        return info

    def load_data_list(self) -> List[dict]:
        """Check and list the images of the split's classes."""
        return [
            record for class_id in self.get_episode_class_ids()
            for record in self._class_records(class_id)
        ]

    def default_num_episodes(self) -> int:
        """One episode per image with ``one_episode_per_image``, else as
        :meth:`BaseFewShotDataset.default_num_episodes`."""
        if self.one_episode_per_image:
            return len(self._list_record_ids)
        return super().default_num_episodes()

    def sample_episode(self, rng: np.random.Generator,
                       index: int) -> Tuple[int, int, List[int]]:
        """One episode per image in testing, class-uniform otherwise."""
        if self.one_episode_per_image:
            return self.sample_episode_per_record(rng, index)
        return super().sample_episode(rng, index)


def _read_class_list(path: str) -> List[str]:
    """The class folder names of a list file, one per line."""
    with open(path, encoding='utf-8') as f:
        return [line.strip() for line in f if line.strip()]


def _check_one_image_per_mask(folder: str, images: Sequence[str],
                              mask_suffix: str) -> None:
    """Refuse two images of one stem (``a.jpg`` and ``a.png``): the mask
    name is the stem + ``mask_suffix``, so both would take the one mask
    ``a_mask.png`` and one of them would be paired with another image's
    mask."""
    seen: Dict[str, str] = {}
    for img_name in images:
        stem = osp.splitext(img_name)[0]
        if stem in seen:
            mask = stem + mask_suffix
            raise ValueError(
                f'FewShotFolderDataset: the class folder {folder!r} holds '
                f'the images {seen[stem]!r} and {img_name!r}, which would '
                f'share the one mask {mask!r} (mask = image stem + '
                f'{mask_suffix!r}). Rename one of them and give it its own '
                f'mask (e.g. {stem + "_2" + osp.splitext(img_name)[1]!r} '
                f'with {stem + "_2" + mask_suffix!r}), or remove it if it '
                'is a copy.')
        seen[stem] = img_name


def _file_size(path: str) -> FileSize:
    """The size of an image file from its header (no decoding)."""
    try:
        return image_file_size(path)
    except OSError as err:
        raise ValueError(f'FewShotFolderDataset: cannot read {path!r} as an '
                         f'image ({err}).') from err


def _check_mask_size(img_path: str, mask_path: str) -> None:
    """Raise unless the mask has the size of its image as displayed.

    Images and masks are read with their EXIF orientation applied
    (:mod:`~dcama_mm.datasets.transforms.image_modes`), so a phone photo
    stored sideways with an Orientation tag takes a mask of its upright
    size; a mask of its stored pixels is refused, saying so.
    """
    img, mask = _file_size(img_path), _file_size(mask_path)
    if mask.displayed == img.displayed:
        return
    rotated = img.stored != img.displayed
    shown = ' as displayed' if rotated else ''
    message = (
        f'FewShotFolderDataset: the mask {mask_path!r} is '
        f'{mask.displayed[0]}x{mask.displayed[1]} (h x w) but its image '
        f'{img_path!r} is {img.displayed[0]}x{img.displayed[1]}{shown}')
    if rotated:
        message += (
            f': the image carries an EXIF rotation (Orientation '
            f'{img.orientation}; its pixels are stored {img.stored[0]}x'
            f'{img.stored[1]} and shown turned by 90 degrees). Images are '
            'read as displayed, so the mask must match the image as '
            'displayed: draw it on the upright image (or rotate it to '
            'match), or save the image upright without the tag.')
    else:
        message += ': a mask must have the size of its image.'
    raise ValueError(message)
