"""dcama_mm.analysis.cli: the shared options, config loading, threads and
the speed policy a config asks for."""
import pytest
import torch
from mmengine.config import Config

from dcama_mm.analysis import (add_size_argument, analysis_parser,
                               fast_path_setting, load_analysis_config,
                               set_threads)
from dcama_mm.models.utils.fast_paths import ENV_VAR, fast_paths_default


def test_parser_with_common_options():
    parser = analysis_parser('what it does', repeat=3, threads=None)
    add_size_argument(parser, '--size', (384, 320), 'network input size')
    opts = parser.parse_args(
        ['c.py', '--cfg-options', 'model.fast_paths=False', 'a.b=1'])
    assert (opts.config, opts.repeat, opts.threads) == ('c.py', 3, None)
    assert opts.size == [384, 320]
    assert opts.cfg_options == {'model.fast_paths': False, 'a.b': 1}
    opts = parser.parse_args(['c.py', '--size', '64', '32', '--repeat', '1'])
    assert opts.size == [64, 32] and opts.repeat == 1
    assert not hasattr(opts, 'warmup')
    with pytest.raises(ValueError, match='unknown options'):
        analysis_parser('x', repeats=3)


def test_load_analysis_config(tmp_path):
    with pytest.raises(FileNotFoundError, match='pass a model config'):
        load_analysis_config(
            str(tmp_path / 'missing.py'), None, 'a model config')
    path = tmp_path / 'cfg.py'
    path.write_text('model = dict(type="X", fast_paths=None)\n')
    cfg = load_analysis_config(str(path), {'model.fast_paths': False})
    assert cfg.model.fast_paths is False


def test_set_threads():
    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
        set_threads(None)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match='--threads'):
        set_threads(0)


def test_fast_path_setting(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    unset = fast_path_setting(Config(dict(model=dict(type='X'))))
    assert unset == {
        'enabled': fast_paths_default(),
        ENV_VAR: None,
        'model.fast_paths': None
    }
    monkeypatch.setenv(ENV_VAR, '1')
    off = fast_path_setting(Config(dict(model=dict(fast_paths=False))))
    assert off == {'enabled': False, ENV_VAR: '1', 'model.fast_paths': False}
    assert fast_path_setting(Config(
        dict(model=dict(fast_paths=True))))['enabled'] is True
