"""``tools/dataset_converters/coco20i.py --use-label-pngs``: the reference's
layout (label PNGs + split pickles) used as it is."""
import json
import os
import os.path as osp
import pickle

import cv2
import numpy as np
import pytest

from dcama_mm.datasets import COCO20iDataset
from .coco_helpers import load_converter

converter = load_converter()

#: (image stem, classes it holds); class c is drawn as c + 1.
VAL = [(f'COCO_val2014_{i:012d}', classes) for i, classes in enumerate(
    [(0, ), (0, 4), (4, ), (0, 8), (4, 8), (1, )], start=1)]
TRAIN = [(f'COCO_train2014_{i:012d}', classes) for i, classes in enumerate(
    [(1, ), (1, 2), (2, ), (2, 3)], start=1)]


def _write_split(root, image_dir, items):
    os.makedirs(osp.join(root, image_dir), exist_ok=True)
    os.makedirs(osp.join(root, 'annotations', image_dir), exist_ok=True)
    for n, (stem, classes) in enumerate(items):
        label = np.zeros((12, 16), np.uint8)
        for k, c in enumerate(classes):
            label[2 + 4 * k:5 + 4 * k, n:n + 6] = c + 1
        label[0, 0] = 255  # a boundary pixel, as some label PNGs have
        cv2.imwrite(osp.join(root, 'annotations', image_dir, f'{stem}.png'),
                    label)
        img = np.full((12, 16, 3), 40 * n, np.uint8)
        cv2.imwrite(osp.join(root, image_dir, f'{stem}.jpg'), img)


@pytest.fixture
def ref_tree(tmp_path):
    """``COCO2014/{train2014,val2014}``, ``COCO2014/annotations/...`` PNGs
    and ``splits/coco/{trn,val}/fold0.pkl`` (lists in a non-sorted
    order)."""
    root = str(tmp_path / 'COCO2014')
    _write_split(root, 'val2014', VAL)
    _write_split(root, 'train2014', TRAIN)
    splits = tmp_path / 'splits' / 'coco'
    for ref, image_dir, items in (('val', 'val2014', VAL),
                                  ('trn', 'train2014', TRAIN)):
        lists = {c: [] for c in range(80)}
        for stem, classes in reversed(items):
            for c in classes:
                lists[c].append(f'{image_dir}/{stem}.jpg')
        (splits / ref).mkdir(parents=True)
        with open(splits / ref / 'fold0.pkl', 'wb') as f:
            pickle.dump(lists, f)
    return root, str(splits)


def test_ref_splits_over_label_pngs(ref_tree):
    root, splits = ref_tree
    summaries = converter.main(
        [root, '--use-label-pngs', 'annotations', '--ref-splits', splits])
    assert [s['split'] for s in summaries] == ['train2014', 'val2014']
    out = osp.join(root, 'annotations_fss')
    # no instances JSON, nothing rendered: only the index files
    assert sorted(os.listdir(out)) == [
        'train2014_class_index_fold0.json', 'val2014_class_index_fold0.json'
    ]
    with open(osp.join(out, 'val2014_class_index_fold0.json')) as f:
        index = json.load(f)
    assert index['mask_dir'] == 'annotations/val2014'
    assert index['classes'][0] == 'person' and len(index['classes']) == 80
    # the pickles' lists, in their order
    assert index['class_images'][4] == [
        'val2014/COCO_val2014_000000000005.jpg',
        'val2014/COCO_val2014_000000000003.jpg',
        'val2014/COCO_val2014_000000000002.jpg'
    ]
    ds = COCO20iDataset(
        fold=0, data_root=root, pipeline=[dict(type='LoadEpisode')],
        ann_file='annotations_fss/val2014_class_index_fold{fold}.json')
    assert ds.metainfo['episode_class_ids'] == [0, 4, 8]
    for i in range(10):
        ep = ds[i]
        c = ep['class_id']
        assert ep['seg_map_path'].startswith(
            osp.join(root, 'annotations', 'val2014'))
        label = cv2.imread(ep['seg_map_path'], cv2.IMREAD_UNCHANGED)
        expected = np.where(label == c + 1, 1, 0)
        expected[label == 255] = 255
        assert np.array_equal(ep['gt_seg_map'], expected)
    # existing output is kept unless --force
    with pytest.raises(FileExistsError, match='--force'):
        converter.main([root, '--use-label-pngs', 'annotations',
                        '--ref-splits', splits])
    converter.main([root, '--use-label-pngs', 'annotations', '--ref-splits',
                    splits, '--force'])


def test_scan_without_split_files(ref_tree):
    root, _ = ref_tree
    converter.main([root, '--use-label-pngs', 'annotations', '--splits',
                    'val2014'])
    with open(osp.join(root, 'annotations_fss',
                       'val2014_class_index.json')) as f:
        index = json.load(f)
    for c in (0, 1, 4, 8):
        assert index['class_images'][c] == [
            f'val2014/{stem}.jpg' for stem, classes in VAL if c in classes
        ]
    assert sum(map(len, index['class_images'])) == 9


def test_bad_label_png_input(ref_tree, tmp_path):
    root, splits = ref_tree
    os.makedirs(osp.join(root, 'empty', 'val2014'))
    with pytest.raises(FileNotFoundError,
                       match='--use-label-pngs empty: .*holds no .png'):
        converter.main([root, '--use-label-pngs', 'empty', '--splits',
                        'val2014'])
    with pytest.raises(FileNotFoundError,
                       match='--use-label-pngs nowhere: .*does not exist'):
        converter.main([root, '--use-label-pngs', 'nowhere'])
    os.remove(osp.join(root, 'annotations', 'val2014',
                       'COCO_val2014_000000000003.png'))
    with pytest.raises(FileNotFoundError,
                       match=r'fold0.pkl.*COCO_val2014_000000000003.jpg'):
        converter.main([root, '--use-label-pngs', 'annotations',
                        '--ref-splits', splits, '--splits', 'val2014'])
    with open(osp.join(splits, 'val', 'fold0.pkl'), 'wb') as f:
        pickle.dump(['not', 'a', 'dict'], f)
    with pytest.raises(ValueError, match='fold0.pkl.*malformed'):
        converter.main([root, '--use-label-pngs', 'annotations',
                        '--ref-splits', splits, '--splits', 'val2014'])
