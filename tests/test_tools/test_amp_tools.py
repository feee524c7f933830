"""``--amp`` / ``--amp-dtype`` of the tools on the CPU (bf16): they parse,
reach the model, and train / test / benchmark / compare through the real
Runner and tools (tiny data and model)."""
import json
import math
import os.path as osp
import sys

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from dcama_mm.engine import launch
from tests.test_tools.tiny_project import (REPO_ROOT, TOOLS, load_tool,
                                           make_tiny_data, run,
                                           write_tiny_config)

TINY_MODEL = f"""
_base_ = ['{REPO_ROOT}/configs/_base_/models/dcama_r50.py']
model = dict(
    backbone=dict(base_channels=8, stem_channels=8),
    decode_head=dict(in_channels=(32, 64, 128, 256)))
"""


@pytest.fixture(scope='module')
def project(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('amp_tools'))
    data_root = make_tiny_data(root)
    config = write_tiny_config(osp.join(root, 'tiny.py'), data_root)
    model_config = osp.join(root, 'tiny_model.py')
    with open(model_config, 'w') as f:
        f.write(TINY_MODEL)
    return dict(root=root, config=config, model_config=model_config)


class _LossRecorder(Hook):
    """Keeps every training iteration's loss."""

    def __init__(self) -> None:
        self.losses = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses.append(float(outputs['loss']))


def _fp32_loss(model, batch) -> float:
    """The eval-mode fp32 loss of one fixed batch (no dropout)."""
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(batch, True)
        return float(model.loss(**data)['loss_ce'])


def _random_checkpoint(project) -> str:
    """A checkpoint of the tiny model with seeded random weights (when the
    training test did not run before: ``-k`` or another order)."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(project['config']).model)
    path = osp.join(project['root'], 'random.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


def _parse(tool, argv, monkeypatch):
    monkeypatch.setattr(sys, 'argv', [tool.__file__] + argv)
    return tool.parse_args()


def test_train_amp_on_the_cpu(project, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip('this test trains on the CPU')
    train_tool = load_tool('train.py')
    work_dir = osp.join(project['root'], 'train_amp')
    args = _parse(train_tool, [
        project['config'], '--amp', '--work-dir', work_dir, '--cfg-options',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=10',
        'optim_wrapper.optimizer.lr=0.003'
    ], monkeypatch)
    cfg = train_tool.build_cfg(args)
    assert cfg.optim_wrapper.type == 'AutocastOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    # 32x32 episodes: bf16 convolutions are slow on CPUs without native
    # bf16 (PyTorch's reference kernel)
    cfg.train_dataloader.dataset.pipeline[1].scale = (32, 32)
    runner = launch.build_runner(cfg, 'none', launch.check_train_config)
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader)))
    before = _fp32_loss(runner.model, batch)
    recorder = _LossRecorder()
    runner.register_hook(recorder)
    runner.train()
    after = _fp32_loss(runner.model, batch)
    assert after < before - 0.01, (before, after)
    assert type(runner.optim_wrapper).__name__ == 'AutocastOptimWrapper'
    losses = recorder.losses
    assert len(losses) == 4  # 8 episodes, batch 2, 1 epoch
    assert all(math.isfinite(loss) for loss in losses)
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    project['checkpoint'] = osp.join(work_dir, 'epoch_1.pth')


def test_train_fp16_on_the_cpu_is_refused(project, monkeypatch):
    train_tool = load_tool('train.py')
    args = _parse(train_tool,
                  [project['config'], '--amp', '--amp-dtype', 'float16'],
                  monkeypatch)
    with pytest.raises(ValueError, match='--amp-dtype float16 cannot train'):
        train_tool.build_cfg(args)


def test_test_amp_reaches_the_model_and_keeps_the_figures(project):
    checkpoint = project.get('checkpoint') or _random_checkpoint(project)
    figures = {}
    for name, extra in (('fp32', []), ('bf16', ['--amp'])):
        out = osp.join(project['root'], f'test_{name}.json')
        proc = run([
            sys.executable,
            osp.join(TOOLS, 'test.py'), project['config'], checkpoint,
            '--work-dir',
            osp.join(project['root'], f'test_{name}'), '--out', out
        ] + extra,
                   cwd=project['root'])
        with open(out) as f:
            record = json.load(f)
        figures[name] = record['metrics']
        if extra:
            assert record['test_cfg']['amp'] == 'auto'
            assert 'Epoch(test)' in proc.stdout
        else:
            assert 'amp' not in (record['test_cfg'] or {})
    assert abs(figures['bf16']['mIoU'] - figures['fp32']['mIoU']) < 1.0


def test_test_amp_dtype_needs_amp(project, monkeypatch):
    test_tool = load_tool('test.py')
    args = _parse(test_tool, [
        project['config'], 'ckpt.pth', '--amp-dtype', 'bfloat16'
    ], monkeypatch)
    with pytest.raises(ValueError, match='--amp-dtype bfloat16 needs --amp'):
        test_tool.build_cfg(args)
    args = _parse(test_tool, [
        project['config'], 'ckpt.pth', '--amp', '--amp-dtype', 'bfloat16'
    ], monkeypatch)
    assert test_tool.build_cfg(args).model.test_cfg.amp == 'bfloat16'


def test_infer_flags_reach_the_inferencer(project):
    from dcama_mm.apis import FewShotInferencer
    from dcama_mm.models.utils.precision import amp_from_args
    infer_tool = load_tool('infer.py')
    opts = infer_tool.parse_args([
        project['model_config'], 'ckpt.pth', '--query', 'q.jpg', '--support',
        's.jpg:s.png', '--out', 'o', '--amp', '--amp-dtype', 'bfloat16'
    ])
    assert amp_from_args(opts) == 'bfloat16'
    inferencer = FewShotInferencer(
        project['model_config'], device='cpu', amp=amp_from_args(opts))
    assert inferencer.model.test_cfg['amp'] == 'bfloat16'
    assert FewShotInferencer(
        project['model_config'], device='cpu').model.test_cfg.get(
            'amp') is None
    with pytest.raises(ValueError, match='FewShotInferencer: amp'):
        FewShotInferencer(project['model_config'], device='cpu', amp='fp8')


def test_benchmark_amp(project):
    tool = load_tool('analysis_tools/benchmark.py')
    threads = torch.get_num_threads()
    try:
        results = tool.main([
            project['model_config'], '--amp', '--amp-dtype', 'bfloat16',
            '--size', '64', '64', '--repeat', '1', '--warmup', '0',
            '--no-flops', '--threads', '1'
        ])
    finally:
        torch.set_num_threads(threads)
    assert results['precision'] == 'bfloat16'
    assert results['latency_median'] > 0
    assert not any('oneDNN' in path for path in results['fast_paths'])
    fp32 = tool.parse_args([project['model_config']])
    assert fp32.amp is False and fp32.amp_dtype == 'auto'


def test_amp_agreement_tool_on_random_weights(project):
    tool = load_tool('analysis_tools/amp_agreement.py')
    threads = torch.get_num_threads()
    try:
        figures = tool.main([
            project['model_config'], '--random', '1', '--size', '64', '64',
            '--threads', '1',
            '--out', osp.join(project['root'], 'agree.json')
        ])
    finally:
        torch.set_num_threads(threads)
    assert figures['dtype'] == 'bfloat16'
    assert figures['episodes'] == 1 and figures['pixels'] == 64 * 64
    assert 0.9 <= figures['pixel_agreement'] <= 1.0
    with open(osp.join(project['root'], 'agree.json')) as f:
        assert json.load(f)['pixel_agreement'] == figures['pixel_agreement']
