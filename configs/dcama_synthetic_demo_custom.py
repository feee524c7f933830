# "Train on your own classes", runnable on any machine: the demo model
# (configs/dcama_synthetic_demo.py, after `make demo`) fine-tuned on a
# generated folder of 12 new classes (looks the demo never saw), backbone
# frozen so that only the head adapts. See the README section.
#
#   python -c "from dcama_mm.datasets.synthetic import \
#       make_synthetic_class_folders as m; m('data/synthetic_folders', \
#       num_classes=12, images_per_class=12, size_range=(96, 128), \
#       first_class_id=80)"
#   python tools/train.py configs/dcama_synthetic_demo_custom.py
#   python tools/test.py configs/dcama_synthetic_demo_custom.py \
#       work_dirs/dcama_synthetic_demo_custom/epoch_6.pth
_base_ = [
    './_base_/models/dcama_r50.py',
    './_base_/datasets/few_shot_folder.py',
    './_base_/default_runtime.py',
    './_base_/schedules/schedule_50e.py',
]

data_root = 'data/synthetic_folders'
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
base_width = 16
model = dict(
    backbone=dict(
        depth=50,
        base_channels=base_width,
        stem_channels=base_width,
        frozen=True,  # the demo trained it; here only the head adapts
        init_cfg=None),
    decode_head=dict(
        in_channels=tuple(base_width * 4 * 2**i for i in range(4))))
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root, num_episodes=200, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))

load_from = 'work_dirs/dcama_synthetic_demo/best_mIoU_epoch_14.pth'
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, weight_decay=1e-4))
max_epochs = 6
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0,
         end=max_epochs),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
default_hooks = dict(logger=dict(interval=10))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(vis_backends=vis_backends)
randomness = dict(seed=0)
work_dir = './work_dirs/dcama_synthetic_demo_custom'
