# Copyright (c) dcama_mm contributors. All rights reserved.
"""COCO-20i: the 80 COCO classes in 4 interleaved folds."""
import json
import os.path as osp
from typing import Callable, List, Optional, Sequence, Tuple, Union

from mmengine import fileio

from mmseg.registry import DATASETS
from .base_few_shot_dataset import BaseFewShotDataset
from .reference_episodes import replay_class_uniform

#: COCO's 80 categories as ``(category id, name)``, in sorted-id order: the
#: class index of COCO-20i is the position in this tuple.
COCO_CATEGORIES: Tuple[Tuple[int, str], ...] = (
    (1, 'person'), (2, 'bicycle'), (3, 'car'), (4, 'motorcycle'),
    (5, 'airplane'), (6, 'bus'), (7, 'train'), (8, 'truck'), (9, 'boat'),
    (10, 'traffic light'), (11, 'fire hydrant'), (13, 'stop sign'),
    (14, 'parking meter'), (15, 'bench'), (16, 'bird'), (17, 'cat'),
    (18, 'dog'), (19, 'horse'), (20, 'sheep'), (21, 'cow'),
    (22, 'elephant'), (23, 'bear'), (24, 'zebra'), (25, 'giraffe'),
    (27, 'backpack'), (28, 'umbrella'), (31, 'handbag'), (32, 'tie'),
    (33, 'suitcase'), (34, 'frisbee'), (35, 'skis'), (36, 'snowboard'),
    (37, 'sports ball'), (38, 'kite'), (39, 'baseball bat'),
    (40, 'baseball glove'), (41, 'skateboard'), (42, 'surfboard'),
    (43, 'tennis racket'), (44, 'bottle'), (46, 'wine glass'), (47, 'cup'),
    (48, 'fork'), (49, 'knife'), (50, 'spoon'), (51, 'bowl'),
    (52, 'banana'), (53, 'apple'), (54, 'sandwich'), (55, 'orange'),
    (56, 'broccoli'), (57, 'carrot'), (58, 'hot dog'), (59, 'pizza'),
    (60, 'donut'), (61, 'cake'), (62, 'chair'), (63, 'couch'),
    (64, 'potted plant'), (65, 'bed'), (67, 'dining table'), (70, 'toilet'),
    (72, 'tv'), (73, 'laptop'), (74, 'mouse'), (75, 'remote'),
    (76, 'keyboard'), (77, 'cell phone'), (78, 'microwave'), (79, 'oven'),
    (80, 'toaster'), (81, 'sink'), (82, 'refrigerator'), (84, 'book'),
    (85, 'clock'), (86, 'vase'), (87, 'scissors'), (88, 'teddy bear'),
    (89, 'hair drier'), (90, 'toothbrush'))

#: Format tag of the class index files written by
#: ``tools/dataset_converters/coco20i.py``.
CLASS_INDEX_FORMAT = 'dcama_mm.coco20i_class_index'
NUM_FOLDS = 4

_SPLIT_IMAGE_DIRS = dict(train='train2014', test='val2014')


def coco20i_fold_classes(fold: int, split: str,
                         num_classes: int = 80) -> List[int]:
    """Class indices of a COCO-20i fold.

    Fold ``i`` tests on ``{i, i + 4, ..., i + 76}`` and trains on the other
    60 classes.

    Args:
        fold (int): The fold, 0-3.
        split (str): 'train' or 'test'.
        num_classes (int): Number of classes. Defaults to 80.

    Returns:
        list[int]: Ascending class indices.
    """
    if split == 'test':
        return [c for c in range(num_classes) if c % NUM_FOLDS == fold]
    return [c for c in range(num_classes) if c % NUM_FOLDS != fold]


@DATASETS.register_module()
class COCO20iDataset(BaseFewShotDataset):
    """COCO-20i few-shot segmentation dataset.

    The 80 COCO classes, indexed 0..79 in sorted category-id order, form 4
    folds: fold ``i`` tests on the 20 classes ``{i, i+4, ..., i+76}`` of
    ``val2014`` and trains on the other 60 classes of ``train2014``. An
    episode draws its class uniformly, the query uniformly among the class's
    images and ``shots`` distinct supports among the other images of the
    class (see :class:`BaseFewShotDataset`). A training epoch has, by
    default, as many episodes as the fold's training classes have distinct
    images (62040 for fold 0 of COCO 2014), as in the reference.

    With ``replay_reference=True`` the test episodes are the reference's
    (:func:`~dcama_mm.datasets.reference_episodes.replay_class_uniform`):
    the class uniform over the fold's 20 classes, the query and the supports
    over the class's list, in list order, supports possibly repeating each
    other. Use it with the index files converted from the reference's
    split files (``ann_file='annotations_fss/val2014_class_index_fold
    {fold}.json'``), whose lists keep the reference's order.

    It reads the output of ``tools/dataset_converters/coco20i.py``::

        data/coco/                       (data_root)
        ├── train2014/*.jpg, val2014/*.jpg
        └── annotations_fss/
            ├── train2014/<image stem>.png     class index + 1 per pixel
            ├── val2014/<image stem>.png
            ├── train2014_multilabel/<stem>_c<class>.png  (overlaps only)
            ├── train2014_class_index.json
            └── val2014_class_index.json

    A class index file is a JSON object with ``format``
    (``'dcama_mm.coco20i_class_index'``), ``classes`` (class names),
    ``mask_dir`` (folder of the label PNGs, relative to ``data_root``),
    ``class_images`` (per class, the images containing it, as paths
    relative to ``data_root``, e.g. ``'val2014/COCO_val2014_...jpg'``) and
    ``multilabel_masks`` (``{class index: {image: mask path}}`` for the
    pixels a label PNG cannot hold, where instances of several classes
    overlap; those masks store 0/``class index + 1``). The mask of an image
    for class ``c`` is its label PNG ``== c + 1``, or its multi-label mask.

    Args:
        fold (int): The fold, 0-3. Defaults to 0.
        shots (int): Support images per episode. Defaults to 1.
        split (str): 'train' (``train2014``, the fold's 60 training classes)
            or 'test' (``val2014``, the fold's 20 test classes). Validation
            uses 'test' with another ``seed``. Defaults to 'test'.
        ann_file (str): The class index file, relative to ``data_root``. A
            ``{fold}`` placeholder is filled with the fold (per-fold lists
            converted from the reference's split files). Defaults to '',
            meaning ``annotations_fss/train2014_class_index.json`` or
            ``annotations_fss/val2014_class_index.json``.
        num_episodes (int, optional): See :class:`BaseFewShotDataset`
            (1000 for testing, the fold's distinct training images for
            training). Defaults to None.
        seed (int): Seed of the episodes. Defaults to 0.
        data_root (str): The COCO root. Defaults to ''.
        pipeline (Sequence[dict | Callable]): Episode transforms.
            Defaults to ().
        test_mode (bool, optional): Defaults to None, meaning
            ``split == 'test'``.
        **kwargs: Other arguments of :class:`BaseFewShotDataset`.
    """

    METAINFO = dict(classes=tuple(name for _, name in COCO_CATEGORIES))
    # annotations on the stored pixels; the reference reads them unturned
    EXIF_ORIENTATION = False

    def __init__(self,
                 fold: int = 0,
                 shots: int = 1,
                 split: str = 'test',
                 ann_file: str = '',
                 num_episodes: Optional[int] = None,
                 seed: int = 0,
                 data_root: str = '',
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 test_mode: Optional[bool] = None,
                 **kwargs) -> None:
        if isinstance(fold, bool) or fold not in range(NUM_FOLDS):
            raise ValueError(
                f'COCO20iDataset: `fold` must be 0, 1, 2 or 3, but got '
                f'{fold!r}.')
        if split not in _SPLIT_IMAGE_DIRS:
            raise ValueError(
                "COCO20iDataset: `split` must be 'train' or 'test' (use "
                "'test' with another `seed` for validation), but got "
                f'{split!r}.')
        self.fold = fold
        self.split = split
        if not ann_file:
            ann_file = (f'annotations_fss/{_SPLIT_IMAGE_DIRS[split]}'
                        '_class_index.json')
        ann_file = ann_file.replace('{fold}', str(fold))
        super().__init__(
            shots=shots,
            num_episodes=num_episodes,
            seed=seed,
            ann_file=ann_file,
            data_root=data_root,
            pipeline=pipeline,
            test_mode=split == 'test' if test_mode is None else test_mode,
            **kwargs)

    def get_episode_class_ids(self) -> List[int]:
        """The fold's 20 test or 60 training classes."""
        return coco20i_fold_classes(self.fold, self.split,
                                    len(self._metainfo['classes']))

    def default_num_episodes(self) -> int:
        """1000 test episodes; a training epoch of one episode per distinct
        training image of the fold (the reference's epoch length)."""
        if self.test_mode:
            return 1000
        return len({record['img_path'] for record in self.data_list})

    def replay_reference_episodes(self) -> List[Tuple[int, int, List[int]]]:
        """The reference's COCO-20i test episodes (see the class doc)."""
        class_ids = list(self._episode_class_ids)
        episodes = replay_class_uniform(
            self.seed, class_ids,
            [self._reference_class_names(c) for c in class_ids],
            self.num_episodes, self.shots)
        return self._class_positions_to_records(episodes)

    def _load_index(self) -> dict:
        path = self.ann_file
        if not fileio.exists(path):
            raise FileNotFoundError(
                f'COCO20iDataset: the class index file {path!r} does not '
                'exist. Create it with `python tools/dataset_converters/'
                'coco20i.py <coco root>` or set `ann_file`/`data_root`.')
        try:
            index = json.loads(fileio.get_text(path))
        except (ValueError, UnicodeDecodeError) as err:
            raise ValueError(
                f'COCO20iDataset: the class index file {path!r} is not '
                f'valid JSON ({err}); re-run the converter with '
                '--force.') from err
        if not isinstance(index, dict) or index.get(
                'format') != CLASS_INDEX_FORMAT:
            raise ValueError(
                f'COCO20iDataset: {path!r} is not a class index written by '
                f'tools/dataset_converters/coco20i.py (expected "format": '
                f'"{CLASS_INDEX_FORMAT}").')
        classes = index.get('classes')
        class_images = index.get('class_images')
        multilabel = index.get('multilabel_masks', {})
        if not (isinstance(classes, list) and isinstance(class_images, list)
                and len(classes) == len(class_images) and classes
                and all(isinstance(x, list) for x in class_images)
                and isinstance(index.get('mask_dir'), str)
                and isinstance(multilabel, dict)):
            raise ValueError(
                f'COCO20iDataset: the class index file {path!r} is '
                'malformed: it needs "classes" and "class_images" lists of '
                'the same length, a "mask_dir" string and a '
                '"multilabel_masks" object; re-run the converter with '
                '--force.')
        return index

    def load_data_list(self) -> List[dict]:
        """Read the class index file into (class, image) records."""
        index = self._load_index()
        classes = tuple(index['classes'])
        self._metainfo['classes'] = classes
        root = self.data_root or ''
        mask_dir = index['mask_dir']
        wanted = set(self.get_episode_class_ids())
        data_list = []
        for class_id in sorted(wanted):
            overrides = index['multilabel_masks'].get(str(class_id), {})
            for img in index['class_images'][class_id]:
                stem = osp.splitext(osp.basename(img))[0]
                seg = overrides.get(img, f'{mask_dir}/{stem}.png')
                data_list.append(
                    dict(
                        img_path=osp.join(root, img),
                        seg_map_path=osp.join(root, seg),
                        class_id=class_id))
        return data_list
