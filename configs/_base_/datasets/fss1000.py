# FSS-1000 (1-shot): `<class>/<n>.jpg|png` folders and the class lists
# `splits/{trn,val,test}.txt`, see FSS1000Dataset. Leaf configs change the
# shots with e.g. `test_dataloader = dict(dataset=dict(shots=5))`.
#
# Test: one episode per image of the 240 test classes (2400), supports drawn
# among the other images of the class with seed 0. Validation: one episode
# per image of the 240 validation classes. Training: the reference's order:
# every epoch takes each training image once as query, in a fresh random
# order (`shuffle_records=False`: class-uniform episodes over the 520
# classes). `replay_reference=True` in the test dataset replays the
# reference code's own test episodes (docs/protocol.md).
dataset_type = 'FSS1000Dataset'
data_root = 'data/FSS-1000'
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
        shots=1,
        split='val',
        seed=0,
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
        shots=1,
        split='test',
        seed=0,
        pipeline=test_pipeline))

val_evaluator = dict(type='FewShotIoUMetric')
test_evaluator = val_evaluator
