"""Tests of tools/analysis_tools/benchmark.py (in-process, tiny model)."""
import importlib.util
import json
import logging
import os
import os.path as osp
import statistics

import pytest
import torch
from mmengine.logging import MMLogger

from dcama_mm.models.utils.fast_paths import (ENV_VAR, fast_path_report,
                                              fast_paths_default)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SIZE = 64
# ResNet-50 layout at 1/8 of the width: 64x64 input, feature maps 16..2
TINY_CONFIG = f"""
_base_ = ['{REPO}/configs/_base_/models/dcama_r50.py']
model = dict(
    backbone=dict(base_channels=8, stem_channels=8),
    decode_head=dict(in_channels=(32, 64, 128, 256)))
"""


class _Records(logging.Handler):

    def __init__(self) -> None:
        super().__init__()
        self.lines = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope='module')
def tool():
    path = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark.py')
    spec = importlib.util.spec_from_file_location('benchmark_under_test', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def tiny_cfg(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp('bench') / 'tiny_dcama.py'
    path.write_text(TINY_CONFIG)
    return str(path)


def _run(tool, cfg, *extra, out=None, threads=1):
    logger = MMLogger.get_current_instance()
    records = _Records()
    logger.addHandler(records)
    before = torch.get_num_threads()
    try:
        # one thread: several threads on a busy CPU are much slower
        args = [
            cfg, '--size',
            str(SIZE),
            str(SIZE), '--repeat', '2', '--warmup', '0', '--matmul-size',
            '256', '--threads',
            str(threads), *extra
        ]
        if out is not None:
            args += ['--out', out]
        results = tool.main(args)
        assert results['machine']['threads'] == threads
    finally:
        logger.removeHandler(records)
        torch.set_num_threads(before)
    return results, records.lines


def _check_common(r: dict, batch: int, flops: bool = True) -> None:
    assert len(r['times']) == 2 and all(t > 0 for t in r['times'])
    assert 0 < r['latency_min'] <= r['latency_median'] < 60
    assert r['latency_min'] == pytest.approx(min(r['times']) / batch)
    assert r['episodes_per_s'] == pytest.approx(batch /
                                                statistics.median(r['times']))
    assert 0 < r['backbone_median'] < 60 and 0 < r['head_median'] < 60
    # the process peak RSS is at least what the process holds now
    assert r['memory_kind'] == 'process peak RSS'
    assert 0 < r['rss_after_build'] <= r['peak_memory'] < 64 * 1024**3
    if not flops:
        assert 'flops' not in r
        return
    assert r['flops'] == pytest.approx(r['flops_backbone'] + r['flops_head'])
    assert r['flops_backbone'] > 0 and r['flops_head'] > 0
    assert r['gflops_per_s'] == pytest.approx(
        r['flops'] * batch / statistics.median(r['times']) / 1e9)
    assert r['matmul_gflops_per_s'] > 0.1
    assert r['machine']['torch'] == torch.__version__


@pytest.fixture(scope='module')
def inference_run(tool, tiny_cfg, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('bench_out') / 'figures.json')
    r, lines = _run(tool, tiny_cfg, '--shots', '2', '--batch', '2', out=out)
    return r, lines, out


def test_inference_figures(tool, tiny_cfg, inference_run):
    r, lines, out = inference_run
    assert r['mode'] == 'inference' and r['shots'] == 2 and r['batch'] == 2
    _check_common(r, batch=2)
    with open(out) as f:
        assert json.load(f) == json.loads(json.dumps(r))
    text = '\n'.join(lines)
    for key in ('machine', 'fast paths', 'latency', 'throughput', 'breakdown',
                'memory', 'FLOPs', 'achieved'):
        assert f'\n{key}' in '\n' + text, key
    assert f"median {r['latency_median']:.3f} s per episode" in text
    assert 'batch 2, 2-shot, 64x64, fp32' in text


def test_inference_fast_path_report(tool, tiny_cfg, inference_run):
    """The report is the model's own (fast_path_report), one line each."""
    r, lines, _ = inference_run
    cfg = tool.load_analysis_config(tiny_cfg)
    model = tool.build_model(cfg, torch.device('cpu'))
    assert r['fast_paths'] == fast_path_report(model, 'cpu', torch.float32,
                                               False)
    on = fast_paths_default()
    assert r['fast_paths_enabled'] is on
    assert r['options'] == {
        ENV_VAR: os.environ.get(ENV_VAR),
        'model.fast_paths': None
    }
    env = os.environ.get(ENV_VAR, 'unset')
    assert (f"fast paths : {'on' if on else 'off'} ({ENV_VAR}={env}, "
            'model.fast_paths=None)') in lines
    for path, count in r['fast_paths'].items():
        assert ': ' in path and count >= 1
        assert f'             {path} (x{count})' in lines
    if on:  # the DCAMA head's attention always has an inference fast path
        assert any(p.startswith('DCAMAAttention: ') for p in r['fast_paths'])


def test_train_figures_with_fast_paths_off(tool, tiny_cfg):
    r, lines = _run(tool, tiny_cfg, '--train', '--no-flops', '--cfg-options',
                    'model.fast_paths=False')
    assert r['mode'] == 'train'
    assert r['fast_paths'] == {} and r['fast_paths_enabled'] is False
    assert r['options']['model.fast_paths'] is False
    env = os.environ.get(ENV_VAR, 'unset')
    assert (f'fast paths : off ({ENV_VAR}={env}, model.fast_paths=False)'
            in lines)
    assert r['optimizer'] == 'OptimWrapper(SGD, reference default)'
    _check_common(r, batch=1, flops=False)
    assert any(
        line.startswith('episode') and 'training step' in line
        and 'OptimWrapper(SGD, reference default) step' in line
        for line in lines)


def test_train_step_from_the_config_schedule(tool, tmp_path):
    path = tmp_path / 'tiny_with_schedule.py'
    path.write_text(
        TINY_CONFIG.replace(
            "_base_ = ['", f"_base_ = ['{REPO}/configs/_base_/schedules/"
            "schedule_50e.py', '"))
    r, _ = _run(tool, str(path), '--train', '--no-flops', '--repeat', '1')
    assert r['optimizer'] == 'OptimWrapper(SGD, from the config)'


def test_backbone_flops_do_not_depend_on_the_fast_paths(
        tool, tiny_cfg, inference_run):
    """The FLOP formulas of the fast kernels count what the straightforward
    computation counts (the head's fast attention pads its value, the
    backbone's paths add no product)."""
    on, _, _ = inference_run
    off, _ = _run(tool, tiny_cfg, '--shots', '2', '--batch', '2',
                  '--cfg-options', 'model.fast_paths=False')
    assert off['fast_paths'] == {}
    assert off['flops_backbone'] == on['flops_backbone'] > 0
    assert off['flops_head'] > 0


def test_bad_arguments(tool, tiny_cfg, tmp_path):
    with pytest.raises(FileNotFoundError, match='not found'):
        tool.main([str(tmp_path / 'missing.py')])
    with pytest.raises(ValueError, match='--shots'):
        tool.main([tiny_cfg, '--shots', '0'])
    with pytest.raises(ValueError, match='--threads'):
        tool.main([tiny_cfg, '--threads', '0'])
    no_model = tmp_path / 'no_model.py'
    no_model.write_text('x = 1\n')
    with pytest.raises(ValueError, match='has no `model`'):
        tool.main([str(no_model)])


def test_benchmark_data_tool(tmp_path):
    """tools/analysis_tools/benchmark_data.py on the tiny COCO-20i data."""
    from tests.test_tools.tiny_project import (load_tool, make_tiny_data,
                                               write_tiny_config)
    config = write_tiny_config(
        str(tmp_path / 'tiny.py'), make_tiny_data(str(tmp_path)))
    data_tool = load_tool('analysis_tools/benchmark_data.py')
    logger = MMLogger.get_current_instance()
    records = _Records()
    logger.addHandler(records)
    try:
        rate = data_tool.main(
            [config, '--split', 'val', '--num-episodes', '3', '--warmup', '1'])
    finally:
        logger.removeHandler(records)
    assert rate > 0
    assert any('(val, shots=1)' in line and 'episodes/s per worker' in line
               and '3 episodes' in line for line in records.lines)
    with pytest.raises(ValueError, match='--num-episodes'):
        data_tool.main([config, '--num-episodes', '0'])
