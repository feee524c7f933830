"""tools/train.py, tools/test.py, the dist scripts and mim, end to end.

A tiny DCAMA (random ResNet-50 of width 8, 64x64 input) on a tiny dataset
in COCO-20i's real format; everything runs on the CPU with the real
mmengine Runner, torchrun + gloo and openmim.
"""
import argparse
import copy
import glob
import hashlib
import json
import os
import os.path as osp
import re
import shutil
import stat

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from tests.test_tools.tiny_project import (REPO_ROOT, TEST_EPISODES, TOOLS,
                                           TRAIN_EPISODES, load_tool,
                                           make_tiny_data, run, tool_env,
                                           write_tiny_config)


@pytest.fixture(scope='module')
def project(tmp_path_factory):
    """Tiny data + config, trained once with 2 CPU processes."""
    root = str(tmp_path_factory.mktemp('tools'))
    data_root = make_tiny_data(root)
    config = write_tiny_config(osp.join(root, 'tiny.py'), data_root)
    work_dir = osp.join(root, 'dist_train')
    proc = run([
        'bash',
        osp.join(TOOLS, 'dist_train.sh'), config, '2', '--work-dir', work_dir
    ],
               cwd=root)
    best = glob.glob(osp.join(work_dir, 'best_mIoU_epoch_*.pth'))
    return dict(
        root=root,
        data_root=data_root,
        config=config,
        work_dir=work_dir,
        train_log=proc.stdout,
        best=best)


def _load_ckpt(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def test_dist_train_two_cpu_processes(project):
    work_dir = project['work_dir']
    log = project['train_log']
    assert 'running 2 CPU processes with the gloo backend' in log
    assert re.search(r'Distributed training: True', log)
    # 8 episodes / (2 ranks x 2 per batch) = 2 iterations per epoch
    assert 'Epoch(train) [2][2/2]' in log
    assert 'Epoch(val) [2]' in log
    for name in ('epoch_1.pth', 'epoch_2.pth', 'last_checkpoint'):
        assert osp.isfile(osp.join(work_dir, name)), name
    assert len(project['best']) == 1
    ckpt = _load_ckpt(osp.join(work_dir, 'epoch_2.pth'))
    assert ckpt['meta']['epoch'] == 2
    assert ckpt['meta']['iter'] == 2 * TRAIN_EPISODES // 4
    # the optimizer holds exactly the trainable (head) parameters
    from mmseg.registry import MODELS
    model = MODELS.build(Config.fromfile(project['config']).model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert 0 < len(trainable) < len(list(model.parameters()))
    num_params = sum(
        len(group['params']) for group in ckpt['optimizer']['param_groups'])
    assert num_params == len(trainable)
    # validation mIoU logged for each epoch, best checkpoint = best of them
    scalars = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert len(scalars) == 1
    with open(scalars[0]) as f:
        records = [json.loads(line) for line in f]
    val = [r for r in records if 'mIoU' in r]
    assert [r['step'] for r in val] == [1, 2]
    best_epoch = int(re.search(r'epoch_(\d+)', project['best'][0]).group(1))
    best_miou = max(r['mIoU'] for r in val)
    assert val[best_epoch - 1]['mIoU'] == pytest.approx(best_miou)


def test_test_same_miou_on_one_and_two_processes(project):
    root, config, best = project['root'], project['config'], project['best']
    one = osp.join(root, 'one.json')
    two = osp.join(root, 'two.json')
    work_one = osp.join(root, 'test_one')
    run([
        'python',
        osp.join(TOOLS, 'test.py'), config, best[0], '--work-dir', work_one,
        '--out', one, '--show-dir', 'episodes'
    ],
        cwd=root)
    run([
        'bash',
        osp.join(TOOLS, 'dist_test.sh'), config, best[0], '2', '--work-dir',
        osp.join(root, 'test_two'), '--out', two
    ],
        cwd=root)
    with open(one) as f:
        res_one = json.load(f)
    with open(two) as f:
        res_two = json.load(f)
    assert res_one['metrics']['num_episodes'] == TEST_EPISODES
    assert res_two['metrics']['num_episodes'] == TEST_EPISODES
    assert res_one['metrics']['mIoU'] == res_two['metrics']['mIoU']
    assert res_one['metrics']['FB-IoU'] == res_two['metrics']['FB-IoU']
    assert 0.0 <= res_one['metrics']['mIoU'] <= 100.0
    # the protocol is recorded with the numbers
    assert res_one['test_dataset']['seed'] == 0
    assert res_one['test_dataset']['shots'] == 1
    assert res_one['checkpoint'] == osp.abspath(best[0])
    # --show-dir: one picture per episode under work_dir/<timestamp>/
    pictures = sorted(
        glob.glob(osp.join(work_one, '*', 'episodes', 'episode_*.png')))
    assert len(pictures) == TEST_EPISODES
    assert osp.basename(pictures[0]).startswith('episode_00000_')


def test_mim_test(project):
    root, config, best = project['root'], project['config'], project['best']
    mim = shutil.which('mim', path=tool_env()['PATH'])
    assert mim is not None, 'openmim is not installed in this environment'
    out = osp.join(root, 'mim.json')
    proc = run([
        mim, 'test', 'dcama_mm', config, '--checkpoint', best[0],
        '--work-dir',
        osp.join(root, 'mim_test'), '--out', out
    ],
               cwd=root)
    assert 'Testing command is' in proc.stdout
    with open(out) as f:
        res = json.load(f)
    assert res['metrics']['num_episodes'] == TEST_EPISODES
    # the same episodes and checkpoint as the 1-process tools/test.py run
    one = osp.join(root, 'one.json')
    if osp.isfile(one):
        with open(one) as f:
            assert json.load(f)['metrics']['mIoU'] == res['metrics']['mIoU']


def test_inherited_config_changes_fold_and_shots(project):
    root = project['root']
    child = osp.join(root, 'child_fold1_2shot.py')
    with open(child, 'w') as f:
        f.write(f"_base_ = [{project['config']!r}]\n"
                'test_dataloader = dict(dataset=dict(fold=1, shots=2))\n')
    cfg = Config.fromfile(child)
    dataset_cfg = cfg.test_dataloader.dataset
    assert (dataset_cfg.fold, dataset_cfg.shots) == (1, 2)
    # everything else is inherited
    assert dataset_cfg.data_root == project['data_root']
    assert dataset_cfg.num_episodes == TEST_EPISODES
    assert cfg.model.backbone.base_channels == 8

    cfg.work_dir = osp.join(root, 'child')
    cfg.load_from = project['best'][0]
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    dataset = runner.test_dataloader.dataset
    # fold 1 of the 8 synthetic classes tests on classes 1 and 5
    assert dataset.metainfo['episode_class_ids'] == [1, 5]
    assert dataset[0]['data_samples'].support_imgs.shape[0] == 2
    assert metrics['num_episodes'] == TEST_EPISODES


class _CaptureResumeState(Hook):
    """Records the runner's state when training (re)starts."""

    def __init__(self):
        self.state = None

    def before_train(self, runner):
        self.state = dict(
            epoch=runner.epoch,
            iter=runner.iter,
            optimizer=copy.deepcopy(runner.optim_wrapper.state_dict()))


def _hashes(folder):
    result = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                result[path] = hashlib.sha1(f.read()).hexdigest()
    return result


def _train_args(config, work_dir, resume=None, max_epochs=1):
    return argparse.Namespace(
        config=config,
        work_dir=work_dir,
        resume=resume,
        amp=False,
        cfg_options={'train_cfg.max_epochs': max_epochs},
        launcher='none')


def test_resume_continues_without_overwriting(project):
    train_tool = load_tool('train.py')
    work_dir = osp.join(project['root'], 'resume')
    cfg = train_tool.build_cfg(_train_args(project['config'], work_dir))
    Runner.from_cfg(cfg).train()
    saved = _load_ckpt(osp.join(work_dir, 'epoch_1.pth'))
    before = _hashes(work_dir)
    # Updated by design on every run: the pointer to the latest checkpoint
    # and mmengine's copy of the current config (each run's own config stays
    # in <timestamp>/vis_data/config.py, checked below with the rest).
    before.pop(osp.join(work_dir, 'last_checkpoint'))
    before.pop(osp.join(work_dir, osp.basename(project['config'])))
    assert any(p.endswith(osp.join('vis_data', 'config.py')) for p in before)

    cfg = train_tool.build_cfg(
        _train_args(project['config'], work_dir, resume='auto', max_epochs=2))
    assert cfg.resume is True and cfg.load_from is None
    capture = _CaptureResumeState()
    runner = Runner.from_cfg(cfg)
    runner.register_hook(capture)
    runner.train()

    # training restarted where the checkpoint left off
    assert capture.state['epoch'] == 1
    assert capture.state['iter'] == saved['meta']['iter'] == \
        TRAIN_EPISODES // 2
    restored = capture.state['optimizer']['state']
    assert restored.keys() == saved['optimizer']['state'].keys()
    for key, value in saved['optimizer']['state'].items():
        for name, tensor in value.items():
            assert torch.equal(
                torch.as_tensor(restored[key][name]),
                torch.as_tensor(tensor)), (key, name)
    # and went on to epoch 2 without touching what was written before
    after = _hashes(work_dir)
    for path, digest in before.items():
        assert after.get(path) == digest, f'{path} was changed'
    assert osp.isfile(osp.join(work_dir, 'epoch_2.pth'))
    assert _load_ckpt(osp.join(work_dir, 'epoch_2.pth'))['meta']['epoch'] == 2
    assert len(glob.glob(osp.join(work_dir, '2*'))) == 2  # two log folders

    # an explicit checkpoint path resumes from it
    cfg = train_tool.build_cfg(
        _train_args(
            project['config'],
            work_dir,
            resume=osp.join(work_dir, 'epoch_1.pth'),
            max_epochs=2))
    assert cfg.resume is True
    assert cfg.load_from == osp.join(work_dir, 'epoch_1.pth')


# ----------------------------------------------------------------------
# bad input: clear messages before any long work
# ----------------------------------------------------------------------
@pytest.mark.parametrize(
    'option, value, error, words',
    [('train_dataloader.dataset.data_root', '/no/such/coco',
      FileNotFoundError, 'train_dataloader.dataset.data_root'),
     ('val_dataloader.dataset.ann_file', 'annotations_fss/missing.json',
      FileNotFoundError, 'val_dataloader.dataset.ann_file'),
     ('load_from', 'work_dirs/missing.pth', FileNotFoundError, 'load_from'),
     ('model.backbone.type', 'BlockFeatureResnet', ValueError,
      'model.backbone.type="BlockFeatureResnet"')])
def test_train_rejects_bad_config(project, option, value, error, words):
    train_tool = load_tool('train.py')
    args = _train_args(project['config'], osp.join(project['root'], 'bad'))
    args.cfg_options = {option: value}
    cfg = train_tool.build_cfg(args)
    from dcama_mm.engine.launch import check_train_config
    with pytest.raises(error, match=re.escape(words)):
        check_train_config(cfg)


def test_train_rejects_missing_pretrained_backbone(project):
    from dcama_mm.engine.launch import check_train_config
    cfg = Config.fromfile(project['config'])
    cfg.model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint='checkpoints/missing_backbone.pth')
    with pytest.raises(
            FileNotFoundError,
            match=r'model\.backbone\.init_cfg\.checkpoint.*missing_backbone'):
        check_train_config(cfg)


def test_unknown_backbone_suggests_close_names(project):
    from dcama_mm.engine.launch import check_model_types
    cfg = Config.fromfile(project['config'])
    cfg.model.backbone.type = 'BlockFeatureSwinn'
    with pytest.raises(ValueError, match='Did you mean BlockFeatureSwin'):
        check_model_types(cfg.model)


def test_test_tool_missing_checkpoint_fails_fast(project):
    proc = run([
        'python',
        osp.join(TOOLS, 'test.py'), project['config'],
        osp.join(project['root'], 'missing.pth')
    ],
               cwd=project['root'],
               check=False)
    assert proc.returncode != 0
    assert 'FileNotFoundError: checkpoint: the checkpoint' in proc.stdout
    assert 'missing.pth' in proc.stdout
    assert 'Epoch(test)' not in proc.stdout


def test_amp_fp16_on_the_cpu_is_refused(project):
    if torch.cuda.is_available():
        pytest.skip('this machine has a GPU')
    train_tool = load_tool('train.py')
    args = _train_args(project['config'], osp.join(project['root'], 'amp'))
    args.amp, args.amp_dtype = True, 'float16'
    with pytest.raises(ValueError, match='--amp-dtype float16'):
        train_tool.build_cfg(args)


@pytest.mark.parametrize('gpus', ['0', 'two'])
def test_dist_scripts_reject_bad_gpus(project, gpus):
    for script, args in (('dist_train.sh', [project['config'], gpus]),
                         ('dist_test.sh',
                          [project['config'], project['best'][0], gpus])):
        proc = run(['bash', osp.join(TOOLS, script)] + args,
                   cwd=project['root'],
                   check=False)
        assert proc.returncode == 2
        assert 'GPUS must be a positive integer' in proc.stdout


def test_dist_train_rejects_more_gpus_than_visible(project, tmp_path):
    # an nvidia-smi that lists one GPU, first on PATH
    fake = tmp_path / 'nvidia-smi'
    fake.write_text('#!/bin/sh\necho "GPU 0: Test GPU (UUID: GPU-0)"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = tool_env()
    env.pop('CUDA_VISIBLE_DEVICES', None)
    env['PATH'] = f'{tmp_path}{os.pathsep}{env["PATH"]}'
    proc = run(['bash',
                osp.join(TOOLS, 'dist_train.sh'), project['config'], '2'],
               cwd=project['root'],
               env=env,
               check=False)
    assert proc.returncode == 2
    assert 'GPUS=2 but only 1 GPU(s) are visible' in proc.stdout


def test_mim_finds_tools_and_configs():
    # `mim train/test dcama_mm` look under <installed package>/.mim
    mim_dir = osp.join(REPO_ROOT, 'dcama_mm', '.mim')
    assert osp.isfile(osp.join(mim_dir, 'tools', 'train.py'))
    assert osp.isfile(osp.join(mim_dir, 'tools', 'test.py'))
    assert osp.isfile(
        osp.join(mim_dir, 'configs', 'dcama_swinb_coco_fold0.py'))
    from mim.utils import get_installed_path
    pkg_root = get_installed_path('dcama_mm')
    assert osp.isfile(osp.join(pkg_root, '.mim', 'tools', 'train.py')), (
        f'openmim resolves dcama_mm to {pkg_root}, which has no .mim/tools: '
        'run tools/setup_env.sh (it links the package there)')
