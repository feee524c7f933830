"""Training episodes whose files cannot be read are redrawn
(``max_redraws``), deterministically; tests always stop.

Real files: a synthetic COCO converted by the real converter; an image is
overwritten with bytes no decoder reads, or deleted after the build.
"""
import logging
import os
import os.path as osp
import shutil

import pytest
import torch
from mmcv.transforms import BaseTransform
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from torch.utils.data import DataLoader

from mmseg.registry import TRANSFORMS

from dcama_mm.datasets import COCO20iDataset, EpisodeSampler
from .coco_helpers import PIPELINE, REPO


@pytest.fixture
def broken(coco_root, tmp_path):
    """A copy whose image of training episode 3's query is corrupt."""
    root = str(tmp_path / 'copy')
    shutil.copytree(coco_root, root)
    ds = COCO20iDataset(fold=0, split='train', data_root=root)
    bad = ds.get_episode_info(3)['img_path']
    with open(bad, 'wb') as f:
        f.write(b'\xff\xd8\xff not a jpeg')
    return root, bad


def _train(root, **kwargs):
    kwargs.setdefault('max_redraws', 3)
    return COCO20iDataset(
        fold=0, split='train', data_root=root, pipeline=PIPELINE, **kwargs)


def _paths(sample):
    return [sample.img_path, *sample.support_img_paths]


class _Records(logging.Handler):

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _warnings(fn):
    handler = _Records()
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        result = fn()
    finally:
        logger.removeHandler(handler)
    return result, handler.messages


def test_unreadable_episode_is_redrawn_and_logged(broken):
    root, bad = broken
    ds = _train(root)
    uses_bad = [i for i in range(len(ds))
                if bad in [ds.get_episode_info(i)['img_path'],
                           *ds.get_episode_info(i)['support_img_paths']]]
    assert 3 in uses_bad
    out, messages = _warnings(lambda: [ds[i] for i in uses_bad])
    assert ds.num_redrawn == len(uses_bad)
    assert len(messages) == len(uses_bad)
    assert all(osp.basename(bad) in m and 'substitute 1 of at most 3' in m
               for m in messages)
    assert messages[-1].endswith(f'so far: {len(uses_bad)}.')
    for i, result in zip(uses_bad, out):
        sample = result['data_samples']
        assert bad not in _paths(sample)
        # the substitute is the pure function of (seed, index, redraw)
        sub = ds.redraw_episode_info(i, 1)
        assert _paths(sample) == [sub['img_path'], *sub['support_img_paths']]
        assert sample.episode_index == i
    # another instance (a resumed run, another worker or rank) redraws the
    # same substitute, pixel for pixel
    again = _train(root)[3]
    assert torch.equal(again['inputs'], out[uses_bad.index(3)]['inputs'])
    # readable episodes are untouched
    clean = next(i for i in range(len(ds)) if i not in uses_bad)
    fresh = COCO20iDataset(fold=0, split='train', data_root=root,
                           pipeline=PIPELINE)
    assert torch.equal(ds[clean]['inputs'], fresh[clean]['inputs'])


def test_workers_load_the_same_redrawn_episodes(broken):
    root, bad = broken

    def epoch(num_workers):
        ds = _train(root, num_episodes=24)
        sampler = EpisodeSampler(ds, train=True)
        sampler.set_epoch(1)
        loader = DataLoader(ds, batch_size=4, sampler=sampler,
                            num_workers=num_workers, collate_fn=pseudo_collate)
        return [(s.episode_index, _paths(s), inp)
                for batch in loader
                for s, inp in zip(batch['data_samples'], batch['inputs'])]

    single, workers = epoch(0), epoch(2)
    assert [e[:2] for e in single] == [e[:2] for e in workers]
    assert all(torch.equal(a[2], b[2]) for a, b in zip(single, workers))
    assert all(bad not in e[1] for e in single)


def test_without_redraws_the_error_names_the_file(broken):
    root, bad = broken
    ds = _train(root, max_redraws=0)
    with pytest.raises(ValueError, match=osp.basename(bad)):
        ds[3]


def test_too_many_unreadable_files_stop(coco_root, tmp_path):
    root = str(tmp_path / 'copy')
    shutil.copytree(coco_root, root)
    ds = _train(root, max_redraws=2)
    for name in os.listdir(osp.join(root, 'train2014')):
        os.remove(osp.join(root, 'train2014', name))  # after the build
    with pytest.raises(FileNotFoundError,
                       match=r'episode 5 and its 2 redraw\(s\) cannot be '
                       r'loaded.*train2014.*max_redraws'):
        ds[5]
    assert ds.num_redrawn == 2


def test_tests_always_stop(broken):
    root, bad = broken
    with pytest.raises(ValueError, match='max_redraws=2.*for training'):
        COCO20iDataset(fold=0, split='test', data_root=root, max_redraws=2)
    with pytest.raises(ValueError, match='integer >= 0'):
        _train(root, max_redraws=-1)
    with pytest.raises(ValueError, match='check_files'):
        _train(root, check_files='no')


@TRANSFORMS.register_module(force=True)
class _FailingTransform(BaseTransform):
    """A transform after loading that fails: not a file error."""

    def transform(self, results):
        raise ValueError('a bug in a later transform')


def test_errors_of_other_transforms_are_not_redrawn(coco_root):
    ds = COCO20iDataset(
        fold=0, split='train', data_root=coco_root, max_redraws=3,
        pipeline=[dict(type='LoadEpisode'), dict(type='_FailingTransform')])
    with pytest.raises(ValueError, match='a bug in a later transform'):
        ds[0]
    assert ds.num_redrawn == 0


@pytest.mark.parametrize('dataset', ['coco20i', 'pascal5i', 'fss1000',
                                     'few_shot_folder'])
def test_train_configs_redraw_and_tests_do_not(dataset):
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'datasets', f'{dataset}.py'))
    assert cfg.train_dataloader.dataset.max_redraws == 3
    for split in ('val_dataloader', 'test_dataloader'):
        assert cfg[split].dataset.get('max_redraws', 0) == 0
