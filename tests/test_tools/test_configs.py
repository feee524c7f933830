"""Every config in configs/ loads, names what it is and builds its parts."""
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config

import dcama_mm  # noqa: F401
from dcama_mm.engine.launch import check_model_types
from mmseg.registry import (DATA_SAMPLERS, DATASETS, HOOKS, METRICS,
                            OPTIM_WRAPPER_CONSTRUCTORS, VISUALIZERS)
from tests.test_tools.tiny_project import REPO_ROOT

CONFIGS = sorted(glob.glob(osp.join(REPO_ROOT, 'configs', 'dcama_*.py')))
BENCHMARK_CONFIGS = [c for c in CONFIGS if 'synthetic' not in c]
NAME = re.compile(r'dcama_(swinb|r50|r101)_(coco|pascal|fss|custom)'
                  r'(?:_fold(\d))?(_5shot)?\.py$')


def test_card_configs_exist():
    names = {osp.basename(c) for c in CONFIGS}
    assert 'dcama_swinb_coco_fold0.py' in names
    assert 'dcama_synthetic_demo.py' in names
    for fold in range(4):
        for bb in ('swinb', 'r50', 'r101'):
            assert f'dcama_{bb}_coco_fold{fold}.py' in names
            assert f'dcama_{bb}_coco_fold{fold}_5shot.py' in names
        assert f'dcama_swinb_pascal_fold{fold}.py' in names
    assert 'dcama_swinb_fss.py' in names


@pytest.mark.parametrize(
    'path',
    BENCHMARK_CONFIGS,
    ids=[osp.basename(c) for c in BENCHMARK_CONFIGS])
def test_benchmark_config(path):
    match = NAME.search(path)
    assert match, f'unexpected config name {path}'
    backbone, benchmark, fold, five_shot = match.groups()
    cfg = Config.fromfile(path)

    # runtime: mmseg scope, dcama_mm imported, best checkpoint by mIoU
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports == dict(
        imports=['dcama_mm'], allow_failed_imports=False)
    ckpt_hook = cfg.default_hooks.checkpoint
    assert (ckpt_hook.save_best, ckpt_hook.rule) == ('mIoU', 'greater')
    assert HOOKS.get(cfg.default_hooks.visualization.type) is not None
    assert VISUALIZERS.get(cfg.visualizer.type) is not None
    backends = [b['type'] for b in cfg.visualizer.vis_backends]
    assert backends == ['LocalVisBackend', 'TensorboardVisBackend']

    # the reference schedule
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.nesterov,
            opt.weight_decay) == ('SGD', 1e-3, 0.9, True, 1e-4)
    assert OPTIM_WRAPPER_CONSTRUCTORS.get(
        cfg.optim_wrapper.constructor) is not None
    assert cfg.train_cfg.type == 'EpochBasedTrainLoop'
    assert cfg.train_cfg.val_interval == 1
    assert all(s.type == 'ConstantLR' and s.factor == 1.0
               for s in cfg.param_scheduler)

    # model: registered parts, the backbone the name says
    check_model_types(cfg.model)
    expected = {'swinb': 'BlockFeatureSwin', 'r50': 'BlockFeatureResNet',
                'r101': 'BlockFeatureResNet'}[backbone]
    assert cfg.model.backbone.type == expected
    if backbone != 'swinb':
        assert cfg.model.backbone.depth == int(backbone[1:])

    # data: 12 x 384 x 384 1-shot training episodes, the fold of the name,
    # validation and test on different seeds, 5 shots where the name says
    assert cfg.train_dataloader.batch_size == 12
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[loader].dataset
        assert DATASETS.get(ds.type) is not None
        assert DATA_SAMPLERS.get(cfg[loader].sampler.type) is not None
        if fold is not None:
            assert ds.fold == int(fold), loader
        shots = 5 if five_shot and loader == 'test_dataloader' else 1
        assert ds.shots == shots, loader
        resize = [t for t in ds.pipeline if t.type == 'ResizeEpisode']
        assert tuple(resize[0].scale) == (384, 384)
    val, test = cfg.val_dataloader.dataset, cfg.test_dataloader.dataset
    # validation episodes differ from the test episodes (another seed, or
    # FSS-1000's separate validation classes)
    assert (val.seed, val.split) != (test.seed, test.split)
    assert METRICS.get(cfg.test_evaluator.type) is not None


def test_demo_config_is_small():
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'dcama_synthetic_demo.py'))
    check_model_types(cfg.model)
    assert cfg.model.backbone.init_cfg is None  # random, nothing to fetch
    assert cfg.train_dataloader.dataset.data_root == 'data/synthetic_coco'
    assert cfg.test_dataloader.dataset.fold == 0
    assert cfg.train_cfg.max_epochs <= 30


def test_demo_custom_config_fine_tunes_the_demo_head():
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'dcama_synthetic_demo_custom.py'))
    check_model_types(cfg.model)
    assert cfg.model.backbone.frozen and cfg.model.backbone.init_cfg is None
    assert cfg.load_from.endswith('.pth')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.type == 'FewShotFolderDataset'
        assert cfg[loader].dataset.data_root == 'data/synthetic_folders'
