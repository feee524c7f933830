"""Tests of the synthetic COCO generator."""
import json
import os.path as osp

import cv2

from dcama_mm.datasets.coco20i import COCO_CATEGORIES
from dcama_mm.datasets.synthetic import make_synthetic_coco


def test_all_80_categories_in_both_splits(tmp_path):
    root = str(tmp_path)
    stats = make_synthetic_coco(
        root, images_per_class=(2, 2), image_size=(24, 32), seed=3)
    for split in ('train2014', 'val2014'):
        with open(osp.join(root, 'annotations',
                           f'instances_{split}.json')) as f:
            data = json.load(f)
        assert [c['id'] for c in data['categories']] == \
            [i for i, _ in COCO_CATEGORIES]
        per_cat = {}
        for ann in data['annotations']:
            per_cat.setdefault(ann['category_id'], set()).add(ann['image_id'])
        assert len(per_cat) == 80
        assert min(len(v) for v in per_cat.values()) >= 1
        assert stats[f'{split}_images'] == len(data['images'])
        for im in data['images'][:5]:
            img = cv2.imread(osp.join(root, split, im['file_name']))
            assert img.shape == (im['height'], im['width'], 3)
            assert 24 <= min(img.shape[:2]) and max(img.shape[:2]) <= 32
