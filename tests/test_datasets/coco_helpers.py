"""Helpers of the COCO-20i tests: tiny synthetic COCO + conversion."""
import importlib.util
import json
import os.path as osp
import sys
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np

from dcama_mm.datasets.synthetic import make_synthetic_coco

REPO = Path(__file__).resolve().parents[2]

#: The dataset tests' pipeline: 24x24 episodes.
PIPELINE = (dict(type='LoadEpisode'), dict(type='ResizeEpisode', scale=24),
            dict(type='PackFewShotInputs'))


def load_converter() -> ModuleType:
    """Import tools/dataset_converters/coco20i.py as a module."""
    path = REPO / 'tools' / 'dataset_converters' / 'coco20i.py'
    spec = importlib.util.spec_from_file_location('coco20i_converter', path)
    if spec.name in sys.modules:
        return sys.modules[spec.name]
    module = importlib.util.module_from_spec(spec)
    # registered so that worker processes can unpickle its functions
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def make_converted_coco(root: str,
                        num_classes: int = 8,
                        images_per_class=(5, 5),
                        image_size=(32, 48),
                        nproc: int = 1,
                        seed: int = 0) -> None:
    """Write a synthetic COCO under ``root`` and convert both splits."""
    make_synthetic_coco(
        root,
        num_classes=num_classes,
        images_per_class=images_per_class,
        image_size=image_size,
        seed=seed)
    converter = load_converter()
    for split in converter.SPLITS:
        converter.convert_split(root, split, osp.join(root, 'annotations_fss'),
                                nproc=nproc)


def load_index(root: str, split: str, suffix: str = '') -> dict:
    path = osp.join(root, 'annotations_fss',
                    f'{split}_class_index{suffix}.json')
    with open(path) as f:
        return json.load(f)


def class_mask(root: str, index: dict, class_id: int,
               img_name: str) -> np.ndarray:
    """The class mask of an image as the dataset reads it (0/1)."""
    override = index['multilabel_masks'].get(str(class_id), {}).get(img_name)
    stem = osp.splitext(osp.basename(img_name))[0]
    path = osp.join(root, override or f"{index['mask_dir']}/{stem}.png")
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    return (label == class_id + 1).astype(np.uint8)
