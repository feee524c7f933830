"""The weight converters say what they convert and refuse what does not fit.

- ``resnet2mmpretrain.py`` reads the depth from the keys, prints it, records
  it in the output's ``meta``, refuses basic-block ResNets (18/34, which
  ``BlockFeatureResNet`` cannot build) and a depth other than ``--depth``.
- ``swin2mmpretrain.py`` does the same for the Swin size (``--arch``).
- Files that are not PyTorch checkpoints are named as such; a dcama_mm
  checkpoint given to ``dcama2mmseg.py`` needs no conversion.
"""
import importlib.util
import os.path as osp

import pytest
import torch
import torchvision

import dcama_mm  # noqa: F401
from tests.reference import randomize_parameters
from tests.reference.official_swin import OfficialSwin
from tests.reference.torchvision_resnet import torchvision_resnet

TOOLS = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools',
    'model_converters')


def _tool(name):
    spec = importlib.util.spec_from_file_location(name[:-3],
                                                  osp.join(TOOLS, name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fails(tool, argv, capsys=None):
    with pytest.raises(SystemExit) as info:
        tool.main(argv)
    return str(info.value) + (capsys.readouterr().err if capsys else '')


def test_resnet18_is_refused(tmp_path, capsys):
    src, dst = tmp_path / 'resnet18.pth', tmp_path / 'out.pth'
    torch.save(torchvision.models.resnet18().state_dict(), src)
    message = _fails(_tool('resnet2mmpretrain.py'), [str(src), str(dst)])
    assert 'Detected ResNet-18 weights.' in capsys.readouterr().out
    assert message.startswith(f'resnet2mmpretrain: error: {src}: these are '
                              'ResNet-18 weights (BasicBlocks, blocks per '
                              'stage (2, 2, 2, 2))')
    assert 'bottleneck ResNets (depth 50, 101, 152)' in message
    assert not dst.exists()


def test_resnet_depth_is_detected_recorded_and_checked(tmp_path, capsys):
    tool = _tool('resnet2mmpretrain.py')
    src, dst = tmp_path / 'resnet101.pth', tmp_path / 'out.pth'
    torch.save(torchvision_resnet(101, base_channels=8).state_dict(), src)
    message = _fails(tool, [str(src), str(dst), '--depth', '50'])
    assert ('--depth 50 was asked for but these are ResNet-101 weights '
            '(blocks per stage (3, 4, 23, 3))') in message
    assert not dst.exists()
    capsys.readouterr()
    tool.main([str(src), str(dst), '--depth', '101'])
    out = capsys.readouterr().out
    assert 'Detected ResNet-101 weights.' in out
    assert 'depth=101' in out
    meta = torch.load(dst, weights_only=True)['meta']
    assert meta['depth'] == 101 and meta['block'] == 'Bottleneck'
    assert meta['num_blocks'] == [3, 4, 23, 3]
    # without --depth the depth is still printed and recorded
    tool.main([str(src), str(dst), '--force'])
    assert torch.load(dst, weights_only=True)['meta']['depth'] == 101


def test_swin_size_is_detected_and_checked(tmp_path, capsys):
    tool = _tool('swin2mmpretrain.py')
    official = randomize_parameters(
        OfficialSwin(
            img_size=96,
            embed_dim=16,
            depths=(2, 2, 2, 2),
            num_heads=(1, 2, 2, 4),
            window_size=3))
    src, dst = tmp_path / 'swin.pth', tmp_path / 'out.pth'
    torch.save({'model': official.state_dict()}, src)
    message = _fails(tool, [str(src), str(dst), '--arch', 'base'])
    assert ('--arch base (embed_dims 128, depths (2, 2, 18, 2), num_heads '
            '(4, 8, 16, 32)) was asked for but these are a Swin Transformer'
            ' (embed_dims 16, depths (2, 2, 2, 2), window 3) weights'
            ) in message
    assert not dst.exists()
    capsys.readouterr()
    tool.main([str(src), str(dst)])
    assert ('Detected a Swin Transformer (embed_dims 16, depths (2, 2, 2, 2),'
            ' window 3) weights.') in capsys.readouterr().out
    meta = torch.load(dst, weights_only=True)['meta']
    assert meta['embed_dims'] == 16 and meta['depths'] == [2, 2, 2, 2]
    assert meta['num_heads'] == [1, 2, 2, 4] and meta['window_size'] == 3
    assert meta['arch'] is None


def test_swin_base_is_named(tmp_path, capsys):
    """The full Swin-B layout (shapes only matter: no weights computed)."""
    from dcama_mm.models.utils.backbone_converters import \
        describe_official_swin
    official = OfficialSwin(
        img_size=384,
        embed_dim=128,
        depths=(2, 2, 18, 2),
        num_heads=(4, 8, 16, 32),
        window_size=12)
    info = describe_official_swin(official.state_dict())
    assert info['arch'] == 'base' and info['window_size'] == 12
    assert info['name'].startswith('Swin-B (embed_dims 128')


@pytest.mark.parametrize('tool_name', [
    'resnet2mmpretrain.py', 'swin2mmpretrain.py', 'dcama2mmseg.py'
])
def test_not_a_checkpoint(tmp_path, tool_name, capsys):
    tool = _tool(tool_name)
    text = tmp_path / 'readme.pth'
    text.write_text('Swin-B weights: see the release page\n')
    noise = tmp_path / 'noise.pth'
    noise.write_bytes(bytes(range(200, 256)) * 20)
    for path, reason in (
            (text, "a text file starting with 'Swin-B weights: see the "
             "release page'"),
            (noise, 'its first bytes are c8 c9 ca cb cc cd ce cf')):
        message = _fails(tool, [str(path), str(tmp_path / 'o.pth')], capsys)
        assert f'{path} is not a PyTorch checkpoint ({reason}' in message
        assert 'weights_only' not in message and 'Unpickl' not in message
    assert not (tmp_path / 'o.pth').exists()


def test_dcama2mmseg_on_a_dcama_mm_checkpoint(tmp_path, capsys):
    """Both kinds of dcama_mm checkpoint: a converter's output (tensors
    only) and one written by the Runner (pickles mmengine objects; read
    without unpickling them)."""
    from mmengine.logging import HistoryBuffer
    from tests.test_models.dcama_cases import build_segmentor
    state = build_segmentor('r50').state_dict()
    plain = tmp_path / 'converted.pth'
    torch.save(dict(state_dict=state, meta=dict(converted_from='x.pt')),
               plain)
    runner_like = tmp_path / 'epoch_3.pth'
    torch.save(
        dict(
            meta=dict(epoch=3),
            state_dict=state,
            message_hub=dict(log_scalars={'loss': HistoryBuffer()})),
        runner_like)
    tool = _tool('dcama2mmseg.py')
    for path in (plain, runner_like):
        message = _fails(tool, [str(path), str(tmp_path / 'o.pth')], capsys)
        assert 'already a dcama_mm checkpoint: nothing to convert' in message
        assert 'weights_only' not in message
    assert not (tmp_path / 'o.pth').exists()
