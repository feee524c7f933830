"""What the small tools write never replaces a file the user had, and a
bad ``--out`` is refused before the work: ``tools/misc/publish_model.py``,
``tools/misc/print_config.py``, ``tools/analysis_tools/eval_n_way.py``
and ``tools/analysis_tools/amp_agreement.py``."""
import json
import os
import os.path as osp

import pytest
import torch


import dcama_mm  # noqa: F401  (registers the model)
from tests.test_tools.tiny_project import (DEMO_CONFIG, TOOLS, load_tool,
                                           make_tiny_project, run)


def _training_checkpoint(path: str) -> None:
    """A checkpoint as the Runner writes it (weights + training state)."""
    torch.save(
        dict(
            state_dict={'decode_head.conv.weight': torch.arange(6.)},
            meta=dict(epoch=3, random_states=[1, 2]),
            optimizer=dict(state={}, param_groups=[dict(lr=1e-3)]),
            message_hub=dict()), path)


def test_publish_model_to_the_input_name_keeps_the_input(tmp_path):
    """``publish_model.py ckpt.pth ckpt.pth`` used to overwrite the input
    with the stripped copy and rename it: the training checkpoint (its
    optimizer state, needed to resume) was gone."""
    tool = load_tool('misc/publish_model.py')
    ckpt = str(tmp_path / 'epoch_3.pth')
    _training_checkpoint(ckpt)
    final = tool.main([ckpt, ckpt])
    assert osp.isfile(ckpt), 'the input checkpoint was removed'
    kept = torch.load(ckpt, map_location='cpu', weights_only=False)
    assert 'optimizer' in kept and kept['meta']['random_states'] == [1, 2]
    published = torch.load(final, map_location='cpu', weights_only=False)
    assert set(published) == {'state_dict', 'meta'}
    assert torch.equal(published['state_dict']['decode_head.conv.weight'],
                       torch.arange(6.))


def test_publish_model_leaves_a_file_at_out_file_alone(tmp_path):
    """The sha256 name is the result; a file already at OUT is not
    overwritten (nor renamed) on the way."""
    tool = load_tool('misc/publish_model.py')
    ckpt = str(tmp_path / 'epoch_3.pth')
    _training_checkpoint(ckpt)
    mine = tmp_path / 'release.pth'
    mine.write_bytes(b'my other model')
    final = tool.main([ckpt, str(mine)])
    assert mine.read_bytes() == b'my other model'
    assert osp.basename(final).startswith('release-')
    assert not [p for p in tmp_path.iterdir() if '.tmp' in p.name]
    # the mode of a file written normally (the umask's), not a temp file's
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(final).st_mode & 0o777 == 0o666 & ~umask


def test_print_config_refuses_to_overwrite_an_existing_out(tmp_path):
    """``--out`` used to replace any file silently, the config itself
    included; now an existing file is refused unless ``--force``."""
    mine = tmp_path / 'mine.py'
    mine.write_text('# my notes\n')
    proc = run(['python', osp.join(TOOLS, 'misc', 'print_config.py'),
                DEMO_CONFIG, '--out', str(mine)], cwd=str(tmp_path),
               check=False)
    assert proc.returncode == 2, proc.stdout
    assert f'argument --out: {mine} already exists' in proc.stdout
    assert '--force' in proc.stdout
    assert mine.read_text() == '# my notes\n'
    run(['python', osp.join(TOOLS, 'misc', 'print_config.py'), DEMO_CONFIG,
         '--out', str(mine), '--force'], cwd=str(tmp_path))
    assert "type='FewShotSegmentor'" in mine.read_text()


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """Tiny COCO-20i-format data, its config and a random checkpoint."""
    root = str(tmp_path_factory.mktemp('tool_outputs'))
    return make_tiny_project(root)


def test_eval_n_way_out_is_checked_before_the_episodes(tiny, tmp_path):
    """``--out`` in a folder that did not exist used to fail after every
    episode had run (FileNotFoundError in ``open``), and an existing file
    was replaced; now the folder is made, and an existing file is refused
    before anything is built."""
    tool = load_tool('analysis_tools/eval_n_way.py')
    args = [tiny['config'], tiny['ckpt'], '--ways', '2', '--episodes', '2']
    out = tmp_path / 'new' / 'folder' / 'n_way.json'
    figures = tool.main(args + ['--out', str(out)])
    with open(out) as f:
        assert json.load(f)['n_way']['mIoU'] == figures['n_way']['mIoU']
    mine = tmp_path / 'mine.json'
    mine.write_text('{"mine": 1}')
    proc = run(['python', osp.join(TOOLS, 'analysis_tools', 'eval_n_way.py'),
                *args, '--out', str(mine)], cwd=tiny['root'], check=False)
    assert proc.returncode == 2, proc.stdout
    assert f'argument --out: {mine} already exists' in proc.stdout
    assert 'episodes; mIoU' not in proc.stdout  # refused before the work
    assert mine.read_text() == '{"mine": 1}'


@pytest.mark.parametrize('option', ['--ways', '--shots', '--episodes'])
def test_eval_n_way_counts_below_one_are_refused(tiny, option):
    """``--episodes 0`` used to run every episode (the count was compared
    for equality after each episode); ``--ways 0`` / ``--shots 0`` failed
    inside the inferencer."""
    tool = load_tool('analysis_tools/eval_n_way.py')
    with pytest.raises(SystemExit) as exit_:
        tool.parse_args([tiny['config'], tiny['ckpt'], option, '0'])
    assert exit_.value.code == 2


def test_amp_agreement_out_is_checked_before_the_model(tiny, tmp_path):
    tool = load_tool('analysis_tools/amp_agreement.py')
    mine = tmp_path / 'agree.json'
    mine.write_text('{"mine": 1}')
    with pytest.raises(SystemExit) as exit_:
        tool.parse_args([tiny['config'], '--random', '1', '--out',
                         str(mine)])
    assert exit_.value.code == 2
    assert mine.read_text() == '{"mine": 1}'
    # a folder at the path is refused the same way (it failed at the end)
    with pytest.raises(SystemExit):
        tool.parse_args([tiny['config'], '--random', '1', '--out',
                         str(tmp_path)])
    opts = tool.parse_args([tiny['config'], '--random', '1', '--out',
                            str(mine), '--force'])
    assert opts.force


def test_test_show_dir_keeps_the_pictures_of_an_earlier_run(tiny, tmp_path):
    """An absolute ``--show-dir`` is used as is: a second test into it
    (another checkpoint, other shots) used to overwrite the earlier run's
    pictures without a word. Now it is refused before the Runner is built,
    unless ``--force``. (A relative one is under work_dir/<timestamp>/.)"""
    show = tmp_path / 'pictures'
    show.mkdir()
    earlier = show / 'episode_00000_cls.png'
    earlier.write_bytes(b'the earlier run')
    cmd = ['python', osp.join(TOOLS, 'test.py'), tiny['config'],
           tiny['ckpt'], '--work-dir', str(tmp_path / 'work'),
           '--show-dir', str(show)]
    proc = run(cmd, cwd=tiny['root'], check=False)
    assert proc.returncode == 2, proc.stdout
    assert f'argument --show-dir: Episode pictures already exist: {earlier}'\
        in proc.stdout
    assert 'Epoch(test)' not in proc.stdout
    assert earlier.read_bytes() == b'the earlier run'
    run(cmd + ['--force'], cwd=tiny['root'])
    assert earlier.read_bytes() == b'the earlier run'  # not an episode name
    assert len(list(show.glob('episode_*.png'))) == 1 + 7


def test_browse_dataset_keeps_the_pictures_of_an_earlier_run(tiny, tmp_path):
    """``--split train`` and ``--split test`` (or two ``--cfg-options``)
    into one ``--output-dir`` give the same names (episode_<index>_<class>)
    for other episodes: the later run used to overwrite the earlier one's
    pictures. Now refused before the dataset is built, unless --force."""
    tool = load_tool('analysis_tools/browse_dataset.py')
    out = str(tmp_path / 'browse')
    first = tool.main([tiny['config'], '--split', 'val', '--num', '2',
                       '--output-dir', out])
    pictures = {p: open(p, 'rb').read() for p in first}
    args = [tiny['config'], '--split', 'test', '--num', '2', '--output-dir',
            out]
    with pytest.raises(SystemExit) as exit_:
        tool.main(args)
    assert exit_.value.code == 2
    assert {p: open(p, 'rb').read() for p in first} == pictures
    assert len(tool.main(args + ['--force'])) == 2
    blocker = tmp_path / 'a_file'
    blocker.write_text('x')
    with pytest.raises(SystemExit):
        tool.main([tiny['config'], '--output-dir', str(blocker)])
