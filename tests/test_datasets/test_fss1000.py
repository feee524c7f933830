# Copyright (c) dcama_mm contributors. All rights reserved.
"""Tests of FSS1000Dataset on a synthetic FSS-1000 in the real format."""
import os
import os.path as osp
from functools import partial

import numpy as np
import pytest
from mmengine.logging import MMLogger
from PIL import Image

from mmseg.registry import DATASETS

import dcama_mm  # noqa: F401  (registers the dataset and transforms)
from dcama_mm.datasets import FSS1000Dataset
from dcama_mm.datasets.synthetic import make_synthetic_fss1000
from .episode_helpers import PIPELINE, build_unserialised, copy_data_root

_dataset = partial(build_unserialised, FSS1000Dataset)


@pytest.fixture(scope='module')
def fss(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('fss'))
    # Class names are written unsorted to check the reference's sorting.
    info = make_synthetic_fss1000(root, num_classes=(3, 2, 2), seed=1)
    with open(osp.join(root, 'splits', 'trn.txt'), 'w') as f:
        f.write('synth_002\nsynth_000\nsynth_001\n')
    return info


def test_classes_and_splits(fss):
    names = tuple(f'synth_{i:03d}' for i in range(7))
    for split, ids in (('train', [0, 1, 2]), ('val', [3, 4]),
                       ('test', [5, 6])):
        dataset = _dataset(data_root=fss['data_root'], split=split)
        assert dataset.metainfo['classes'] == names
        assert dataset.metainfo['episode_class_ids'] == ids
        assert dataset.num_records == 5 * len(ids)
        assert dataset.test_mode == (split != 'train')
    train = _dataset(data_root=fss['data_root'], split='train')
    assert len(train) == 15 and not train.one_episode_per_image


def test_test_split_has_one_episode_per_image(fss):
    dataset = _dataset(data_root=fss['data_root'], shots=3)
    assert len(dataset) == 10
    queries = []
    for index in range(len(dataset)):
        info = dataset.get_episode_info(index)
        class_dir = osp.dirname(info['img_path'])
        class_name = osp.basename(class_dir)
        assert dataset.metainfo['classes'][info['class_id']] == class_name
        assert info['seg_map_path'] == info['img_path'][:-4] + '.png'
        supports = info['support_img_paths']
        assert len(set(supports)) == 3 and info['img_path'] not in supports
        assert all(osp.dirname(s) == class_dir for s in supports)
        assert info['seg_lut'] is None  # the binary-mask rule
        queries.append(info['img_path'])
    # Every image is the query exactly once, classes in order, names sorted.
    expected = [
        osp.join(fss['data_root'], c, f'{n}.jpg') for c in
        ('synth_005', 'synth_006') for n in sorted(str(i) for i in range(1, 6))
    ]
    assert [osp.normpath(q) for q in queries] == [
        osp.normpath(e) for e in expected
    ]
    assert dataset.get_episode_info(10)['img_path'] == queries[0]


def test_episodes_are_deterministic(fss):
    def episodes(dataset):
        return [(dataset.get_episode_info(i)['img_path'],
                 dataset.get_episode_info(i)['support_img_paths'])
                for i in range(20)]

    for split in ('test', 'train'):
        kwargs = dict(data_root=fss['data_root'], split=split, shots=2)
        a = _dataset(seed=2, serialize_data=True, **kwargs)
        b = _dataset(seed=2, **kwargs)
        c = _dataset(seed=3, **kwargs)
        assert episodes(a) == episodes(b)
        assert episodes(a) != episodes(c)


def test_pipeline_masks(fss):
    dataset = DATASETS.build(
        dict(
            type='FSS1000Dataset',
            data_root=fss['data_root'],
            split='val',
            shots=2,
            pipeline=PIPELINE))
    for index in (0, 7):
        out = dataset[index]
        sample = out['data_samples']
        info = dataset.get_episode_info(index)
        raw = np.array(Image.open(info['seg_map_path']))
        np.testing.assert_array_equal(sample.ori_gt_sem_seg.data[0].numpy(),
                                      (raw >= 128).astype(np.int64))
        assert tuple(sample.gt_sem_seg.data.shape) == (1, 40, 40)
        assert tuple(sample.support_imgs.shape) == (2, 3, 40, 40)
        masks = sample.support_masks
        assert tuple(masks.shape) == (2, 40, 40) and masks.sum() > 0
        assert sample.class_id in (3, 4)


def test_bad_options(fss):
    with pytest.raises(ValueError, match='split'):
        _dataset(data_root=fss['data_root'], split='trn')
    with pytest.raises(ValueError, match='shots'):
        _dataset(data_root=fss['data_root'], shots=0)
    with pytest.raises(ValueError, match='shots'):
        _dataset(data_root=fss['data_root'], shots=5)  # 5 images


def test_missing_and_malformed_lists(fss, tmp_path):
    root = copy_data_root(fss['data_root'], tmp_path, 'fss')
    os.remove(osp.join(root, 'splits', 'val.txt'))
    # All three lists fix the class indices, even for the test split.
    with pytest.raises(FileNotFoundError, match=r'val\.txt'):
        _dataset(data_root=root, split='test')
    with open(osp.join(root, 'splits', 'val.txt'), 'w') as f:
        f.write('synth_003\nsome/where\n')
    with pytest.raises(ValueError, match=r"entry 2 .*val\.txt"):
        _dataset(data_root=root, split='test')
    with open(osp.join(root, 'splits', 'val.txt'), 'w') as f:
        f.write('synth_003\nsynth_005\n')
    with pytest.raises(ValueError, match='synth_005'):
        _dataset(data_root=root, split='test')
    with open(osp.join(root, 'splits', 'val.txt'), 'w') as f:
        f.write('synth_003\nsynth_099\n')
    with pytest.raises(FileNotFoundError, match='synth_099'):
        _dataset(data_root=root, split='val')


def test_missing_and_corrupt_files(fss, tmp_path):
    root = copy_data_root(fss['data_root'], tmp_path, 'fss')
    with open(osp.join(root, 'synth_005', '2.jpg'), 'wb') as f:
        f.write(b'\x00' * 10)
    dataset = _dataset(data_root=root, pipeline=PIPELINE)
    with pytest.raises(ValueError, match=r'synth_005.2\.jpg'):
        dataset[1]  # query 2.jpg (sorted names 1, 2, ...)
    os.remove(osp.join(root, 'synth_006', '3.png'))
    with pytest.raises(FileNotFoundError, match=r'synth_006.3\.png'):
        _dataset(data_root=root)


def test_small_classes_are_skipped_with_a_warning(fss, tmp_path):
    root = copy_data_root(fss['data_root'], tmp_path, 'fss')
    for n in (2, 3, 4, 5):
        os.remove(osp.join(root, 'synth_006', f'{n}.jpg'))
    log_file = tmp_path / 'warn.log'
    logger = MMLogger.get_instance(
        'test_fss1000_small', log_file=str(log_file))
    dataset = _dataset(data_root=root, shots=1)
    for handler in logger.handlers:
        handler.flush()
    assert dataset.metainfo['episode_class_ids'] == [5]
    assert len(dataset) == 5
    assert 'class 6 (synth_006)' in log_file.read_text()


def test_base_config_builds(fss):
    from mmengine.config import Config
    cfg = Config.fromfile(
        osp.join(
            osp.dirname(__file__), '..', '..', 'configs', '_base_',
            'datasets', 'fss1000.py'))
    for name, split in (('train_dataloader', 'train'),
                        ('val_dataloader', 'val'),
                        ('test_dataloader', 'test')):
        dataset_cfg = cfg[name].dataset
        dataset_cfg.update(data_root=fss['data_root'], serialize_data=False)
        dataset_cfg.pipeline[1].scale = (40, 40)
        dataset = DATASETS.build(dataset_cfg)
        assert dataset.split == split
        assert len(dataset) == (15 if split == 'train' else 10)
        out = dataset[0]
        assert tuple(out['inputs'].shape) == (3, 40, 40)
    assert cfg.test_evaluator.type == 'FewShotIoUMetric'
