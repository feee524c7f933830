"""Tests of tools/analysis_tools/benchmark.py (in-process, tiny model)."""
import importlib.util
import json
import logging
import os.path as osp
import statistics

import pytest
import torch
from mmengine.logging import MMLogger

from dcama_mm.models.layers import DCAMAAttention

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
    spec = importlib.util.spec_from_file_location('benchmark_under_test',
                                                  path)
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
            cfg, '--size', str(SIZE), str(SIZE), '--repeat', '2', '--warmup',
            '0', '--matmul-size', '256', '--threads',
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
    assert r['episodes_per_s'] == pytest.approx(
        batch / statistics.median(r['times']))
    assert 0 < r['backbone_median'] < 60 and 0 < r['head_median'] < 60
    # the process peak RSS is at least what the process holds now
    assert r['memory_kind'] == 'process peak RSS'
    assert 0 < r['rss_after_build'] <= r['peak_memory'] < 64 * 1024**3
    if not flops:
        assert 'flops' not in r
        return
    assert r['flops'] == pytest.approx(r['flops_backbone'] +
                                       r['flops_head'])
    assert r['flops_backbone'] > 0 and r['flops_head'] > 0
    assert r['gflops_per_s'] == pytest.approx(
        r['flops'] * batch / statistics.median(r['times']) / 1e9)
    assert r['matmul_gflops_per_s'] > 0.1
    assert r['machine']['torch'] == torch.__version__


def test_inference_figures(tool, tiny_cfg, tmp_path):
    out = str(tmp_path / 'figures.json')
    r, lines = _run(tool, tiny_cfg, '--shots', '2', '--batch', '2', out=out)
    assert r['mode'] == 'inference' and r['shots'] == 2 and r['batch'] == 2
    assert r['options'] == {
        'cpu_backbone_batch_size': '1',
        'cpu_backbone_workers': 'None',
        'backbone.channels_last': 'True',
        'decode_head.attn_impl': "'fused'",
        'decode_head.linear_impl': "'onednn'",
        'decode_head.fast_dropout': 'True',
        'decode_head.mixer_impl': "'factored'"
    }
    _check_common(r, batch=2)
    with open(out) as f:
        assert json.load(f) == json.loads(json.dumps(r))
    text = '\n'.join(lines)
    for key in ('machine', 'latency', 'throughput', 'breakdown', 'memory',
                'FLOPs', 'achieved'):
        assert f'\n{key}' in '\n' + text, key
    assert f"median {r['latency_median']:.3f} s per episode" in text
    assert 'batch 2, 2-shot, 64x64, fp32' in text


def test_train_figures(tool, tiny_cfg):
    r, lines = _run(tool, tiny_cfg, '--train', '--no-flops', '--cfg-options',
                    'model.decode_head.attn_impl=naive',
                    'model.cpu_backbone_batch_size=None')
    assert r['mode'] == 'train'
    assert r['options'] == {
        'cpu_backbone_batch_size': 'None',
        'cpu_backbone_workers': 'None',
        'backbone.channels_last': 'True',
        'decode_head.attn_impl': "'naive'",
        'decode_head.linear_impl': "'onednn'",
        'decode_head.fast_dropout': 'True',
        'decode_head.mixer_impl': "'factored'"
    }
    assert ('options    : cpu_backbone_batch_size=None, '
            'cpu_backbone_workers=None, backbone.channels_last=True, '
            "decode_head.attn_impl='naive'") in '\n'.join(lines)
    _check_common(r, batch=1, flops=False)
    assert any(line.startswith('episode') and 'training step' in line
               for line in lines)


def test_count_flops_of_the_attention(tool):
    """Projections + the two attention products, for every kernel.

    The ``'fused'`` kernel pads the one-channel value to the head width (the
    CPU flash kernel, which FlopCounterMode does not know by itself).
    """
    c, heads, lq, lk = 64, 8, 48, 96
    query, key = torch.randn(2, lq, c), torch.randn(2, lk, c)
    value = torch.rand(2, lk)
    projections = 2 * lq * c * c + 2 * lk * c * c
    scores = 2 * lq * lk * c
    for impl, value_width in (('fused', c // heads), ('sdpa', 1),
                              ('naive', 1)):
        attention = DCAMAAttention(c, heads, attn_impl=impl).eval()
        with torch.no_grad():
            flops = tool.count_flops(lambda: attention(query, key, value))
        expected = 2 * (projections + scores +
                        2 * heads * lq * lk * value_width)
        assert flops == expected, impl


def test_bad_arguments(tool, tiny_cfg, tmp_path):
    with pytest.raises(FileNotFoundError, match='not found'):
        tool.main([str(tmp_path / 'missing.py')])
    with pytest.raises(ValueError, match='--shots'):
        tool.main([tiny_cfg, '--shots', '0'])
    no_model = tmp_path / 'no_model.py'
    no_model.write_text('x = 1\n')
    with pytest.raises(ValueError, match='has no `model`'):
        tool.main([str(no_model)])


def test_flops_counted_across_backbone_workers(tool, tiny_cfg):
    """FlopCounterMode sees one thread: the backbone's FLOPs are the same
    whether its images run on worker threads or not."""
    plain, _ = _run(tool, tiny_cfg, '--shots', '3', threads=2)
    workers, _ = _run(
        tool,
        tiny_cfg,
        '--shots',
        '3',
        '--cfg-options',
        'model.cpu_backbone_workers=2',
        threads=2)
    assert workers['options']['cpu_backbone_workers'] == '2'
    assert workers['flops_backbone'] == plain['flops_backbone'] > 0
    assert workers['flops_head'] == plain['flops_head']
