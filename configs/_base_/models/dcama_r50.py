# DCAMA with a frozen ResNet-50 backbone (torchvision layout), as the
# reference (Shi et al., ECCV 2022; github.com/pawn-sxy/DCAMA).
#
# Backbone weights: TIMM's `resnet50_a1h` file (torchvision key names)
# converted with
#   python tools/model_converters/resnet2mmpretrain.py \
#       resnet50_a1h-<hash>.pth checkpoints/resnet50_a1h_mmpretrain.pth
# (the path below is relative to the working directory). It is only read
# when training from scratch; `init_model(cfg, ckpt)` and `tools/test.py`
# take every weight from the DCAMA checkpoint.
data_preprocessor = dict(
    type='FewShotDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True)
model = dict(
    type='FewShotSegmentor',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='BlockFeatureResNet',
        depth=50,
        frozen=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/resnet50_a1h_mmpretrain.pth')),
    decode_head=dict(
        type='DCAMAHead',
        in_channels=(256, 512, 1024, 2048),
        num_blocks=(3, 4, 6, 3),
        num_heads=8,
        attn_drop=0.5,
        pe_drop=0.5,
        channels=128,
        num_classes=2,
        # mean over the non-ignored pixels (PASCAL-5i boundaries are 255)
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=1.0,
            avg_non_ignore=True),
        ignore_index=255,
        align_corners=True),
    # every fast path on, unless DCAMA_MM_FAST_PATHS=0 (False: all off, for
    # debugging and equality checks; see docs/model.md)
    fast_paths=None,
    train_cfg=dict(),
    # resize_to_original=True: predict at each query's original size
    test_cfg=dict(resize_to_original=False))
