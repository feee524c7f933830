"""dcama_mm.engine.launch: the command line shared by tools/train.py and
tools/test.py, and the path checks' messages."""
import os.path as osp
import re

import pytest
from mmengine.config import Config

from dcama_mm.engine import launch
from dcama_mm.engine.config_checks import (check_checkpoint,
                                           check_dataset_paths)


def _parse(argv, monkeypatch, local_rank_env=None):
    if local_rank_env is None:
        monkeypatch.delenv('LOCAL_RANK', raising=False)
    else:
        monkeypatch.setenv('LOCAL_RANK', local_rank_env)
    parser = launch.tool_arg_parser('a tool', 'config help', 'work dir help')
    parser.add_argument('checkpoint')
    return launch.parse_tool_args(parser, argv)


def test_shared_arguments(monkeypatch):
    # what torchrun sets (checked for --launcher pytorch)
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.setenv(name, '0')
    args = _parse(['cfg.py', 'ckpt.pth', '--cfg-options', 'a.b=1',
                   '--launcher', 'pytorch', '--local-rank', '3'],
                  monkeypatch)
    assert (args.config, args.checkpoint) == ('cfg.py', 'ckpt.pth')
    assert args.cfg_options == {'a.b': 1}
    assert args.launcher == 'pytorch' and args.work_dir is None
    assert launch.os.environ['LOCAL_RANK'] == '3'
    # torchrun's LOCAL_RANK wins over the flag
    _parse(['cfg.py', 'ckpt.pth', '--local_rank', '1'], monkeypatch, '0')
    assert launch.os.environ['LOCAL_RANK'] == '0'


def test_load_tool_config_work_dir(tmp_path, monkeypatch):
    path = tmp_path / 'my_cfg.py'
    path.write_text('model = dict(type="X")\n')
    args = _parse([str(path), 'c.pth'], monkeypatch)
    cfg = launch.load_tool_config(args)
    assert cfg.work_dir == osp.join('./work_dirs', 'my_cfg')
    assert cfg.launcher == 'none'
    path.write_text('model = dict(type="X")\nwork_dir = "from_cfg"\n')
    assert launch.load_tool_config(args).work_dir == 'from_cfg'
    args = _parse([str(path), 'c.pth', '--work-dir', 'cli', '--cfg-options',
                   'model.type=Y'], monkeypatch)
    cfg = launch.load_tool_config(args)
    assert cfg.work_dir == 'cli' and cfg.model.type == 'Y'
    args.config = str(tmp_path / 'missing.py')
    with pytest.raises(FileNotFoundError,
                       match='config: the file ".*missing.py" does not'):
        launch.load_tool_config(args)


def test_build_runner_checks_first(tmp_path):
    calls = []

    def check(cfg):
        calls.append(cfg)
        raise ValueError('bad config')

    cfg = Config(dict(work_dir=str(tmp_path)))
    with pytest.raises(ValueError, match='bad config'):
        launch.build_runner(cfg, 'none', check)
    assert calls == [cfg]


def test_path_messages(tmp_path):
    root = str(tmp_path)
    (tmp_path / 'imgs').mkdir()
    cases = [
        (dict(data_root=str(tmp_path / 'no')),
         f'ds.data_root: the directory "{tmp_path / "no"}" does not exist '
         '(resolved from "'),
        (dict(data_root=root, ann_file='a_{fold}.json', fold=2),
         f'ds.ann_file: the file "{osp.join(root, "a_2.json")}" does not '
         'exist. Create it with the dataset converter in '
         'tools/dataset_converters/ or set --cfg-options '
         'ds.ann_file=/path/to/file.'),
        (dict(data_root=root, split_dir='splits'),
         f'ds.split_dir: the directory "{osp.join(root, "splits")}" does '
         'not exist. Put the split lists there (see the README) or set '
         '--cfg-options ds.split_dir=DIR.'),
        (dict(data_root=root, data_prefix=dict(img='imgs', seg='masks')),
         f'ds.data_prefix.seg: the directory "{osp.join(root, "masks")}" '
         'does not exist. Check the dataset layout in the README or set '
         '--cfg-options ds.data_prefix.seg=DIR.'),
        (dict(type='Wrapper', dataset=dict(data_root=str(tmp_path / 'x'))),
         'ds.dataset.data_root: the directory'),
    ]
    for cfg, message in cases:
        with pytest.raises(FileNotFoundError, match=re.escape(message)):
            check_dataset_paths(cfg, 'ds')
    # URLs and empty values are not checked
    check_dataset_paths(
        dict(data_root=root, ann_file='', data_prefix=dict(img='s3://b/i')),
        'ds')
    with pytest.raises(
            FileNotFoundError,
            match=re.escape('load_from: the checkpoint "no.pth" does not '
                            'exist (resolved from "') +
            '.*' + re.escape('"). Download or convert it (see the README '
                             'and tools/model_converters/) or give another '
                             'path.')):
        check_checkpoint('no.pth', 'load_from')
    check_checkpoint('https://host/x.pth', 'load_from')
    check_checkpoint(None, 'load_from')
