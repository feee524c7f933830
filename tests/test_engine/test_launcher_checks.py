"""``--launcher pytorch`` outside torchrun is refused when the arguments are
parsed, naming the missing variables and how to start the tool."""
import os.path as osp

import pytest

from dcama_mm.engine import launch
from dcama_mm.engine.launcher_checks import TORCHRUN_VARIABLES
from tests.test_tools.tiny_project import TOOLS, run, tool_env


@pytest.mark.parametrize('tool', ['train.py', 'test.py'])
def test_launcher_pytorch_without_torchrun_is_refused(tool, tmp_path):
    """It used to load the config and fail in torch's rendezvous
    (``environment variable RANK expected, but not set``)."""
    env = {k: v for k, v in tool_env().items()
           if k not in TORCHRUN_VARIABLES}
    args = [osp.join(TOOLS, tool), 'missing_config.py']
    if tool == 'test.py':
        args.append('missing.pth')
    proc = run(['python', *args, '--launcher', 'pytorch'], cwd=str(tmp_path),
               env=env, check=False)
    assert proc.returncode == 2, proc.stdout
    assert ('argument --launcher: pytorch needs the variables torchrun sets '
            '(RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT not set)'
            ) in proc.stdout
    assert 'tools/dist_train.sh CONFIG N' in proc.stdout
    assert 'rendezvous' not in proc.stdout


def test_launcher_pytorch_under_torchrun_parses(monkeypatch):
    for name in TORCHRUN_VARIABLES:
        monkeypatch.setenv(name, '0')
    parser = launch.tool_arg_parser('a tool', 'config', 'work dir')
    args = launch.parse_tool_args(parser, ['c.py', '--launcher', 'pytorch'])
    assert args.launcher == 'pytorch'
    monkeypatch.delenv('MASTER_PORT')
    with pytest.raises(SystemExit):
        launch.parse_tool_args(
            launch.tool_arg_parser('a tool', 'config', 'work dir'),
            ['c.py', '--launcher', 'pytorch'])
    # the other launchers are not concerned
    args = launch.parse_tool_args(
        launch.tool_arg_parser('a tool', 'config', 'work dir'), ['c.py'])
    assert args.launcher == 'none'
