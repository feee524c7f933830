"""What the small tools write never replaces a file the user had:
``tools/misc/publish_model.py`` and ``tools/misc/print_config.py``."""
import os.path as osp

import torch

from tests.test_tools.tiny_project import DEMO_CONFIG, TOOLS, load_tool, run


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
