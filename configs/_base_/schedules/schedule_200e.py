# The reference DCAMA schedule: SGD (lr 1e-3, momentum 0.9, Nesterov,
# weight decay 1e-4 = lr / 10), constant learning rate, epoch-based training
# with validation after every epoch; the best checkpoint by validation mIoU
# is kept (default_runtime.py). One epoch draws as many episodes as the
# training split has (class, image) records, as the reference does.
#
# The reference runs up to 1000 epochs and keeps the best validation
# checkpoint. PASCAL-5i and FSS-1000 have far fewer (class, image) records
# per epoch than COCO-20i, hence 200 epochs here; extend them with
# `--cfg-options train_cfg.max_epochs=N` (and `--resume`).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='SGD', lr=1e-3, momentum=0.9, nesterov=True, weight_decay=1e-4),
    # Builds the optimizer over the trainable (head) parameters only; the
    # frozen backbone is left out.
    constructor='FewShotOptimWrapperConstructor',
    clip_grad=None)

# Constant learning rate (factor 1.0 for the whole run).
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=200),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
