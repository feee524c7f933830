"""Tests of COCO20iDataset, the episode scheme and the packed episodes."""
import json
import logging
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.dist import collect_results
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from torch.utils.data import DataLoader

from dcama_mm.datasets import COCO20iDataset, EpisodeSampler
from dcama_mm.datasets.coco20i import coco20i_fold_classes
from .coco_helpers import PIPELINE, load_index
from .episode_helpers import run_two_ranks

init_default_scope('mmseg')


def test_fold_classes():
    for fold in range(4):
        test = coco20i_fold_classes(fold, 'test')
        train = coco20i_fold_classes(fold, 'train')
        assert test == list(range(fold, 80, 4))
        assert len(test) == 20 and len(train) == 60
        assert sorted(test + train) == list(range(80))
    assert COCO20iDataset.METAINFO['classes'][0] == 'person'
    assert COCO20iDataset.METAINFO['classes'][79] == 'toothbrush'
    assert len(COCO20iDataset.METAINFO['classes']) == 80


def test_episodes(coco_root):
    index = load_index(coco_root, 'val2014')
    ds = COCO20iDataset(fold=1, shots=3, data_root=coco_root, seed=5)
    assert len(ds) == 1000
    assert ds.metainfo['episode_class_ids'] == [1, 5]
    assert len(ds.metainfo['classes']) == 8
    seen = set()
    for i in range(200):
        ep = ds.get_episode_info(i)
        c = ep['class_id']
        seen.add(c)
        pool = {osp.join(coco_root, n) for n in index['class_images'][c]}
        paths = [ep['img_path'], *ep['support_img_paths']]
        assert len(set(paths)) == 4 and set(paths) <= pool
        assert ep['episode_index'] == i and ep['shots'] == 3
        assert ep['seg_lut'][c + 1] == 1 and ep['seg_lut'].sum() == 1 + 255
    assert seen == {1, 5}
    # a pure function of (seed, index): a fresh dataset gives the same
    again = COCO20iDataset(fold=1, shots=3, data_root=coco_root, seed=5)
    other = COCO20iDataset(fold=1, shots=3, data_root=coco_root, seed=6)

    def key(d, i):
        ep = d.get_episode_info(i)
        return ep['img_path'], tuple(ep['support_img_paths'])

    keys = [key(ds, i) for i in range(50)]
    assert keys == [key(again, i) for i in range(50)]
    assert keys != [key(other, i) for i in range(50)]
    # indices beyond len() are valid (training epochs)
    assert key(ds, 10**6) == key(again, 10**6)


def test_train_split(coco_root):
    ds = COCO20iDataset(fold=0, split='train', data_root=coco_root)
    assert ds.metainfo['episode_class_ids'] == [1, 2, 3, 5, 6, 7]
    index = load_index(coco_root, 'train2014')
    # an epoch has one episode per distinct training image of the fold
    # (the reference's epoch length), not one per (class, image) pair
    images = {n for c in (1, 2, 3, 5, 6, 7) for n in index['class_images'][c]}
    assert len(ds) == len(images) == 14
    assert ds.num_records == sum(len(index['class_images'][c]) for c in
                                 (1, 2, 3, 5, 6, 7)) == 29
    assert all('train2014' in ds.get_episode_info(i)['img_path']
               for i in range(20))


def _episodes(loader):
    out = []
    for batch in loader:
        for inp, sample in zip(batch['inputs'], batch['data_samples']):
            out.append((sample.episode_index, sample.img_path, inp,
                        sample.support_imgs, sample.support_masks,
                        sample.gt_sem_seg.data))
    return out


def test_dataloader_workers_and_epochs(coco_root):
    ds = COCO20iDataset(
        fold=2, shots=2, data_root=coco_root, num_episodes=10,
        pipeline=PIPELINE)
    results = []
    for workers in (0, 2):
        sampler = EpisodeSampler(ds, train=True)
        loader = DataLoader(
            ds, batch_size=3, sampler=sampler, num_workers=workers,
            collate_fn=pseudo_collate)
        epochs = []
        for epoch in (0, 1):
            sampler.set_epoch(epoch)
            epochs.append(_episodes(loader))
        results.append(epochs)
    for (a, b) in zip(results[0], results[1]):
        assert len(a) == len(b) == 10
        for x, y in zip(a, b):
            assert x[:2] == y[:2]
            for tx, ty in zip(x[2:], y[2:]):
                assert torch.equal(tx, ty)
    e0, e1 = results[0]
    assert [x[0] for x in e0] == list(range(10))
    assert [x[0] for x in e1] == list(range(10, 20))


def _rank_worker(rank, ds, out_file):
    sampler = EpisodeSampler(ds, train=False)
    local = [(i, ds.get_episode_info(i)['img_path']) for i in sampler]
    assert len(local) == len(sampler)
    gathered = collect_results(local, len(ds), device='cpu')
    if rank == 0:
        with open(out_file, 'w') as f:
            json.dump(gathered, f)


def test_two_ranks_cover_the_one_rank_episodes(coco_root, tmp_path):
    ds = COCO20iDataset(fold=0, data_root=coco_root, num_episodes=7)
    single = [[i, ds.get_episode_info(i)['img_path']]
              for i in EpisodeSampler(ds)]
    assert [s[0] for s in single] == list(range(7))
    out = str(tmp_path / 'gathered.json')
    run_two_ranks(_rank_worker, tmp_path, ds, out)
    with open(out) as f:
        assert json.load(f) == single


def test_packed_episode(coco_root):
    ds = COCO20iDataset(
        fold=3, shots=2, data_root=coco_root, pipeline=PIPELINE)
    out = ds[4]
    ep = ds.get_episode_info(4)
    inputs, sample = out['inputs'], out['data_samples']
    assert inputs.dtype == torch.uint8 and inputs.shape == (3, 24, 24)
    assert sample.support_imgs.dtype == torch.uint8
    assert sample.support_imgs.shape == (2, 3, 24, 24)
    assert sample.support_masks.dtype == torch.float32
    assert sample.support_masks.shape == (2, 24, 24)
    assert set(sample.support_masks.unique().tolist()) <= {0.0, 1.0}
    assert sample.gt_sem_seg.data.dtype == torch.int64
    assert sample.gt_sem_seg.data.shape == (1, 24, 24)
    assert sample.class_id == ep['class_id'] in (3, 7)
    assert sample.shots == 2 and sample.episode_index == 4
    assert sample.img_path == ep['img_path']
    assert sample.support_img_paths == ep['support_img_paths']
    assert sample.img_shape == (24, 24)
    h, w = sample.ori_shape
    assert sample.ori_gt_sem_seg.data.shape == (1, h, w)
    assert (h, w) != (24, 24)
    # the original mask is the class's mask (label PNG == class + 1)
    import cv2
    label = cv2.imread(ep['seg_map_path'], cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(sample.ori_gt_sem_seg.data[0].numpy(),
                                  (label == ep['class_id'] + 1))
    assert sample.ori_gt_sem_seg.data.sum() > 0


def test_bad_options_and_files(coco_root, tmp_path):
    with pytest.raises(ValueError, match='fold'):
        COCO20iDataset(fold=4, data_root=coco_root)
    with pytest.raises(ValueError, match='shots'):
        COCO20iDataset(shots=0, data_root=coco_root)
    with pytest.raises(ValueError, match='split'):
        COCO20iDataset(split='val', data_root=coco_root)
    with pytest.raises(FileNotFoundError, match='nothere.json'):
        COCO20iDataset(data_root=coco_root, ann_file='nothere.json')
    bad = tmp_path / 'bad.json'
    bad.write_text('{"format": ')
    with pytest.raises(ValueError, match='bad.json'):
        COCO20iDataset(data_root=coco_root, ann_file=str(bad))
    bad.write_text(json.dumps(dict(format='dcama_mm.coco20i_class_index',
                                   classes=['a'], class_images={})))
    with pytest.raises(ValueError, match='malformed'):
        COCO20iDataset(data_root=coco_root, ann_file=str(bad))


def test_small_class_is_skipped_with_warning(coco_root, tmp_path):
    index = load_index(coco_root, 'val2014')
    index['class_images'][4] = index['class_images'][4][:1]
    path = tmp_path / 'index.json'
    path.write_text(json.dumps(index))
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        ds = COCO20iDataset(fold=0, data_root=coco_root, ann_file=str(path))
    finally:
        logger.removeHandler(handler)
    assert ds.metainfo['episode_class_ids'] == [0]
    assert any('class 4' in r.getMessage() and 'skipped' in r.getMessage()
               for r in records)
    assert {ds.get_episode_info(i)['class_id'] for i in range(30)} == {0}
    index['class_images'][0] = index['class_images'][0][:1]
    path.write_text(json.dumps(index))
    with pytest.raises(ValueError, match='no class'):
        COCO20iDataset(fold=0, data_root=coco_root, ann_file=str(path))


def test_missing_and_corrupt_images(coco_root, tmp_path):
    root = str(tmp_path / 'copy')
    shutil.copytree(coco_root, root)
    ds = COCO20iDataset(fold=0, data_root=root, pipeline=PIPELINE)
    ep = ds.get_episode_info(0)
    with open(ep['img_path'], 'wb') as f:
        f.write(b'\xff\xd8 corrupt')
    with pytest.raises(ValueError, match=osp.basename(ep['img_path'])):
        ds[0]
    os.remove(ep['img_path'])
    with pytest.raises(FileNotFoundError,
                       match=osp.basename(ep['img_path'])):
        ds[0]
    ep = ds.get_episode_info(1)
    os.remove(ep['seg_map_path'])
    with pytest.raises(FileNotFoundError,
                       match=osp.basename(ep['seg_map_path'])):
        ds[1]
