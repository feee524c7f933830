"""The reference's training order (``shuffle_records=True``) for PASCAL-5i
and FSS-1000: every epoch takes each record once as query, in a fresh
order, split over ranks without duplicates."""
import json
from collections import Counter

import pytest
from mmengine.config import Config
from mmengine.dist import all_gather_object

import dcama_mm  # noqa: F401  (registers the datasets)
from dcama_mm.datasets import (EpisodeSampler, FSS1000Dataset,
                               PascalVOC5iDataset)
from dcama_mm.datasets.synthetic import (make_synthetic_fss1000,
                                         make_synthetic_pascal5i)
from .episode_helpers import build_unserialised, run_two_ranks


@pytest.fixture(scope='module')
def fss(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('fss'))
    return make_synthetic_fss1000(
        root, num_classes=(3, 1, 1), images_per_class=6,
        size_range=(16, 16), seed=0)


def _queries(dataset, indices):
    return [(dataset.get_episode_info(i)['img_path'],
             dataset.get_episode_info(i)['class_id']) for i in indices]


def _records(dataset):
    return Counter((r['img_path'], r['class_id'])
                   for r in (dataset.get_data_info(i)
                             for i in range(dataset.num_records)))


def test_each_record_once_per_epoch_in_a_fresh_order(fss, tmp_path):
    voc = make_synthetic_pascal5i(
        str(tmp_path / 'voc'), train_images_per_class=2,
        test_images_per_class=2, size_range=(16, 16), seed=1)
    for ds in (build_unserialised(FSS1000Dataset, data_root=fss['data_root'],
                                  split='train', shuffle_records=True),
               build_unserialised(PascalVOC5iDataset,
                                  data_root=voc['data_root'], split='train',
                                  shuffle_records=True)):
        assert not ds.one_episode_per_image if isinstance(
            ds, FSS1000Dataset) else not ds.query_from_list
        num = len(ds)
        assert num == ds.num_records  # an epoch = one pass over the records
        sampler = EpisodeSampler(ds, train=True)
        epochs = []
        for epoch in range(3):
            sampler.set_epoch(epoch)
            epochs.append(_queries(ds, list(sampler)))
            assert Counter(epochs[-1]) == _records(ds)
        assert epochs[0] != epochs[1] != epochs[2]
        # a pure function of (seed, epoch, index): a fresh dataset agrees
        again = type(ds)(**{
            k: getattr(ds, k)
            for k in ('split', 'shuffle_records', 'data_root')
        }, serialize_data=False)
        assert _queries(again, range(num, 2 * num)) == epochs[1]
        # supports: of the query's class, never the query
        for i in range(num):
            ep = ds.get_episode_info(i)
            assert ep['img_path'] not in ep['support_img_paths']


def test_class_uniform_stays_an_option(fss):
    ds = build_unserialised(FSS1000Dataset, data_root=fss['data_root'],
                            split='train')
    assert not ds.shuffle_records
    with pytest.raises(ValueError, match='both choose the query'):
        FSS1000Dataset(data_root=fss['data_root'], split='train',
                       shuffle_records=True, one_episode_per_image=True)
    with pytest.raises(ValueError, match='both choose the query'):
        PascalVOC5iDataset(split='train', shuffle_records=True,
                           query_from_list=True)


def test_shipped_training_configs_use_the_reference_order():
    from tests.test_tools.tiny_project import REPO_ROOT
    for name, key in (('pascal5i', 'shuffle_records'),
                      ('fss1000', 'shuffle_records')):
        cfg = Config.fromfile(f'{REPO_ROOT}/configs/_base_/datasets/'
                              f'{name}.py')
        assert cfg.train_dataloader.dataset[key] is True
        assert not cfg.test_dataloader.dataset.get(key, False)
    coco = Config.fromfile(f'{REPO_ROOT}/configs/_base_/datasets/coco20i.py')
    assert coco.train_dataloader.dataset.num_episodes is None


def _rank_worker(rank, ds, out_file):
    sampler = EpisodeSampler(ds, train=True)
    per_epoch = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        local = _queries(ds, list(sampler))
        per_epoch.append(all_gather_object(local))
    if rank == 0:
        with open(out_file, 'w') as f:
            json.dump(per_epoch, f)


def test_two_ranks_split_each_epoch_without_duplicates(fss, tmp_path):
    ds = FSS1000Dataset(data_root=fss['data_root'], split='train',
                        shuffle_records=True)
    assert len(ds) == 18  # even: no padding of the last rank
    out = str(tmp_path / 'ranks.json')
    run_two_ranks(_rank_worker, tmp_path, ds, out)
    with open(out) as f:
        per_epoch = json.load(f)
    for epoch, (rank0, rank1) in enumerate(per_epoch):
        assert len(rank0) == len(rank1) == 9
        both = [tuple(q) for q in rank0 + rank1]
        assert Counter(both) == _records(ds)  # every record exactly once
        single = EpisodeSampler(ds, train=True)
        single.set_epoch(epoch)
        assert sorted(both) == sorted(_queries(ds, list(single)))
