"""Checkpoint files in and out of the weight converters."""
from collections import OrderedDict

import pytest
import torch

from dcama_mm.models.utils import (check_output_path, convert_checkpoint_file,
                                   converter_arg_parser, load_state_dict_file,
                                   save_checkpoint_file)

WEIGHTS = OrderedDict(
    [('conv.weight', torch.arange(6.).view(2, 3)),
     ('conv.bias', torch.ones(2))])


def _assert_same(state_dict, expected=WEIGHTS):
    assert list(state_dict) == list(expected)
    for key, value in expected.items():
        torch.testing.assert_close(state_dict[key], value)


@pytest.mark.parametrize('wrapper', [None, 'model', 'state_dict'])
@pytest.mark.parametrize('ddp', [False, True])
def test_load_state_dict_file_layouts(tmp_path, wrapper, ddp):
    weights = OrderedDict(
        ('module.' + k if ddp else k, v) for k, v in WEIGHTS.items())
    path = tmp_path / 'ckpt.pth'
    torch.save(weights if wrapper is None else {
        wrapper: weights,
        'meta': {}
    }, path)
    _assert_same(load_state_dict_file(str(path)))


def test_load_state_dict_file_keeps_partial_module_prefix(tmp_path):
    # only a prefix on every key is DistributedDataParallel's
    weights = {'module.a': torch.zeros(1), 'b': torch.ones(1)}
    path = tmp_path / 'ckpt.pth'
    torch.save(weights, path)
    assert set(load_state_dict_file(str(path))) == {'module.a', 'b'}


def test_load_state_dict_file_errors(tmp_path):
    missing = tmp_path / 'missing.pth'
    with pytest.raises(FileNotFoundError, match='missing.pth does not exist'):
        load_state_dict_file(str(missing))
    junk = tmp_path / 'junk.pth'
    junk.write_text('not a checkpoint')
    with pytest.raises(ValueError,
                       match='junk.pth is not a PyTorch checkpoint'):
        load_state_dict_file(str(junk))
    listed = tmp_path / 'list.pth'
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(ValueError, match='holds a list, not a state dict'):
        load_state_dict_file(str(listed))


def test_check_output_path(tmp_path):
    dst = tmp_path / 'out.pth'
    check_output_path(str(dst))  # absent: fine
    dst.write_bytes(b'keep')
    with pytest.raises(FileExistsError, match='exists; pass --force'):
        check_output_path(str(dst))
    check_output_path(str(dst), force=True)
    assert dst.read_bytes() == b'keep'


def test_save_checkpoint_file_creates_folders(tmp_path):
    dst = tmp_path / 'a' / 'b' / 'out.pth'
    meta = dict(source='x')
    save_checkpoint_file(WEIGHTS, str(dst), meta=meta)
    saved = torch.load(dst, weights_only=True)
    assert set(saved) == {'state_dict', 'meta'}
    assert saved['meta'] == dict(source='x')
    _assert_same(saved['state_dict'])
    save_checkpoint_file(WEIGHTS, str(dst))
    assert torch.load(dst, weights_only=True)['meta'] == {}


def test_convert_checkpoint_file(tmp_path):
    src, dst = tmp_path / 'release.pth', tmp_path / 'out' / 'conv.pth'
    torch.save({'model': WEIGHTS}, src)

    def rename(weights):
        return OrderedDict(('backbone.' + k, v) for k, v in weights.items())

    weights, converted = convert_checkpoint_file(
        str(src), str(dst), rename, meta=dict(layout='Test'))
    _assert_same(weights)
    saved = torch.load(dst, weights_only=True)
    assert saved['meta'] == dict(converted_from='release.pth', layout='Test')
    _assert_same(saved['state_dict'], converted)
    assert list(converted) == ['backbone.conv.weight', 'backbone.conv.bias']

    # an existing output is kept unless forced
    with pytest.raises(FileExistsError):
        convert_checkpoint_file(str(src), str(dst), rename)
    convert_checkpoint_file(str(src), str(dst), rename, force=True)
    assert torch.load(dst, weights_only=True)['meta'] == dict(
        converted_from='release.pth')


def test_convert_checkpoint_file_names_the_source_on_bad_layouts(tmp_path):
    src, dst = tmp_path / 'release.pth', tmp_path / 'conv.pth'
    torch.save(WEIGHTS, src)

    def reject(weights):
        raise ValueError('Unrecognised backbone weights.')

    with pytest.raises(ValueError,
                       match=r'release\.pth: Unrecognised backbone'):
        convert_checkpoint_file(str(src), str(dst), reject)
    assert not dst.exists()


def test_converter_arg_parser():
    parser = converter_arg_parser('Convert X.', src_help='X checkpoint')
    args = parser.parse_args(['a.pth', 'out/b.pth'])
    assert (args.src, args.dst, args.force) == ('a.pth', 'out/b.pth', False)
    assert parser.parse_args(['a.pth', 'b.pth', '--force']).force
    assert 'X checkpoint' in parser.format_help()
    with pytest.raises(SystemExit):
        parser.parse_args(['a.pth'])
