"""``randomness`` (mmengine's seed settings) is checked with the config.

``--cfg-options randomness.seed=x`` used to end in numpy's ``TypeError:
Cannot cast scalar from dtype('<U1') ...`` once the Runner was being
built; now the tools refuse it first, naming the option.
"""
import os.path as osp

import pytest
from mmengine.config import Config

from dcama_mm.engine.randomness_checks import check_randomness
from dcama_mm.utils.checks import UnknownOptionError
from tests.test_tools.tiny_project import TOOLS, make_tiny_project, run


@pytest.mark.parametrize('randomness', [
    None, dict(), dict(seed=None), dict(seed=0), dict(seed=2**32 - 1),
    dict(seed=3, deterministic=True, diff_rank_seed=False)
])
def test_valid_randomness_passes(randomness):
    check_randomness(Config(dict(randomness=randomness)))


@pytest.mark.parametrize('randomness,message', [
    (dict(seed='x'), "randomness.seed: 'x' is not an integer"),
    (dict(seed=1.5), 'randomness.seed: 1.5 is not an integer'),
    (dict(seed=True), 'randomness.seed: True is not an integer'),
    (dict(seed=-1), "randomness.seed: -1 is not an integer in [0, 2**32)"),
    (dict(seed=2**32), "randomness.seed: 4294967296 is not an integer"),
    (dict(deterministic='yes'),
     "randomness.deterministic: 'yes' is not True or False"),
    (dict(diff_rank_seed=1), 'randomness.diff_rank_seed: 1 is not True or'),
])
def test_bad_values_are_named(randomness, message):
    with pytest.raises(ValueError) as info:
        check_randomness(Config(dict(randomness=randomness)))
    assert str(info.value).startswith(message), str(info.value)
    assert '--cfg-options randomness.' in str(info.value)


def test_unknown_key_names_the_closest():
    with pytest.raises(UnknownOptionError, match="'sed'.*did you mean "
                       "'seed'"):
        check_randomness(Config(dict(randomness=dict(sed=1))))


def test_tools_refuse_a_bad_seed_before_the_runner(tmp_path):
    root = str(tmp_path)
    project = make_tiny_project(root)
    config, ckpt = project['config'], project['ckpt']
    for tool, args in (('test.py', [config, ckpt]), ('train.py', [config])):
        proc = run(['python', osp.join(TOOLS, tool), *args, '--work-dir',
                    osp.join(root, tool), '--cfg-options',
                    'randomness.seed=x'], cwd=root, check=False)
        assert proc.returncode != 0, tool
        assert "randomness.seed: 'x' is not an integer" in proc.stdout, (
            proc.stdout[-3000:])
        assert 'Cannot cast scalar' not in proc.stdout
