"""Tests of tools/dataset_converters/coco20i.py."""
import json
import os
import os.path as osp
import pickle

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from dcama_mm.datasets import COCO20iDataset
from .coco_helpers import class_mask, load_converter, load_index

converter = load_converter()


def _check_against_pycocotools(root, split):
    coco = COCO(osp.join(root, 'annotations', f'instances_{split}.json'))
    index = load_index(root, split)
    cat_ids = sorted(coco.getCatIds())
    assert index['category_ids'] == cat_ids
    for img_id in coco.getImgIds():
        info = coco.loadImgs(img_id)[0]
        name = f"{split}/{info['file_name']}"
        for c, cat_id in enumerate(cat_ids):
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id, catIds=cat_id))
            expected = np.zeros((info['height'], info['width']), np.uint8)
            for ann in anns:
                expected |= coco.annToMask(ann)
            listed = name in index['class_images'][c]
            assert listed == bool(expected.any())
            if listed:
                np.testing.assert_array_equal(
                    class_mask(root, index, c, name), expected)


def test_masks_equal_union_of_ann_to_mask(coco_root):
    for split in converter.SPLITS:
        _check_against_pycocotools(coco_root, split)
    # the synthetic data really exercises every COCO format
    data = json.load(
        open(osp.join(coco_root, 'annotations', 'instances_train2014.json')))
    kinds = {(type(a['segmentation']).__name__, a['iscrowd'])
             for a in data['annotations']}
    assert {('list', 0), ('dict', 0), ('dict', 1)} <= kinds


def _write_json(path, images, annotations, categories):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(
            dict(images=images, annotations=annotations,
                 categories=categories), f)


def _overlap_coco(root):
    """Two overlapping classes and a crowd region, on a 20x20 image."""
    h = w = 20
    crowd = np.zeros((h, w), np.uint8)
    crowd[16:19, 1:6] = 1
    flat = crowd.reshape(-1, order='F').astype(np.int64)
    runs = np.diff(np.flatnonzero(np.diff(np.r_[-1, flat, -1]) != 0))
    small = np.zeros((h, w), np.uint8)
    small[10:18, 10:18] = 1
    small_rle = mask_utils.encode(np.asfortranarray(small))
    anns = [
        dict(id=1, image_id=7, category_id=5, iscrowd=0,
             segmentation=[[2, 2, 14, 2, 14, 14, 2, 14]]),
        dict(id=2, image_id=7, category_id=3, iscrowd=0,
             segmentation=dict(size=[h, w],
                               counts=small_rle['counts'].decode())),
        dict(id=3, image_id=7, category_id=5, iscrowd=1,
             segmentation=dict(size=[h, w], counts=runs.tolist())),
    ]
    for split in converter.SPLITS:
        _write_json(
            osp.join(root, 'annotations', f'instances_{split}.json'),
            [dict(id=7, file_name=f'COCO_{split}_7.jpg', height=h, width=w)],
            anns, [dict(id=3, name='c3'), dict(id=5, name='c5')])


def test_overlapping_classes_and_crowd(tmp_path):
    root = str(tmp_path)
    _overlap_coco(root)
    summary = converter.main([root, '--splits', 'val2014', '--nproc', '1'])
    assert summary[0]['multilabel_masks'] == 1
    assert summary[0]['missing_images'] == 1  # no jpg written
    _check_against_pycocotools(root, 'val2014')
    index = load_index(root, 'val2014')
    # class 0 (id 3, 64 px) is drawn over class 1 (id 5, 144 + 15 px)
    assert list(index['multilabel_masks']) == ['1']
    name = 'val2014/COCO_val2014_7.jpg'
    assert class_mask(root, index, 0, name).sum() == 64
    label = class_mask(root, {**index, 'multilabel_masks': {}}, 1, name)
    assert class_mask(root, index, 1, name).sum() > label.sum()


def test_min_area_and_force(tmp_path):
    root = str(tmp_path)
    _overlap_coco(root)
    converter.main([root, '--splits', 'val2014', '--nproc', '1'])
    with pytest.raises(FileExistsError, match='--force'):
        converter.main([root, '--splits', 'val2014'])
    converter.main(
        [root, '--splits', 'val2014', '--min-area', '100', '--force'])
    index = load_index(root, 'val2014')
    assert index['class_images'] == [[], ['val2014/COCO_val2014_7.jpg']]
    assert index['min_area'] == 100


def test_workers_give_identical_output(tmp_path, coco_root):
    out = str(tmp_path / 'fss')
    converter.convert_split(coco_root, 'val2014', out, nproc=2)
    with open(osp.join(out, 'val2014_class_index.json')) as f:
        parallel = json.load(f)
    single = load_index(coco_root, 'val2014')
    # masks are written in another folder: compare the lists and the PNGs
    assert parallel['class_images'] == single['class_images']
    for name in os.listdir(osp.join(out, 'val2014')):
        a = open(osp.join(out, 'val2014', name), 'rb').read()
        b = open(osp.join(coco_root, 'annotations_fss', 'val2014', name),
                 'rb').read()
        assert a == b


def test_reference_split_files(tmp_path, coco_root):
    index = load_index(coco_root, 'val2014')
    ref = tmp_path / 'splits'
    chosen = {}
    for fold in range(4):
        # reversed order and a subset: the per-fold files keep them as given
        lists = {
            c: list(reversed(index['class_images'][c]))[:3]
            for c in range(8) if c % 4 == fold
        }
        chosen[fold] = lists
        (ref / 'val').mkdir(parents=True, exist_ok=True)
        with open(ref / 'val' / f'fold{fold}.pkl', 'wb') as f:
            pickle.dump(lists, f)
    out = str(tmp_path / 'out')
    converter.main([
        coco_root, '--splits', 'val2014', '--out-dir', out, '--ref-splits',
        str(ref), '--nproc', '1'
    ])
    for fold in range(4):
        with open(osp.join(out, f'val2014_class_index_fold{fold}.json')) as f:
            got = json.load(f)['class_images']
        for c in range(8):
            assert got[c] == chosen[fold].get(c, [])
    # the dataset samples only from the given lists
    ds = COCO20iDataset(
        fold=1,
        data_root=coco_root,
        ann_file=osp.join(out, 'val2014_class_index_fold{fold}.json'),
        num_episodes=50)
    allowed = {osp.join(coco_root, n) for c in chosen[1].values() for n in c}
    for i in range(50):
        ep = ds.get_episode_info(i)
        assert {ep['img_path'], *ep['support_img_paths']} <= allowed


def test_bad_inputs(tmp_path):
    root = str(tmp_path)
    with pytest.raises(FileNotFoundError, match='instances_val2014.json'):
        converter.main([root, '--splits', 'val2014'])
    path = tmp_path / 'annotations' / 'instances_val2014.json'
    path.parent.mkdir()
    path.write_text('{"images": [')
    with pytest.raises(ValueError, match='instances_val2014.json'):
        converter.main([root, '--splits', 'val2014'])
    path.write_text('{"images": []}')
    with pytest.raises(ValueError, match='annotations'):
        converter.main([root, '--splits', 'val2014'])
    bad = tmp_path / 'fold0.pkl'
    bad.write_bytes(b'not a pickle')
    with pytest.raises(ValueError, match='fold0.pkl'):
        converter.load_ref_split(str(bad), 80)
    bad.write_bytes(pickle.dumps({'person': ['x.jpg']}))
    with pytest.raises(ValueError, match='malformed'):
        converter.load_ref_split(str(bad), 80)


def test_package_functions(tmp_path):
    from dcama_mm.datasets.converters.coco20i_index import find_ref_splits
    from dcama_mm.datasets.converters.coco_masks import compose_label_map
    with pytest.raises(FileNotFoundError, match='trn/fold0.pkl'):
        find_ref_splits(str(tmp_path))
    (tmp_path / 'val').mkdir()
    (tmp_path / 'val' / 'fold2.pkl').write_bytes(pickle.dumps({}))
    assert find_ref_splits(str(tmp_path)) == {
        'val2014': {2: str(tmp_path / 'val' / 'fold2.pkl')}}
    big = np.zeros((4, 4), np.uint8)
    big[:, :3] = 1
    small = np.zeros((4, 4), np.uint8)
    small[1:3, 1:3] = 1
    label = compose_label_map({0: small, 5: big}, 4, 4)
    assert label[1, 1] == 1 and label[0, 0] == 6 and label[0, 3] == 0
    # the tool is the package's command line
    assert converter.convert_split.__module__ == \
        'dcama_mm.datasets.converters.coco20i'


def _edit_instances(root, split, edit):
    """Apply ``edit`` to a split's instances JSON; check that pycocotools
    still reads the edited file as COCO."""
    path = osp.join(root, 'annotations', f'instances_{split}.json')
    with open(path) as f:
        data = json.load(f)
    edit(data)
    with open(path, 'w') as f:
        json.dump(data, f)
    COCO(path)
    return path


def _warnings(fn):
    import logging

    from mmengine.logging import MMLogger
    records = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        result = fn()
    finally:
        logger.removeHandler(handler)
    return result, [r.getMessage() for r in records]


@pytest.mark.parametrize('key', ['height', 'width'])
def test_image_entry_without_size_is_named(tmp_path, key):
    root = str(tmp_path)
    _overlap_coco(root)
    path = _edit_instances(root, 'val2014',
                           lambda data: data['images'][0].pop(key))
    with pytest.raises(ValueError) as info:
        converter.main([root, '--splits', 'val2014', '--nproc', '1'])
    msg = str(info.value)
    assert path in msg
    assert "image entry #0 (id 7, file_name 'COCO_val2014_7.jpg')" in msg
    assert f"has no '{key}'" in msg


def test_bad_image_entries_are_named(tmp_path):
    root = str(tmp_path)
    _overlap_coco(root)

    def bad_size(data):
        data['images'][0]['height'] = '20'

    _edit_instances(root, 'val2014', bad_size)
    with pytest.raises(ValueError, match=r"id 7.*height '20'.*positive"):
        converter.main([root, '--splits', 'val2014', '--force'])

    def repeated(data):
        data['images'][0]['height'] = 20
        data['images'].append(dict(data['images'][0], file_name='b.jpg'))

    _edit_instances(root, 'val2014', repeated)
    with pytest.raises(ValueError,
                       match=r"entry #1 \(id 7, file_name 'b.jpg'\) repeats"):
        converter.main([root, '--splits', 'val2014', '--force'])


def test_annotations_of_unknown_images_are_counted(tmp_path):
    root = str(tmp_path)
    _overlap_coco(root)

    def orphans(data):
        for ann_id, img_id in ((10, 99), (11, 100)):
            data['annotations'].append(
                dict(id=ann_id, image_id=img_id, category_id=3, iscrowd=0,
                     segmentation=[[1, 1, 8, 1, 8, 8, 1, 8]]))

    path = _edit_instances(root, 'val2014', orphans)
    summaries, messages = _warnings(
        lambda: converter.main([root, '--splits', 'val2014', '--nproc', '1']))
    assert summaries[0]['dropped_annotations'] == 2
    dropped = [m for m in messages if 'dropped' in m]
    assert len(dropped) == 1
    assert path in dropped[0] and '2 of 5 annotation(s)' in dropped[0]
    assert 'annotation 10 -> image_id 99' in dropped[0]
    assert 'annotation 11 -> image_id 100' in dropped[0]
    # the known image's masks are still pycocotools' own
    _check_against_pycocotools(root, 'val2014')
    # nothing dropped: the count says so
    clean = converter.main([root, '--splits', 'train2014', '--nproc', '1'])
    assert clean[0]['dropped_annotations'] == 0
