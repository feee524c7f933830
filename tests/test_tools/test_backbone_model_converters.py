"""The backbone weight converters, run as users run them.

Each subprocess pays for importing the OpenMMLab stack (~5-15 s on the
2-core machines), so one run per tool goes through a real process and the
other cases call the same ``main(argv)`` in-process.
"""
import importlib.util
import os
import os.path as osp
import subprocess
import sys
from collections import OrderedDict
from types import ModuleType

import pytest
import torch
from mmengine.runner import load_checkpoint

from dcama_mm.models.backbones import BlockFeatureResNet, BlockFeatureSwin
from tests.reference import randomize_parameters
from tests.reference.official_swin import OfficialSwin
from tests.reference.torchvision_resnet import (extract_block_features,
                                                torchvision_resnet)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools', 'model_converters')
SWIN_ARCH = dict(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4])


def run_tool(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, osp.join(TOOLS, name), *args],
                          capture_output=True,
                          text=True,
                          cwd=ROOT,
                          env={
                              **os.environ,
                              'PYTHONPATH': os.pathsep.join(
                                  p for p in (ROOT,
                                              os.environ.get('PYTHONPATH'))
                                  if p),
                              'OMP_NUM_THREADS': '1'
                          },
                          timeout=300)


def load_tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        name[:-3], osp.join(TOOLS, name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_official() -> OfficialSwin:
    return randomize_parameters(
        OfficialSwin(
            img_size=96,
            embed_dim=16,
            depths=(2, 2, 2, 2),
            num_heads=(1, 2, 2, 4),
            window_size=3)).eval()


def tiny_resnet() -> torch.nn.Module:
    return randomize_parameters(torchvision_resnet(50,
                                                   base_channels=8)).eval()


def test_swin2mmpretrain_cli(tmp_path):
    official = tiny_official()
    src, dst = tmp_path / 'swin_official.pth', tmp_path / 'out' / 'swin.pth'
    torch.save({'model': official.state_dict()}, src)

    result = run_tool('swin2mmpretrain.py', str(src), str(dst))
    assert result.returncode == 0, result.stderr
    assert str(dst) in result.stdout
    ckpt = torch.load(dst, weights_only=True)
    assert set(ckpt) == {'state_dict', 'meta'}
    assert ckpt['meta']['converted_from'] == 'swin_official.pth'

    # the backbone's init_cfg loads it, and nothing is missing or unexpected
    model = BlockFeatureSwin(
        arch=SWIN_ARCH,
        img_size=96,
        window_size=3,
        init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    model.init_weights()
    load_checkpoint(
        BlockFeatureSwin(arch=SWIN_ARCH, window_size=3), str(dst), strict=True)
    x = torch.rand(1, 3, 96, 96)
    for ours, ref in zip(model(x), official.forward_block_features(x)):
        torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


def test_resnet2mmpretrain_cli_rejects_wrong_layout(tmp_path):
    src = tmp_path / 'swin_official.pth'
    torch.save({'model': tiny_official().state_dict()}, src)
    result = run_tool('resnet2mmpretrain.py', str(src),
                      str(tmp_path / 'x.pth'))
    assert result.returncode != 0
    assert 'Expected resnet weights' in result.stderr
    assert str(src) in result.stderr
    assert 'Traceback' not in result.stderr
    assert not (tmp_path / 'x.pth').exists()


@pytest.mark.parametrize('wrapper', [None, 'state_dict', 'model'])
def test_resnet2mmpretrain(tmp_path, wrapper, capsys):
    tool = load_tool('resnet2mmpretrain.py')
    reference = tiny_resnet()
    weights = OrderedDict((k, v) for k, v in reference.state_dict().items()
                          if 'num_batches_tracked' not in k)  # as TIMM
    src, dst = tmp_path / 'resnet50_a1h.pth', tmp_path / 'resnet50.pth'
    torch.save(weights if wrapper is None else {wrapper: weights}, src)
    tool.main([str(src), str(dst)])
    assert str(dst) in capsys.readouterr().out

    model = BlockFeatureResNet(
        depth=50,
        base_channels=8,
        stem_channels=8,
        init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    model.init_weights()
    load_checkpoint(
        BlockFeatureResNet(depth=50, base_channels=8, stem_channels=8),
        str(dst),
        strict=True)
    torch.testing.assert_close(model.layer4[2].bn3.running_var,
                               reference.layer4[2].bn3.running_var)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected = extract_block_features(reference, x)
    for ours, ref in zip(model(x), expected):
        torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


def test_refuses_overwrite_unless_forced(tmp_path):
    tool = load_tool('swin2mmpretrain.py')
    src, dst = tmp_path / 'swin.pth', tmp_path / 'converted.pth'
    torch.save({'model': tiny_official().state_dict()}, src)
    dst.write_bytes(b'keep me')
    with pytest.raises(SystemExit, match='exists.*--force'):
        tool.main([str(src), str(dst)])
    assert dst.read_bytes() == b'keep me'
    tool.main([str(src), str(dst), '--force'])
    assert 'state_dict' in torch.load(dst, weights_only=True)


@pytest.mark.parametrize('tool_name', ['swin2mmpretrain.py',
                                       'resnet2mmpretrain.py'])
def test_bad_sources(tmp_path, tool_name):
    tool = load_tool(tool_name)
    with pytest.raises(SystemExit, match='does not exist'):
        tool.main([str(tmp_path / 'missing.pth'), str(tmp_path / 'o.pth')])
    junk = tmp_path / 'junk.pth'
    junk.write_text('not a checkpoint')
    with pytest.raises(SystemExit, match='is not a PyTorch checkpoint'):
        tool.main([str(junk), str(tmp_path / 'o.pth')])
    other = tmp_path / 'other.pth'
    torch.save({'state_dict': {'foo.weight': torch.zeros(1)}}, other)
    with pytest.raises(SystemExit, match='Unrecognised backbone weights'):
        tool.main([str(other), str(tmp_path / 'o.pth')])
    assert not (tmp_path / 'o.pth').exists()
