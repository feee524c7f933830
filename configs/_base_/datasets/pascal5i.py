# PASCAL-5i (fold 0, 1-shot test): VOC2012 JPEGImages + SegmentationClassAug
# and the benchmark's fold lists (`splits/{trn,val}/fold{0-3}.txt`, lines
# `2007_000033__01`), see PascalVOC5iDataset. Leaf configs change the fold or
# the shots with e.g. `test_dataloader = dict(dataset=dict(fold=1, shots=5))`.
#
# Test: 1000 episodes, the i-th query is the i-th (image, class) pair of
# `val/fold{i}.txt` (cycled), supports drawn with seed 0. Validation: the same
# classes with seed 1, so the best checkpoint is not picked on the test
# episodes. Training: the reference's order: every epoch takes each
# (image, class) pair of the other folds' `trn` lists once as query, in a
# fresh random order (`shuffle_records=False`: class-uniform episodes).
# `replay_reference=True` in the test dataset replays the reference code's
# own test episodes (docs/protocol.md).
dataset_type = 'PascalVOC5iDataset'
data_root = 'data/VOCdevkit/VOC2012'
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

train_dataloader = dict(
    batch_size=12,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='EpisodeSampler', train=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split_dir='splits',
        fold=0,
        shots=1,
        split='train',
        shuffle_records=True,
        seed=0,
        # an episode whose image or mask cannot be read is replaced by
        # a substitute drawn from (seed, index) and logged, at most 3
        # times (docs/data_checks.md); tests always stop on such a file
        max_redraws=3,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='EpisodeSampler', train=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split_dir='splits',
        fold=0,
        shots=1,
        split='test',
        num_episodes=1000,
        seed=1,
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='EpisodeSampler', train=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split_dir='splits',
        fold=0,
        shots=1,
        split='test',
        num_episodes=1000,
        seed=0,
        pipeline=test_pipeline))

val_evaluator = dict(type='FewShotIoUMetric', ignore_index=255)
test_evaluator = val_evaluator
