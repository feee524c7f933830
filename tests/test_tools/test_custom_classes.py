"""Train on your own classes: a folder dataset, fine-tuned from a
checkpoint with the real tools (train.py, test.py), then inference."""
import json
import os.path as osp

import pytest
import torch
from PIL import Image

from dcama_mm.datasets.synthetic import make_synthetic_class_folders
from .tiny_project import REPO_ROOT, TOOLS, run

CONFIG = """\
_base_ = [
    {root}/configs/_base_/models/dcama_r50.py',
    {root}/configs/_base_/datasets/few_shot_folder.py',
    {root}/configs/_base_/default_runtime.py',
    {root}/configs/_base_/schedules/schedule_50e.py',
]
data_root = {data!r}
img_scale = (64, 64)
train_pipeline = [
    dict(type='LoadEpisode'),
    dict(type='ResizeEpisode', scale=img_scale, keep_ori_seg=False),
    dict(type='PackFewShotInputs'),
]
test_pipeline = [
    dict(type='LoadEpisode'),
    dict(type='ResizeEpisode', scale=img_scale, keep_ori_seg=True),
    dict(type='PackFewShotInputs'),
]
model = dict(
    backbone=dict(base_channels=8, stem_channels=8, init_cfg=None),
    decode_head=dict(in_channels=(32, 64, 128, 256)))
_loader = dict(batch_size=2, num_workers=0, persistent_workers=False)
train_dataloader = dict(
    **_loader, dataset=dict(data_root=data_root, num_episodes=6,
                            pipeline=train_pipeline))
val_dataloader = dict(
    **_loader, dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = dict(
    **_loader, dataset=dict(data_root=data_root, pipeline=test_pipeline))
load_from = {ckpt!r}
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = []
default_hooks = dict(logger=dict(interval=1))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(vis_backends=vis_backends)
"""


@pytest.fixture(scope='module')
def custom_project(tmp_path_factory):
    root = tmp_path_factory.mktemp('custom')
    data = str(root / 'my_classes')
    make_synthetic_class_folders(data, num_classes=5, images_per_class=7,
                                 size_range=(48, 64), seed=4)
    # a dcama_mm checkpoint of the same model, standing in for a converted
    # COCO-20i one (random weights; what matters is what fine-tuning keeps)
    from mmengine.config import Config

    from dcama_mm.apis import init_model
    cfg_file = str(root / 'my_custom.py')
    ckpt = str(root / 'start.pth')
    with open(cfg_file, 'w') as f:
        f.write(CONFIG.format(root="'" + REPO_ROOT, data=data, ckpt=ckpt))
    torch.manual_seed(0)
    model = init_model(Config.fromfile(cfg_file))
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    return dict(root=str(root), cfg=cfg_file, ckpt=ckpt, data=data)


def test_fine_tune_test_and_infer(custom_project):
    root, cfg, start = (custom_project[k] for k in ('root', 'cfg', 'ckpt'))
    work = osp.join(root, 'work')
    run(['python', osp.join(TOOLS, 'train.py'), cfg, '--work-dir', work],
        cwd=root)
    before = torch.load(start, weights_only=False)['state_dict']
    after = torch.load(osp.join(work, 'epoch_1.pth'),
                       weights_only=False)['state_dict']
    assert before.keys() == after.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # only the head trained; the frozen backbone kept the loaded weights
    assert changed and all(k.startswith('decode_head.') for k in changed)
    assert any(k.startswith('decode_head.attentions') for k in changed)

    for shots in (1, 5):
        out = osp.join(root, f'results_{shots}shot.json')
        run(['python', osp.join(TOOLS, 'test.py'), cfg,
             osp.join(work, 'epoch_1.pth'), '--work-dir', work, '--out', out,
             '--cfg-options', f'test_dataloader.dataset.shots={shots}'],
            cwd=root)
        with open(out) as f:
            metrics = json.load(f)['metrics']
        assert 0 <= metrics['mIoU'] <= 100
        # one test class (of 5, split 0.6/0.2/0.2) of 7 images: one
        # episode per image
        assert metrics['num_episodes'] == 7

    # the result segments a user's images with the inferencer
    from dcama_mm.apis import FewShotInferencer
    from dcama_mm.datasets import FewShotFolderDataset
    test = FewShotFolderDataset(data_root=custom_project['data'])
    info = test.get_episode_info(0)
    inferencer = FewShotInferencer(cfg, osp.join(work, 'epoch_1.pth'),
                                   device='cpu')
    mask = inferencer(info['img_path'],
                      support_imgs=info['support_img_paths'],
                      support_masks=info['support_seg_map_paths'])
    width, height = Image.open(info['img_path']).size
    assert mask['predictions'].shape == (height, width)
