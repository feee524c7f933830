"""FewShotVisualizationHook and FewShotLocalVisualizer.

The drawing is checked pixel by pixel on hand-made episodes; the hook runs
inside a real mmengine Runner test loop on a tiny synthetic COCO-20i-format
dataset, at the network size and at the queries' original size.
"""
import glob
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.structures import PixelData

from dcama_mm.engine.hooks import FewShotVisualizationHook
from dcama_mm.visualization import FewShotLocalVisualizer, episode_iou
from mmseg.structures import SegDataSample
from tests.test_tools.tiny_project import make_tiny_data, write_tiny_config


def test_episode_iou_counts_foreground_and_ignores_255():
    gt = np.zeros((4, 4), dtype=np.int64)
    gt[:2, :2] = 1          # 4 foreground pixels
    gt[3, 3] = 255          # ignored
    pred = np.zeros((4, 4), dtype=np.int64)
    pred[:2, :1] = 1        # 2 of them
    pred[3, 0] = 1          # 1 false positive
    pred[3, 3] = 1          # on an ignored pixel: not counted
    assert episode_iou(pred, gt) == pytest.approx(100 * 2 / 5)
    assert episode_iou(np.zeros_like(gt), np.zeros_like(gt)) == 0.0


def _visualizer(**kwargs):
    return FewShotLocalVisualizer(
        name=f'vis_test_{len(kwargs)}_{id(kwargs)}', alpha=0.5, **kwargs)


def test_draw_episode_layout_and_colours():
    vis = _visualizer()
    query = np.full((20, 30, 3), 100, dtype=np.uint8)
    support = np.full((10, 15, 3), 200, dtype=np.uint8)
    s_mask = np.zeros((10, 15), dtype=np.uint8)
    s_mask[2:8, 2:8] = 1
    gt = np.zeros((20, 30), dtype=np.int64)
    gt[5:15, 5:15] = 1
    pred = np.zeros((20, 30), dtype=np.int64)
    pred[5:15, 10:20] = 1
    picture = vis.draw_episode(
        query, [support, support], [s_mask, s_mask], gt, pred, title='t')
    label_h = 16  # max(16, 20 // 12)
    title_h = int(label_h * 1.3)
    # 2 supports (resized to the query height) + gt + prediction, 4 px gaps
    assert picture.shape == (title_h + label_h + 20, 4 * 30 + 3 * 4, 3)
    body = picture[title_h + label_h:]
    # inside the support mask: 0.5 * 200 + 0.5 * gold (255, 215, 0)
    assert tuple(body[10, 10]) == (227, 207, 100)  # truncated
    # support background untouched
    assert tuple(body[1, 29]) == (200, 200, 200)
    gt_panel = body[:, 2 * 34:2 * 34 + 30]
    pred_panel = body[:, 3 * 34:3 * 34 + 30]
    # gt colour (30, 100, 255) blended into 100; outside: untouched
    assert tuple(gt_panel[10, 10]) == (65, 100, 177)
    assert tuple(gt_panel[10, 25]) == (100, 100, 100)
    # prediction colour (255, 40, 40)
    assert tuple(pred_panel[10, 15]) == (177, 70, 70)
    assert tuple(pred_panel[10, 7]) == (100, 100, 100)
    # the caller's arrays are not changed
    assert (query == 100).all() and (support == 200).all()


def test_add_datasample_reads_data_sample_and_writes_file(tmp_path):
    vis = _visualizer()
    vis.dataset_meta = dict(classes=('person', 'bicycle'))
    sample = SegDataSample(metainfo=dict(class_id=1, episode_index=3))
    sample.pred_sem_seg = PixelData(data=torch.ones(1, 8, 8,
                                                    dtype=torch.long))
    sample.gt_sem_seg = PixelData(data=torch.zeros(1, 8, 8,
                                                   dtype=torch.long))
    sample.support_imgs = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    sample.support_masks = torch.ones(1, 8, 8)
    out = str(tmp_path / 'ep.png')
    picture = vis.add_datasample(
        'ep', np.zeros((8, 8, 3), dtype=np.uint8), sample, out_file=out)
    assert osp.isfile(out)
    written = mmcv.imread(out, channel_order='rgb')
    assert written.shape == picture.shape
    assert picture.shape[1] == 3 * 8 + 2 * 4
    assert vis.class_name(1) == 'bicycle'
    # float (normalised) supports need explicit images
    sample.support_imgs = torch.zeros(1, 3, 8, 8)
    with pytest.raises(ValueError, match='support images'):
        vis.add_datasample('ep', np.zeros((8, 8, 3), np.uint8), sample)


def test_hook_rejects_bad_arguments():
    with pytest.raises(ValueError, match='interval'):
        FewShotVisualizationHook(interval=0)
    with pytest.raises(ValueError, match='max_episodes'):
        FewShotVisualizationHook(max_episodes=-1)


@pytest.fixture(scope='module')
def tiny_config(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('vis_hook'))
    data_root = make_tiny_data(root)
    return root, write_tiny_config(osp.join(root, 'tiny.py'), data_root)


@pytest.mark.parametrize('original_size', [False, True])
def test_hook_draws_one_picture_per_test_episode(tiny_config, original_size):
    root, config = tiny_config
    cfg = Config.fromfile(config)
    cfg.work_dir = osp.join(root, f'work_{original_size}')
    cfg.test_dataloader.dataset.num_episodes = 5
    cfg.test_dataloader.dataset.shots = 2
    cfg.model.test_cfg = dict(resize_to_original=original_size)
    cfg.default_hooks.visualization.update(
        draw=True, show_dir='pictures', max_episodes=4)
    runner = Runner.from_cfg(cfg)
    runner.test()
    out_dir = osp.join(cfg.work_dir, runner.timestamp, 'pictures')
    pictures = sorted(glob.glob(osp.join(out_dir, '*.png')))
    # 5 episodes, at most 4 drawn, named by episode index and class
    assert [osp.basename(p)[:13] for p in pictures] == [
        f'episode_{i:05d}' for i in range(4)
    ]
    dataset = runner.test_dataloader.dataset
    classes = dataset.metainfo['classes']
    for i, path in enumerate(pictures):
        info = dataset.get_episode_info(i)
        assert path.endswith(
            f'_{classes[info["class_id"]].replace(" ", "_")}.png')
        picture = mmcv.imread(path)
        if original_size:
            height = mmcv.imread(info['img_path']).shape[0]
        else:
            height = 64
        label_h = max(16, height // 12)
        assert picture.shape[0] == height + label_h + int(label_h * 1.3)
        # 2 supports + ground truth + prediction panels
        assert picture.shape[1] >= 4 * height * 0.5
