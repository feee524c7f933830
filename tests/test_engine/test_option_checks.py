"""Option typos and dead options fail with a message naming the option.

- unknown arguments of dcama_mm's components and unknown keys of the
  segmentor's ``train_cfg`` / ``test_cfg`` (``dcama_mm.utils.checks``);
- ``--cfg-options`` on a config file's top-level variables: ``fold`` and
  ``data_root`` reach every dataset, the others are refused
  (``dcama_mm.engine.option_checks``);
- ``num_workers=0`` with the base configs' ``persistent_workers=True``.
"""
import logging
import os.path as osp

import pytest
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope

import dcama_mm  # noqa: F401  (registers the modules)
from dcama_mm.engine import launch
from mmseg.registry import (DATA_SAMPLERS, DATASETS, HOOKS, METRICS, MODELS,
                            OPTIM_WRAPPER_CONSTRUCTORS, TRANSFORMS,
                            VISUALIZERS)
from tests.test_tools.tiny_project import (REPO_ROOT, TEST_EPISODES,
                                           make_tiny_data, write_tiny_config)

CONFIGS = osp.join(REPO_ROOT, 'configs')
SWIN_FOLD0 = osp.join(CONFIGS, 'dcama_swinb_coco_fold0.py')
SWIN_FOLD0_5SHOT = osp.join(CONFIGS, 'dcama_swinb_coco_fold0_5shot.py')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')

#: dcama_mm.utils.checks.UnknownOptionError is both
OPTION_ERROR = (TypeError, ValueError)


def tool_config(config, options=None, work_dir=None):
    """``launch.load_tool_config`` as tools/train.py and tools/test.py call
    it (``--cfg-options`` parsed by mmengine's DictAction)."""
    argv = [config] + (['--cfg-options'] + list(options) if options else [])
    if work_dir:
        argv += ['--work-dir', work_dir]
    parser = launch.tool_arg_parser('t', 'config', 'work dir')
    return launch.load_tool_config(launch.parse_tool_args(parser, argv))


# ---------------------------------------------------------------------------
# 1. unknown arguments and keys
# ---------------------------------------------------------------------------
def _demo():
    init_default_scope('mmseg')
    return Config.fromfile(osp.join(CONFIGS, 'dcama_synthetic_demo.py'))


def _typo_cases():
    cfg = _demo()
    model = cfg.model.to_dict()
    swin = dict(type='BlockFeatureSwin', arch='tiny', img_size=64,
                window_size=4)
    sampler_args = dict(dataset=list(range(3)))
    return {
        'segmentor': (MODELS, dict(model, fast_path=False), 'FewShotSegmentor',
                      'fast_path', 'fast_paths'),
        'test_cfg': (MODELS, dict(model,
                                  test_cfg=dict(resize_to_orignal=True)),
                     'FewShotSegmentor', 'resize_to_orignal',
                     'resize_to_original'),
        'head': (MODELS, dict(model, decode_head=dict(
            model['decode_head'], num_head=8)), 'DCAMAHead', 'num_head',
            'num_heads'),
        'resnet': (MODELS, dict(model['backbone'], frozzen=True),
                   'BlockFeatureResNet', 'frozzen', 'frozen'),
        'swin': (MODELS, dict(swin, windw_size=4), 'BlockFeatureSwin',
                 'windw_size', 'window_size'),
        'preprocessor': (MODELS, dict(model['data_preprocessor'],
                                      bgr2rgb=True),
                         'FewShotDataPreProcessor', 'bgr2rgb', 'bgr_to_rgb'),
        'dataset': (DATASETS, dict(cfg.test_dataloader.dataset.to_dict(),
                                   foldd=1), 'COCO20iDataset', 'foldd',
                    'fold'),
        'load': (TRANSFORMS, dict(type='LoadEpisode', backend_arg=None),
                 'LoadEpisode', 'backend_arg', 'backend_args'),
        'resize': (TRANSFORMS, dict(type='ResizeEpisode', scale=64,
                                    keep_ori_sg=True), 'ResizeEpisode',
                   'keep_ori_sg', 'keep_ori_seg'),
        'pack': (TRANSFORMS, dict(type='PackFewShotInputs', meta_key=()),
                 'PackFewShotInputs', 'meta_key', 'meta_keys'),
        'metric': (METRICS, dict(type='FewShotIoUMetric', ignore_idx=255),
                   'FewShotIoUMetric', 'ignore_idx', 'ignore_index'),
        'hook': (HOOKS, dict(type='FewShotVisualizationHook', shw=True),
                 'FewShotVisualizationHook', 'shw', 'show'),
        'sampler': (DATA_SAMPLERS, (dict(type='EpisodeSampler', trian=True),
                                    sampler_args), 'EpisodeSampler', 'trian',
                    'train'),
        'visualizer': (VISUALIZERS, dict(type='FewShotLocalVisualizer',
                                         name='typo_vis', alpah=0.3),
                       'FewShotLocalVisualizer', 'alpah', 'alpha'),
        'paramwise_cfg': (OPTIM_WRAPPER_CONSTRUCTORS, dict(
            type='FewShotOptimWrapperConstructor',
            optim_wrapper_cfg=dict(optimizer=dict(type='SGD', lr=0.1)),
            paramwise_cfg=dict(bias_decay_mul=0.)),
            'FewShotOptimWrapperConstructor', 'bias_decay_mul',
            'bias_decay_mult'),
        'custom_keys': (OPTIM_WRAPPER_CONSTRUCTORS, dict(
            type='FewShotOptimWrapperConstructor',
            optim_wrapper_cfg=dict(optimizer=dict(type='SGD', lr=0.1)),
            paramwise_cfg=dict(custom_keys=dict(head=dict(lr_mul=2.)))),
            'FewShotOptimWrapperConstructor', 'lr_mul', 'lr_mult'),
        'optim_wrapper': (OPTIM_WRAPPER_CONSTRUCTORS, dict(
            type='FewShotOptimWrapperConstructor',
            optim_wrapper_cfg=dict(
                optimizer=dict(type='SGD', lr=0.1), clip_grads=None)),
            'OptimWrapper', 'clip_grads', 'clip_grad'),
    }


TYPO_CASES = _typo_cases()


@pytest.mark.parametrize('case', sorted(TYPO_CASES))
def test_typo_names_key_component_and_closest(case):
    registry, cfg, owner, key, closest = TYPO_CASES[case]
    cfg, default_args = cfg if isinstance(cfg, tuple) else (cfg, None)
    with pytest.raises(OPTION_ERROR) as info:
        registry.build(cfg, default_args=default_args)
    message = str(info.value)
    assert message.startswith(f'{owner}: ')
    assert f"'{key}' (did you mean '{closest}'?)" in message
    # both what Python raises for a bad keyword and what the tools report
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, ValueError)


def test_train_cfg_keys_are_refused():
    model = dict(_demo().model.to_dict(), train_cfg=dict(sampler=None))
    with pytest.raises(OPTION_ERROR,
                       match="unknown model.train_cfg key 'sampler'.*reads "
                       'no model.train_cfg key'):
        MODELS.build(model)
    # the shipped configs' empty train_cfg still builds
    assert MODELS.build(dict(model, train_cfg=dict())).train_cfg == {}


def test_valid_arguments_still_build():
    """The check does not refuse what the classes take through their
    base classes (mmseg's head, mmpretrain's ResNet, mmengine's wrapper)."""
    cfg = _demo()
    model = cfg.model.to_dict()
    model['decode_head'].update(sampler=None, threshold=None)
    model['backbone'].update(norm_eval=False, with_cp=False)
    segmentor = MODELS.build(model)
    assert segmentor.backbone.with_cp is False
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type='FewShotOptimWrapperConstructor',
        optim_wrapper_cfg=dict(type='OptimWrapper', clip_grad=None,
                               accumulative_counts=2,
                               optimizer=dict(type='SGD', lr=0.1)),
        paramwise_cfg=dict(custom_keys=dict(weight=dict(lr_mult=2.)))))
    wrapper = constructor(nn.Linear(2, 2))
    assert [g['lr'] for g in wrapper.optimizer.param_groups] == [0.2, 0.1]


# ---------------------------------------------------------------------------
# 2. top-level variables of a config file (shipped configs, no data needed)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('config', [SWIN_FOLD0, SWIN_FOLD0_5SHOT])
def test_fold_reaches_every_dataset(config, log_capture):
    cfg = tool_config(config, ['fold=1'])
    assert [cfg[loader].dataset.fold for loader in LOADERS] == [1, 1, 1]
    assert cfg.fold == 1
    assert ('--cfg-options fold=1: set in train_dataloader.dataset.fold, '
            'val_dataloader.dataset.fold, test_dataloader.dataset.fold.'
            ) in log_capture.messages(logging.INFO)
    if config == SWIN_FOLD0_5SHOT:
        assert cfg.test_dataloader.dataset.shots == 5


def test_explicit_dataset_option_wins_over_fold():
    cfg = tool_config(SWIN_FOLD0,
                      ['fold=2', 'test_dataloader.dataset.fold=3'])
    assert [cfg[loader].dataset.fold for loader in LOADERS] == [2, 2, 3]


def test_data_root_reaches_every_dataset():
    cfg = tool_config(SWIN_FOLD0, ['data_root=/data/coco2014'])
    assert {cfg[loader].dataset.data_root
            for loader in LOADERS} == {'/data/coco2014'}


@pytest.mark.parametrize('option, expected', [
    ('img_scale=(512,512)',
     '`img_scale` is a variable of the config file, read only while the '
     'file is loaded; setting it now changes nothing. Set the option(s) that '
     'use it instead: train_dataloader.dataset.pipeline.1.scale, '
     'val_dataloader.dataset.pipeline.1.scale, '
     'test_dataloader.dataset.pipeline.1.scale.'),
    ('train_pipeline.1.scale=(512,512)',
     'use it instead: train_dataloader.dataset.pipeline.1.scale.'),
    ('dataset_type=PascalVOC5iDataset',
     'instead: train_dataloader.dataset.type, val_dataloader.dataset.type, '
     'test_dataloader.dataset.type.'),
    ('shots=5',
     '`shots` is not a key of this config and nothing reads it. Set the '
     'option(s) that use it instead: train_dataloader.dataset.shots, '
     'val_dataloader.dataset.shots, test_dataloader.dataset.shots.'),
    ('lod_from=x.pth', "nothing reads it (did you mean 'load_from'?)."),
    ('data_preprocessor.bgr_to_rgb=False',
     'use it instead: model.data_preprocessor.bgr_to_rgb.'),
])
def test_dead_top_level_option_is_refused(option, expected):
    with pytest.raises(OPTION_ERROR) as info:
        tool_config(SWIN_FOLD0, [option])
    assert str(info.value).startswith('--cfg-options ' + option.split('=')[0])
    assert expected in str(info.value)


def test_fold_on_a_config_without_folds_is_refused():
    with pytest.raises(OPTION_ERROR,
                       match=r'fold=1: no dataloader dataset of this config '
                       r'has `fold` \(train_dataloader.dataset, '):
        tool_config(osp.join(CONFIGS, 'dcama_swinb_fss.py'), ['fold=1'])


def test_runner_options_pass():
    cfg = tool_config(SWIN_FOLD0, [
        'train_cfg.max_epochs=3', 'randomness.seed=1', 'load_from=a.pth',
        'model.test_cfg.resize_to_original=True'
    ])
    assert (cfg.train_cfg.max_epochs, cfg.randomness.seed,
            cfg.load_from) == (3, 1, 'a.pth')


def test_load_partial_is_an_option():
    # read by the tools' checkpoint loading, not by the Runner's __init__
    cfg = tool_config(SWIN_FOLD0, ['load_partial=True'])
    assert cfg.load_partial is True


# ---------------------------------------------------------------------------
# 3. persistent workers without workers
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('loader', LOADERS)
def test_no_persistent_workers_without_workers(loader, log_capture):
    cfg = tool_config(SWIN_FOLD0, [f'{loader}.num_workers=0'])
    assert cfg[loader].persistent_workers is False
    others = [name for name in LOADERS if name != loader]
    assert all(cfg[name].persistent_workers for name in others)
    assert (f'{loader}.num_workers=0: {loader}.persistent_workers set to '
            'False (persistent workers need num_workers > 0).'
            ) in log_capture.messages(logging.WARNING)


# ---------------------------------------------------------------------------
# end to end through the tools' set-up (tiny data, real Runner)
# ---------------------------------------------------------------------------
@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('options')
    data_root = make_tiny_data(str(root))
    config = write_tiny_config(str(root / 'tiny.py'), data_root)
    return root, config


def _test_run(tiny, name, options):
    root, config = tiny
    cfg = tool_config(config, options, work_dir=str(root / name))
    cfg.load_from = None
    runner = launch.build_runner(cfg, 'none', launch.check_test_config)
    metrics = runner.test()
    return runner, metrics


def test_tools_setup_fold_and_workers_end_to_end(tiny, log_capture):
    """``--cfg-options fold=1`` tests fold 1's classes; ``num_workers=0``
    with ``persistent_workers=True`` runs (torch refuses the pair)."""
    runner, metrics = _test_run(tiny, 'fold1', [
        'fold=1', 'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=True'
    ])
    dataset = runner.test_loop.dataloader.dataset
    assert dataset.fold == 1
    classes = dataset.metainfo['episode_class_ids']
    assert classes and all(c % 4 == 1 for c in classes)
    assert metrics['num_episodes'] == TEST_EPISODES
    assert not runner.test_loop.dataloader.persistent_workers


def test_tools_setup_test_cfg_typo_end_to_end(tiny):
    with pytest.raises(OPTION_ERROR,
                       match="FewShotSegmentor: unknown model.test_cfg key "
                       r"'resize_to_orignal' \(did you mean "
                       "'resize_to_original'\\?\\)"):
        _test_run(tiny, 'typo', ['model.test_cfg.resize_to_orignal=True'])


def test_train_paramwise_typo_end_to_end(tiny):
    """mmengine's constructor ignores an unknown ``paramwise_cfg`` key; the
    training run now stops with the config checks, before the Runner (and
    its model) is built."""
    root, config = tiny
    work_dir = root / 'paramwise'
    cfg = tool_config(config, [
        'optim_wrapper.paramwise_cfg.bias_decay_mul=0.',
        'train_cfg.max_epochs=1'
    ], work_dir=str(work_dir))
    with pytest.raises(OPTION_ERROR,
                       match=r"key 'bias_decay_mul' \(did you mean "
                       r"'bias_decay_mult'\?\)"):
        launch.build_runner(cfg, 'none', launch.check_train_config)
    assert not work_dir.exists()  # no Runner was built


@pytest.mark.parametrize('section, key, value, closest', [
    ('train_cfg', 'max_epoch', 1, 'max_epochs'),
    ('train_cfg', 'val_intervals', 1, 'val_interval'),
    ('val_cfg', 'fp61', True, 'fp16'),
    ('test_cfg', 'fp_16', True, 'fp16'),
])
def test_loop_cfg_typos_are_refused(section, key, value, closest):
    """The Runner's loops (top-level train_cfg / val_cfg / test_cfg) fail
    with mmengine's bare TypeError only once the model and data are built;
    checked with the other options, naming the loop and the closest key."""
    from dcama_mm.engine.config_checks import check_loop_cfgs
    cfg = Config.fromfile(SWIN_FOLD0)
    cfg[section][key] = value
    with pytest.raises(OPTION_ERROR,
                       match=rf"unknown {section} key '{key}' \(did you "
                       rf"mean '{closest}'\?\)"):
        check_loop_cfgs(cfg, (section, ))
    del cfg[section][key]
    check_loop_cfgs(cfg, ('train_cfg', 'val_cfg', 'test_cfg'))
    # a loop without a type: mmengine's by_epoch rule
    cfg.train_cfg = dict(by_epoch=False, max_iters=10, val_interval=5)
    check_loop_cfgs(cfg, ('train_cfg', ))
    cfg.train_cfg = dict(by_epoch=False, max_epochs=10)
    with pytest.raises(OPTION_ERROR, match="IterBasedTrainLoop: unknown "
                       "train_cfg key 'max_epochs'"):
        check_loop_cfgs(cfg, ('train_cfg', ))
    cfg.train_cfg = dict(max_epochs=10)  # mmengine: KeyError 'by_epoch'
    with pytest.raises(ValueError, match='train_cfg needs a `type`'):
        check_loop_cfgs(cfg, ('train_cfg', ))
    # the Runner gives a loop without a type its evaluator itself
    cfg.val_cfg = dict(evaluator=dict(type='FewShotIoUMetric'))
    with pytest.raises(OPTION_ERROR, match="ValLoop: unknown val_cfg key "
                       "'evaluator'"):
        check_loop_cfgs(cfg, ('val_cfg', ))
    cfg.val_cfg = dict(type='ValLoop', _scope_='mmengine')
    check_loop_cfgs(cfg, ('val_cfg', ))
