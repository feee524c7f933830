"""A config's own ``ResizeEpisode`` scale below the backbone's largest
stride (32) is refused when the config is checked, before any episode
(it gave all-zero masks and ran to the end)."""
import os.path as osp

import pytest
import torch

from dcama_mm.engine import launch
from tests.test_engine.test_option_checks import tiny, tool_config
from tests.test_tools.tiny_project import TEST_EPISODES, TOOLS, run

__all__ = ['tiny']  # the tiny project fixture of the option checks

#: The tiny config's test pipeline step that resizes.
TEST_RESIZE = 'test_dataloader.dataset.pipeline.1.scale'


@pytest.fixture(scope='module')
def checkpoint(tiny):
    """A checkpoint that fits the tiny model (random weights)."""
    from dcama_mm.apis import init_model
    root, config = tiny
    path = str(root / 'tiny.pth')
    torch.save(dict(state_dict=init_model(config).state_dict()), path)
    return path


def _small_config(tiny, name, scale):
    """The tiny config with ``scale`` as its test pipeline's own."""
    root, config = tiny
    path = root / f'{name}.py'
    path.write_text(f'_base_ = [{config!r}]\n'
                    'test_pipeline = [\n'
                    "    dict(type='LoadEpisode'),\n"
                    f"    dict(type='ResizeEpisode', scale={scale!r}),\n"
                    "    dict(type='PackFewShotInputs'),\n"
                    ']\n'
                    'test_dataloader = dict(dataset=dict('
                    'pipeline=test_pipeline))\n')
    return str(path)


def _expected(path, option, shown, size):
    return (f'config {path}: {option}={shown} makes the network size '
            f'{size} (h x w): each side must be at least the backbone\'s '
            'largest stride, 32, or the deepest features have no room and '
            'the masks come out empty.')


def test_test_tool_refuses_a_small_scale_before_any_episode(tiny,
                                                            checkpoint):
    # the checkpoint fits: before the check, the test ran to the end
    root, _ = tiny
    config = _small_config(tiny, 'small16', (16, 16))
    proc = run(['python', osp.join(TOOLS, 'test.py'), config, checkpoint,
                '--work-dir', str(root / 'wd16')], cwd=str(root),
               check=False)
    assert proc.returncode == 1, proc.stdout
    assert 'ValueError: ' + _expected(
        config, 'test_dataloader.dataset.pipeline[1].scale', '(16, 16)',
        '16x16') in proc.stdout
    assert ('Give a scale of at least 32 per side; the shipped configs use '
            '(384, 384), a multiple of 32 (in the config file, or '
            '--cfg-options test_dataloader.dataset.pipeline.1.scale='
            '"(384, 384)").') in proc.stdout
    assert 'Epoch(test)' not in proc.stdout
    assert not osp.exists(root / 'wd16')


@pytest.mark.parametrize('scale, shown, size', [
    ((16, 16), '(16, 16)', '16x16'),
    ((64, 16), '(64, 16)', '16x64'),
    (31, '31', '31x31'),
])
def test_build_runner_refuses_small_scales(tiny, scale, shown, size):
    root, _ = tiny
    config = _small_config(tiny, 'small', scale)
    cfg = tool_config(config, work_dir=str(root / 'small'))
    cfg.load_from = None
    with pytest.raises(ValueError) as info:
        launch.build_runner(cfg, 'none', launch.check_test_config)
    assert str(info.value).startswith(_expected(
        config, 'test_dataloader.dataset.pipeline[1].scale', shown, size))
    assert not osp.exists(root / 'small')


def test_cfg_options_scale_is_checked(tiny):
    """``--cfg-options test_dataloader.dataset.pipeline.1.scale=16``."""
    root, config = tiny
    cfg = tool_config(config, [f'{TEST_RESIZE}=16'])
    with pytest.raises(ValueError, match=r'pipeline\[1\]\.scale=16 makes '
                       'the network size 16x16'):
        launch.check_test_config(cfg)


def test_train_tool_checks_train_and_val_pipelines(tiny):
    _, config = tiny
    for loader in ('train_dataloader', 'val_dataloader'):
        cfg = tool_config(config, [f'{loader}.dataset.pipeline.1.scale=16'])
        with pytest.raises(ValueError, match=rf'{loader}\.dataset\.'
                           r'pipeline\[1\]\.scale=16 makes the network '
                           'size 16x16'):
            launch.check_train_config(cfg)
        # the test tool reads only the test loader
        launch.check_test_config(cfg)


def test_a_scale_of_64_is_accepted_and_runs(tiny):
    root, _ = tiny
    config = _small_config(tiny, 'ok64', (64, 64))
    cfg = tool_config(config, work_dir=str(root / 'ok64'))
    cfg.load_from = None
    launch.check_train_config(cfg)
    runner = launch.build_runner(cfg, 'none', launch.check_test_config)
    metrics = runner.test()
    assert metrics['num_episodes'] == TEST_EPISODES
    resize = runner.test_dataloader.dataset.pipeline.transforms[1]
    assert resize.scale == (64, 64)


def test_inferencer_refuses_the_config_scale_without_img_size(
        tiny, checkpoint):
    """FewShotInferencer (tools/infer.py) on a config whose own test scale
    is 16x16 gave all-zero masks; now refused, with img_size as a way out,
    which still works."""
    import numpy as np
    from PIL import Image
    from dcama_mm.apis import FewShotInferencer
    root, _ = tiny
    config = _small_config(tiny, 'infer16', (16, 16))
    with pytest.raises(ValueError) as info:
        FewShotInferencer(config, device='cpu')
    message = str(info.value)
    assert message.startswith(_expected(
        config, 'test_dataloader.dataset.pipeline[1].scale', '(16, 16)',
        '16x16'))
    assert message.endswith(', or pass img_size=384 (tools/infer.py: '
                            '--img-size 384).')
    assert FewShotInferencer(config, device='cpu',
                             img_size=64).img_size == (64, 64)
    # tools/infer.py: exit status 2, that message, nothing written
    image = str(root / 'image.png')
    mask = str(root / 'mask.png')
    Image.fromarray(np.full((40, 50, 3), 128, np.uint8)).save(image)
    Image.fromarray(np.eye(40, 50, dtype=np.uint8)).save(mask)
    out = str(root / 'infer_out')
    proc = run(['python', osp.join(TOOLS, 'infer.py'), config, checkpoint,
                '--support', f'{image}:{mask}', '--query', image, '--out',
                out, '--device', 'cpu'], cwd=str(root), check=False)
    assert proc.returncode == 2, proc.stdout
    assert 'pipeline[1].scale=(16, 16) makes the network size 16x16' in \
        proc.stdout
    assert not osp.exists(osp.join(out, 'pred'))
