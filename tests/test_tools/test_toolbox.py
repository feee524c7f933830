"""tools/analysis_tools/{analyze_logs,browse_dataset}.py and
tools/misc/{print_config,publish_model}.py, run for real on the tiny
project (a tiny DCAMA trained here with mmengine's Runner)."""
import glob
import hashlib
import json
import os.path as osp
import re

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from PIL import Image

from tests.test_tools.tiny_project import (TEST_EPISODES, TOOLS,
                                           TRAIN_EPISODES, load_tool,
                                           make_tiny_data, run,
                                           write_tiny_config)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """The tiny config trained for 2 epochs in one process."""
    root = str(tmp_path_factory.mktemp('toolbox'))
    data_root = make_tiny_data(root)
    config = write_tiny_config(osp.join(root, 'tiny.py'), data_root)
    cfg = Config.fromfile(config)
    cfg.work_dir = osp.join(root, 'train')
    Runner.from_cfg(cfg).train()
    (scalars, ) = glob.glob(
        osp.join(cfg.work_dir, '*', 'vis_data', 'scalars.json'))
    return dict(root=root, config=config, work_dir=cfg.work_dir,
                scalars=scalars)


# ----------------------------------------------------------------------
# analyze_logs
# ----------------------------------------------------------------------
def test_analyze_logs_plots_the_runs_curves(trained, tmp_path):
    tool = load_tool('analysis_tools/analyze_logs.py')
    out = str(tmp_path / 'curves' / 'tiny.png')
    series = tool.main([trained['scalars'], '--keys', 'loss', 'mIoU',
                        'FB-IoU', '--out', out])
    with open(trained['scalars']) as f:
        records = [json.loads(line) for line in f]
    train = [r for r in records if 'epoch' in r]
    val = [r for r in records if 'mIoU' in r]
    # 1 process, batch 2: 4 iterations per epoch, logged every iteration
    iters = TRAIN_EPISODES // 2
    assert series['loss'][0] == [float(i) for i in range(1, 2 * iters + 1)]
    assert series['loss'][1] == [r['loss'] for r in train]
    # validation after each epoch, drawn at that epoch's last iteration
    assert series['mIoU'] == ([float(iters), float(2 * iters)],
                              [r['mIoU'] for r in val])
    assert series['FB-IoU'][1] == [r['FB-IoU'] for r in val]
    # the PNG: 3 panels (one per key) of 800 px wide, its series recorded
    image = Image.open(out)
    assert image.format == 'PNG' and image.size == (800, 900)
    assert json.loads(image.text['Series']) == [
        dict(label='loss', points=2 * iters),
        dict(label='mIoU', points=2),
        dict(label='FB-IoU', points=2)
    ]
    # not a blank canvas: the curves are drawn
    pixels = np.asarray(image.convert('L'))
    assert (pixels < 128).mean() > 0.01


def test_analyze_logs_two_runs_by_epoch_with_legend(trained, tmp_path):
    tool = load_tool('analysis_tools/analyze_logs.py')
    out = str(tmp_path / 'two.png')
    folder = osp.dirname(osp.dirname(trained['scalars']))  # <timestamp>/
    series = tool.main([trained['scalars'], folder, '--keys', 'loss',
                        '--x', 'epoch', '--legend', 'first', 'second',
                        '--out', out])
    assert list(series) == ['first', 'second']
    xs, ys = series['first']
    assert xs == [1.0, 2.0]
    with open(trained['scalars']) as f:
        losses = [json.loads(line) for line in f]
    epoch1 = [r['loss'] for r in losses if r.get('epoch') == 1]
    assert ys[0] == pytest.approx(sum(epoch1) / len(epoch1))
    assert series['second'] == series['first']
    assert [s['label'] for s in json.loads(Image.open(out).text['Series'])
            ] == ['first', 'second']


def test_analyze_logs_bad_input(trained, tmp_path):
    tool = load_tool('analysis_tools/analyze_logs.py')
    with pytest.raises(ValueError, match=r"--keys: .*scalars.json has no "
                       r"'mAcc'; it has .*loss.*mIoU"):
        tool.main([trained['scalars'], '--keys', 'mAcc', '--out',
                   str(tmp_path / 'x.png')])
    with pytest.raises(ValueError, match='--legend: 1 labels for 1 log'):
        tool.main([trained['scalars'], '--keys', 'loss', 'mIoU',
                   '--legend', 'a', '--out', str(tmp_path / 'x.png')])
    with pytest.raises(FileNotFoundError, match='no such scalars.json'):
        tool.main([str(tmp_path / 'missing.json')])


# ----------------------------------------------------------------------
# browse_dataset
# ----------------------------------------------------------------------
def test_browse_dataset_draws_the_first_episodes(trained, tmp_path):
    tool = load_tool('analysis_tools/browse_dataset.py')
    out_dir = str(tmp_path / 'browse')
    written = tool.main([trained['config'], '--split', 'val', '--num', '3',
                         '--output-dir', out_dir, '--cfg-options',
                         'val_dataloader.dataset.shots=2'])
    # the same episodes as the dataset gives (index, class, shots)
    from mmseg.registry import DATASETS
    cfg = Config.fromfile(trained['config'])
    cfg.val_dataloader.dataset.shots = 2
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    classes = dataset.metainfo['classes']
    expected = []
    for i in range(3):
        sample = dataset[i]['data_samples']
        name = re.sub(r'[^\w.-]+', '_', classes[sample.class_id])
        expected.append(osp.join(out_dir, f'episode_{i:05d}_{name}.png'))
    assert written == expected
    assert sorted(glob.glob(osp.join(out_dir, '*.png'))) == expected
    # each picture: 2 supports + the query with its ground truth, side by
    # side at the network size (64x64), under a title band
    for path in written:
        picture = mmcv.imread(path)
        assert picture.shape[1] >= 3 * 64 and picture.shape[0] > 64
    # the query panel is the pipeline's query image with its ground truth
    # drawn over it: same size and mostly the same pixels
    packed = dataset[0]
    query = packed['inputs'].permute(1, 2, 0).numpy()
    picture = mmcv.imread(written[0])
    panel = picture[-64:, -64:]
    gt = packed['data_samples'].gt_sem_seg.data[0].numpy()
    background = gt == 0
    assert background.any()
    assert np.abs(panel[background].astype(int) -
                  query[background].astype(int)).max() <= 1


def test_browse_dataset_one_episode_and_bad_index(trained, tmp_path):
    tool = load_tool('analysis_tools/browse_dataset.py')
    out_dir = str(tmp_path / 'one')
    written = tool.main([trained['config'], '--split', 'test', '--episode',
                         '5', '--output-dir', out_dir])
    assert len(written) == 1
    assert osp.basename(written[0]).startswith('episode_00005_')
    # train: the first N of epoch 0, N capped by the dataset's length
    written = tool.main([trained['config'], '--split', 'train', '--num',
                         '100', '--output-dir', str(tmp_path / 'train')])
    assert len(written) == TRAIN_EPISODES
    last = TEST_EPISODES - 1
    with pytest.raises(ValueError, match=rf'--episode: \[{TEST_EPISODES}\] '
                       rf"outside the dataset's episodes 0..{last}"):
        tool.main([trained['config'], '--split', 'test', '--episode',
                   str(TEST_EPISODES), '--output-dir',
                   str(tmp_path / 'bad')])


# ----------------------------------------------------------------------
# print_config
# ----------------------------------------------------------------------
def test_print_config_resolves_bases_and_options(trained, tmp_path):
    out = str(tmp_path / 'resolved.py')
    proc = run(['python', osp.join(TOOLS, 'misc', 'print_config.py'),
                trained['config'], '--cfg-options',
                'test_dataloader.dataset.shots=5', '--out', out],
               cwd=trained['root'])
    # the config comes first; only warnings (Python 3.12 compiling
    # mmpretrain's sources gives a SyntaxWarning) may precede it
    head, found, _ = proc.stdout.partition('Config:\n')
    assert found and (not head or head.endswith('\n')), proc.stdout[:500]
    assert all('Warning' in line or line.startswith(' ')
               for line in head.splitlines()), head
    # inherited from the demo config and its _base_ files
    assert "type='FewShotSegmentor'" in proc.stdout
    assert "type='DCAMAHead'" in proc.stdout
    resolved = Config.fromfile(out)
    assert '_base_' not in resolved
    assert resolved.test_dataloader.dataset.shots == 5
    assert resolved.model.backbone.base_channels == 8
    assert resolved.model.decode_head.in_channels == (32, 64, 128, 256)
    proc = run(['python', osp.join(TOOLS, 'misc', 'print_config.py'),
                'missing.py'], cwd=trained['root'], check=False)
    assert proc.returncode != 0
    assert 'config: the file "missing.py" does not exist' in proc.stdout


# ----------------------------------------------------------------------
# publish_model
# ----------------------------------------------------------------------
def test_publish_model_drops_training_state_and_tests_the_same(
        trained, tmp_path):
    from dcama_mm.apis import init_model
    tool = load_tool('misc/publish_model.py')
    source = osp.join(trained['work_dir'], 'epoch_2.pth')
    final = tool.main([source, str(tmp_path / 'release' / 'dcama_tiny.pth')])
    with open(final, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert final == str(tmp_path / 'release' / f'dcama_tiny-{digest[:8]}.pth')
    assert not osp.exists(tmp_path / 'release' / 'dcama_tiny.pth')
    original = torch.load(source, map_location='cpu', weights_only=False)
    published = torch.load(final, map_location='cpu', weights_only=False)
    assert 'optimizer' in original and 'message_hub' in original
    assert set(published) == {'state_dict', 'meta'}
    # the meta without the random states kept for resuming
    assert 'random_states' in original['meta']
    original_meta = {
        k: v
        for k, v in original['meta'].items() if k != 'random_states'
    }
    assert published['meta'] == original_meta
    for key, value in original['state_dict'].items():
        assert torch.equal(published['state_dict'][key], value), key
    assert osp.getsize(final) < osp.getsize(source)

    # loads with init_model and gives the same logits ...
    from tests.test_models.dcama_cases import random_episode
    query, supports, masks = random_episode(1, 2, (64, 64))
    logits = []
    for ckpt in (source, final):
        model = init_model(trained['config'], ckpt)
        assert model.dataset_meta == original['meta']['dataset_meta']
        with torch.no_grad():
            logits.append(model.predict_logits(query, supports, masks))
    assert torch.equal(logits[0], logits[1])
    # ... and tests to the same figures
    metrics = []
    for name, ckpt in (('original', source), ('published', final)):
        cfg = Config.fromfile(trained['config'])
        cfg.work_dir = str(tmp_path / name)
        cfg.load_from = ckpt
        metrics.append(Runner.from_cfg(cfg).test())
    assert metrics[0] == metrics[1]
    assert metrics[0]['num_episodes'] == TEST_EPISODES


def test_publish_model_bad_input(tmp_path):
    tool = load_tool('misc/publish_model.py')
    with pytest.raises(FileNotFoundError, match='in_file: the checkpoint'):
        tool.main([str(tmp_path / 'missing.pth'), str(tmp_path / 'o.pth')])
    plain = tmp_path / 'weights.pth'
    torch.save({'conv.weight': torch.zeros(1)}, plain)
    with pytest.raises(ValueError, match='has no "state_dict"'):
        tool.main([str(plain), str(tmp_path / 'o.pth')])
    with pytest.raises(ValueError, match='must end with .pth'):
        tool.main([str(plain), str(tmp_path / 'o.ckpt')])
