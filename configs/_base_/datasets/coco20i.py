# COCO-20i (fold 0, 1-shot test). Data: `data/coco` converted with
# `python tools/dataset_converters/coco20i.py data/coco`.
# A leaf config changes the fold/shots in the dataloaders' `dataset` dicts,
# e.g. `train_dataloader = dict(dataset=dict(fold=1))`.
dataset_type = 'COCO20iDataset'
data_root = 'data/coco'
img_scale = (384, 384)

train_pipeline = [
    dict(type='LoadEpisode'),
    dict(type='ResizeEpisode', scale=img_scale, keep_ori_seg=False),
    dict(type='PackFewShotInputs'),
]
# keep_ori_seg=True keeps the original-size query mask, needed by
# `model.test_cfg.resize_to_original=True` (original-size evaluation).
test_pipeline = [
    dict(type='LoadEpisode'),
    dict(type='ResizeEpisode', scale=img_scale, keep_ori_seg=True),
    dict(type='PackFewShotInputs'),
]

# Training: 1-shot class-uniform episodes over the fold's 60 classes of
# train2014, fresh episodes each epoch (num_episodes=None: one epoch has as
# many episodes as the fold has distinct training images, 62040 for fold 0,
# like the reference); 12 episodes per GPU.
train_dataloader = dict(
    batch_size=12,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='EpisodeSampler', train=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        fold=0,
        shots=1,
        split='train',
        num_episodes=None,
        seed=0,
        # an episode whose image or mask cannot be read is replaced by
        # a substitute drawn from (seed, index) and logged, at most 3
        # times (docs/data_checks.md); tests always stop on such a file
        max_redraws=3,
        pipeline=train_pipeline))
# Validation: the fold's 20 test classes of val2014, with another seed than
# the test episodes (a clean protocol; the reference validated on the test
# episodes themselves).
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='EpisodeSampler', train=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        fold=0,
        shots=1,
        split='test',
        num_episodes=1000,
        seed=1,
        pipeline=test_pipeline))
# Test: 1000 episodes per fold with a fixed seed. The reference's own test
# episodes: `replay_reference=True` with the index files converted from its
# split files, `ann_file='annotations_fss/val2014_class_index_fold{fold}.json'`
# (docs/protocol.md).
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='EpisodeSampler', train=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        fold=0,
        shots=1,
        split='test',
        num_episodes=1000,
        seed=0,
        pipeline=test_pipeline))
val_evaluator = dict(type='FewShotIoUMetric')
test_evaluator = val_evaluator
