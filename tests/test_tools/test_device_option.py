"""``--device`` the machine cannot use: argparse's message, not torch's
traceback from inside model loading (tools/infer.py, the analysis tools)."""
import os.path as osp

import pytest
import torch

from dcama_mm.analysis import analysis_parser
from dcama_mm.utils.device import check_device
from tests.test_tools.test_infer import load_tool

no_gpu = pytest.mark.skipif(
    torch.cuda.is_available(), reason='needs a machine without a GPU')

NO_CUDA = ('--device cuda: CUDA is not available on this machine ('
           )
ADVICE = ('Use --device cpu, or leave --device out (cuda if available, '
          'else cpu).')


@no_gpu
def test_infer_device_cuda_without_gpu(tmp_path, capsys):
    """tools/infer.py with a real tiny checkpoint: exit 2 and the reason
    before the model is built; nothing written."""
    from tests.test_apis.inferencer_helpers import (CONFIG_TEXT,
                                                    build_tiny_model,
                                                    write_episode_files)
    cfg_file = tmp_path / 'tiny.py'
    cfg_file.write_text(CONFIG_TEXT)
    ckpt = str(tmp_path / 'tiny.pth')
    torch.save(dict(state_dict=build_tiny_model().state_dict()), ckpt)
    supports, masks, queries = write_episode_files(
        str(tmp_path), shots=1, query_sizes=[(40, 40)])
    out = tmp_path / 'out'
    tool = load_tool('tools/infer.py')
    with pytest.raises(SystemExit) as info:
        tool.main([
            str(cfg_file), ckpt, '--support', f'{supports[0]}:{masks[0]}',
            '--query', queries[0], '--out', str(out), '--device', 'cuda'
        ])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert 'argument --device: ' + NO_CUDA in err and ADVICE in err
    assert 'Traceback' not in err
    assert not osp.exists(out)


@no_gpu
@pytest.mark.parametrize('device', ['cuda', 'cuda:0'])
def test_analysis_tools_device_without_gpu(device, capsys):
    parser = analysis_parser('bench', device=None)
    with pytest.raises(SystemExit):
        parser.parse_args(['cfg.py', '--device', device])
    assert f'argument --device: --device {device}: CUDA is not available' \
        in capsys.readouterr().err


def test_device_names():
    check_device(None)
    check_device('cpu')
    with pytest.raises(ValueError,
                       match='--device cdua: not a device; use cpu, cuda or '
                       'cuda:N.'):
        check_device('cdua')
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        check_device(f'cuda:{count - 1}')
        with pytest.raises(ValueError, match=f'only {count} GPU'):
            check_device(f'cuda:{count}')
    else:
        with pytest.raises(ValueError, match=NO_CUDA.replace('(', r'\(')):
            check_device('cuda', option='--device')
