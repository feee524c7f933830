# Your own classes (1-shot): `data_root/<class>/<image>` + `<stem>_mask.png`
# (binary, 0/1 or 0/255), see FewShotFolderDataset. The classes are split
# into train / val / test by `split_ratios` with `split_seed` (the same on
# every machine), or by list files: `split_files=dict(train='train.txt',
# val='val.txt', test='test.txt')` (one class folder per line, relative to
# data_root). Test: one episode per image of the test classes; validation:
# one per image of the val classes; training: class-uniform episodes.
dataset_type = 'FewShotFolderDataset'
data_root = 'data/my_classes'
img_scale = (384, 384)
split_ratios = (0.6, 0.2, 0.2)
mask_suffix = '_mask.png'

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
train_dataloader = dict(
    batch_size=12,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='EpisodeSampler', train=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        mask_suffix=mask_suffix,
        split_ratios=split_ratios,
        split_seed=0,
        split='train',
        shots=1,
        seed=0,
        # an episode whose image or mask cannot be read is replaced by
        # a substitute drawn from (seed, index) and logged, at most 3
        # times (docs/data_checks.md); tests always stop on such a file
        max_redraws=3,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='EpisodeSampler', train=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        mask_suffix=mask_suffix,
        split_ratios=split_ratios,
        split_seed=0,
        split='val',
        shots=1,
        seed=1,
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='EpisodeSampler', train=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        mask_suffix=mask_suffix,
        split_ratios=split_ratios,
        split_seed=0,
        split='test',
        shots=1,
        seed=0,
        pipeline=test_pipeline))
val_evaluator = dict(type='FewShotIoUMetric')
test_evaluator = val_evaluator
