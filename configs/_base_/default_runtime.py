# Runtime settings shared by every dcama_mm config (mmseg's layout).
#
# Everything registers into mmseg's registries; `custom_imports` makes the
# Runner import dcama_mm so that its models, datasets, metrics and hooks are
# registered, also when the config is run by `mim train/test dcama_mm`.
default_scope = 'mmseg'
custom_imports = dict(imports=['dcama_mm'], allow_failed_imports=False)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

# Scalars (losses, mIoU, FB-IoU) go to `<work_dir>/<timestamp>/vis_data/`
# (LocalVisBackend) and to TensorBoard event files
# (`tensorboard --logdir <work_dir>`).
vis_backends = [
    dict(type='LocalVisBackend'),
    dict(type='TensorboardVisBackend'),
]
# No fixed `name`: the Runner names the visualizer after the run, so that
# several runs in one process (e.g. tools/run_demo.py) keep separate logs.
visualizer = dict(type='FewShotLocalVisualizer', vis_backends=vis_backends)

log_processor = dict(by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # One checkpoint per epoch (the last `max_keep_ckpts` are kept) and the
    # best one by validation mIoU, as the reference DCAMA selects it.
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=True,
        interval=1,
        max_keep_ckpts=3,
        save_best='mIoU',
        rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # Off by default; `tools/test.py ... --show-dir DIR` turns it on and
    # writes one picture per test episode.
    visualization=dict(type='FewShotVisualizationHook', draw=False),
    # The random states (torch, numpy, random; per rank) go into every
    # checkpoint and are restored by --resume, so that a resumed run equals
    # an uninterrupted one (docs/runs.md).
    random_state=dict(type='RandomStateHook'),
)
