# Copyright (c) dcama_mm contributors. All rights reserved.
"""Tests of PascalVOC5iDataset on a synthetic PASCAL-5i in the real format."""
import os.path as osp
import shutil
from functools import partial

import numpy as np
import pytest
from mmengine.logging import MMLogger
from PIL import Image

from mmseg.registry import DATASETS

import dcama_mm  # noqa: F401  (registers the dataset and transforms)
from dcama_mm.datasets import PascalVOC5iDataset
from dcama_mm.datasets.pascal5i import parse_fold_list, pascal5i_fold_classes
from dcama_mm.datasets.synthetic import make_synthetic_pascal5i
from .episode_helpers import PIPELINE, build_unserialised, copy_data_root

_dataset = partial(build_unserialised, PascalVOC5iDataset)


@pytest.fixture(scope='module')
def voc(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('voc'))
    return make_synthetic_pascal5i(root, seed=3)


def test_fold_classes():
    for fold in range(4):
        test = pascal5i_fold_classes(fold, 'test')
        train = pascal5i_fold_classes(fold, 'train')
        assert test == list(range(5 * fold, 5 * fold + 5))
        assert len(train) == 15 and not set(train) & set(test)
        assert sorted(train + test) == list(range(20))


def test_parse_fold_list(tmp_path):
    path = tmp_path / 'fold0.txt'
    path.write_text('2007_000033__01\n2007_000042__20\n\n')
    assert parse_fold_list(str(path)) == [('2007_000033', 0),
                                          ('2007_000042', 19)]


@pytest.mark.parametrize('fold', [0, 3])
def test_splits_read_the_right_lists(voc, fold):
    test = _dataset(
        data_root=voc['data_root'], fold=fold, split='test')
    assert test.metainfo['episode_class_ids'] == list(
        range(5 * fold, 5 * fold + 5))
    assert test.metainfo['classes'][0] == 'aeroplane'
    assert test.test_mode and test.query_from_list and len(test) == 1000
    val_pairs = [(n, c) for n, c in voc['pairs']['val']
                 if 5 * fold <= c < 5 * fold + 5]
    assert test.num_records == len(val_pairs)

    train = _dataset(
        data_root=voc['data_root'], fold=fold, split='train')
    assert train.metainfo['episode_class_ids'] == pascal5i_fold_classes(
        fold, 'train')
    trn_pairs = [(n, c) for n, c in voc['pairs']['trn']
                 if not 5 * fold <= c < 5 * fold + 5]
    assert train.num_records == len(trn_pairs)
    assert not train.test_mode and not train.query_from_list
    assert len(train) == len(trn_pairs)


def test_test_episodes_follow_the_list(voc):
    dataset = _dataset(
        data_root=voc['data_root'], fold=1, shots=2, split='test', seed=5)
    pairs = sorted((n, c) for n, c in voc['pairs']['val'] if 5 <= c < 10)
    n = len(pairs)
    for index in (0, 1, n - 1, n, 999):
        info = dataset.get_episode_info(index)
        name, class_id = pairs[index % n]
        assert info['img_path'].endswith(f'JPEGImages/{name}.jpg')
        assert info['seg_map_path'].endswith(
            f'SegmentationClassAug/{name}.png')
        assert info['class_id'] == class_id and info['shots'] == 2
        class_images = {m for m, c in pairs if c == class_id}
        support_names = [
            osp.splitext(osp.basename(p))[0]
            for p in info['support_img_paths']
        ]
        assert len(set(support_names)) == 2
        assert name not in support_names
        assert set(support_names) <= class_images
        np.testing.assert_array_equal(
            np.nonzero(info['seg_lut'])[0], [class_id + 1, 255])


def test_episodes_are_deterministic(voc):
    kwargs = dict(data_root=voc['data_root'], fold=2, shots=2)

    def episodes(dataset, indices):
        return {
            i: (dataset.get_episode_info(i)['img_path'],
                tuple(dataset.get_episode_info(i)['support_img_paths']))
            for i in indices
        }

    for split in ('test', 'train'):
        a = _dataset(split=split, seed=7, serialize_data=True, **kwargs)
        b = _dataset(split=split, seed=7, **kwargs)
        c = _dataset(split=split, seed=8, **kwargs)
        forward = episodes(a, range(40))
        # Same episodes in any order and from another instance.
        assert episodes(b, reversed(range(40))) == forward
        other = episodes(c, range(40))
        assert other != forward
        if split == 'test':  # same queries, other supports
            assert [q for q, _ in other.values()] == \
                [q for q, _ in forward.values()]


def test_training_episodes_are_class_uniform(voc):
    dataset = _dataset(
        data_root=voc['data_root'], fold=0, shots=1, split='train')
    classes = [dataset.get_episode_info(i)['class_id'] for i in range(300)]
    counts = np.bincount(classes, minlength=20)
    assert counts[:5].sum() == 0  # never the fold's test classes
    assert (counts[5:] > 0).all()
    assert counts[5:].max() < 3 * counts[5:].min()


def test_pipeline_masks(voc):
    dataset = DATASETS.build(
        dict(
            type='PascalVOC5iDataset',
            data_root=voc['data_root'],
            fold=0,
            shots=1,
            split='test',
            pipeline=PIPELINE))
    seen_ignore = False
    for index in range(6):
        out = dataset[index]
        sample = out['data_samples']
        info = dataset.get_episode_info(index)
        raw = np.array(Image.open(info['seg_map_path']))
        ori = sample.ori_gt_sem_seg.data[0].numpy()
        expected = np.where(raw == 255, 255,
                            (raw == info['class_id'] + 1).astype(np.int64))
        np.testing.assert_array_equal(ori, expected)
        seen_ignore |= bool((ori == 255).any())
        assert tuple(out['inputs'].shape) == (3, 40, 40)
        gt = sample.gt_sem_seg.data
        assert tuple(gt.shape) == (1, 40, 40)
        assert set(np.unique(gt.numpy())) <= {0, 1, 255}
        assert (gt == 1).any()
        masks = sample.support_masks
        assert tuple(masks.shape) == (1, 40, 40)
        assert set(np.unique(masks.numpy())) <= {0.0, 1.0}  # 255 -> 0
        assert sample.class_id == info['class_id']
        assert sample.ori_shape == raw.shape
    assert seen_ignore  # the boundary band reaches the query masks


def test_bad_options(voc):
    root = voc['data_root']
    with pytest.raises(ValueError, match='fold'):
        _dataset(data_root=root, fold=4)
    with pytest.raises(ValueError, match='fold'):
        _dataset(data_root=root, fold=-1)
    with pytest.raises(ValueError, match='shots'):
        _dataset(data_root=root, shots=0)
    with pytest.raises(ValueError, match='split'):
        _dataset(data_root=root, split='val')


def test_missing_and_malformed_lists(voc, tmp_path):
    root = copy_data_root(voc['data_root'], tmp_path, 'voc')
    with pytest.raises(FileNotFoundError, match=r'nowhere.*val.*fold0\.txt'):
        _dataset(data_root=root, split_dir='nowhere')
    bad = osp.join(root, 'splits', 'val', 'fold1.txt')
    with open(bad, 'a') as f:
        f.write('2007_000033_01\n')
    with pytest.raises(ValueError, match=r'line \d+ .*fold1\.txt'):
        _dataset(data_root=root, fold=1)
    with open(bad, 'w') as f:
        f.write('2007_000033__21\n')
    with pytest.raises(ValueError, match=r'line 1 .*1\.\.20'):
        _dataset(data_root=root, fold=1)
    with open(bad, 'w') as f:
        f.write('\n')
    with pytest.raises(ValueError, match='empty'):
        _dataset(data_root=root, fold=1)


def test_missing_and_corrupt_images(voc, tmp_path):
    root = copy_data_root(voc['data_root'], tmp_path, 'voc')
    name, _ = voc['pairs']['val'][0]
    img = osp.join(root, 'JPEGImages', name + '.jpg')
    with open(img, 'wb') as f:
        f.write(b'not a jpeg')
    dataset = _dataset(
        data_root=root, fold=voc['pairs']['val'][0][1] // 5,
        pipeline=PIPELINE)
    index = next(i for i in range(1000)
                 if img in [dataset.get_episode_info(i)['img_path']] +
                 dataset.get_episode_info(i)['support_img_paths'])
    with pytest.raises(ValueError, match=name):
        dataset[index]
    seg = osp.join(root, 'SegmentationClassAug', name + '.png')
    shutil.move(seg, seg + '.bak')
    with pytest.raises(FileNotFoundError, match=f'{name}.png'):
        _dataset(
            data_root=root, fold=voc['pairs']['val'][0][1] // 5)


def test_small_classes_are_skipped_with_a_warning(voc, tmp_path):
    root = copy_data_root(voc['data_root'], tmp_path, 'voc')
    # Class 6 keeps a single image in the fold-1 list.
    list_file = osp.join(root, 'splits', 'val', 'fold1.txt')
    lines = open(list_file).read().split()
    keep = [line for line in lines if not line.endswith('__07')]
    keep.append(next(line for line in lines if line.endswith('__07')))
    with open(list_file, 'w') as f:
        f.write('\n'.join(keep) + '\n')
    log_file = tmp_path / 'warn.log'
    logger = MMLogger.get_instance(
        'test_pascal5i_small', log_file=str(log_file))
    dataset = _dataset(data_root=root, fold=1, shots=1)
    for handler in logger.handlers:
        handler.flush()
    assert dataset.metainfo['episode_class_ids'] == [5, 7, 8, 9]
    assert {dataset.get_episode_info(i)['class_id']
            for i in range(50)} <= {5, 7, 8, 9}
    log = log_file.read_text()
    assert 'class 6 (car)' in log and 'skipped' in log
    with pytest.raises(ValueError, match='shots'):
        _dataset(data_root=root, fold=1, shots=50)


def test_base_config_builds(voc):
    from mmengine.config import Config
    cfg = Config.fromfile(
        osp.join(
            osp.dirname(__file__), '..', '..', 'configs', '_base_',
            'datasets', 'pascal5i.py'))
    for name, split, seed in (('train_dataloader', 'train', 0),
                              ('val_dataloader', 'test', 1),
                              ('test_dataloader', 'test', 0)):
        dataset_cfg = cfg[name].dataset
        dataset_cfg.update(data_root=voc['data_root'], serialize_data=False)
        dataset_cfg.pipeline[1].scale = (40, 40)
        dataset = DATASETS.build(dataset_cfg)
        assert (dataset.split, dataset.seed, dataset.fold) == (split, seed, 0)
        out = dataset[0]
        assert tuple(out['inputs'].shape) == (3, 40, 40)
        assert ('ori_gt_sem_seg' in out['data_samples']) == (split == 'test')
    assert cfg.test_evaluator.type == 'FewShotIoUMetric'
