# A tiny DCAMA trained on a generated dataset in COCO-20i's real format, on
# the CPU in a few minutes (what `make demo` / `tools/run_demo.py` runs).
#
# Data: `tools/run_demo.py` writes COCO 2014-format images and
# `instances_{train,val}2014.json` for all 80 COCO classes with
# `dcama_mm.datasets.synthetic.make_synthetic_coco` and converts them with
# `tools/dataset_converters/coco20i.py`, exactly as for the real COCO.
# Fold 0 trains on 60 classes (train2014) and tests on the 20 held-out
# classes 0, 4, ..., 76 (val2014).
#
# Model: the DCAMA head of the paper over a narrow ResNet-50 (base width 16
# instead of 64) at 64x64 input. Unlike the paper's models, the backbone is
# trained with the head here (`frozen=False`): without network access there
# are no ImageNet weights to start from, and a random frozen backbone gives
# the attention little to match on (a frozen run stayed at 0 mIoU). The schedule uses AdamW and a larger
# learning rate than the reference so that a few minutes suffice.
_base_ = [
    './_base_/models/dcama_r50.py',
    './_base_/datasets/coco20i.py',
    './_base_/default_runtime.py',
    './_base_/schedules/schedule_50e.py',
]

data_root = 'data/synthetic_coco'
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
        frozen=False,
        # random weights: there is no pretrained file for this width
        init_cfg=None),
    decode_head=dict(
        in_channels=tuple(base_width * 4 * 2**i for i in range(4))))

train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        fold=0,
        shots=1,
        num_episodes=400,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        fold=0,
        shots=1,
        num_episodes=100,
        seed=1,
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        fold=0,
        shots=1,
        num_episodes=200,
        seed=0,
        pipeline=test_pipeline))

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-3, weight_decay=1e-4))
max_epochs = 24
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0,
         end=max_epochs),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=1)

default_hooks = dict(logger=dict(interval=10))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(vis_backends=vis_backends)
randomness = dict(seed=0)
work_dir = './work_dirs/dcama_synthetic_demo'
