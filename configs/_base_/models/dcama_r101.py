# DCAMA with a frozen ResNet-101 backbone (torchvision layout), as the
# reference; the same model as `dcama_r50.py` with a deeper backbone.
#
# Backbone weights: TIMM's `resnet101_a1h` file (torchvision key names)
# converted with
#   python tools/model_converters/resnet2mmpretrain.py \
#       resnet101_a1h-<hash>.pth checkpoints/resnet101_a1h_mmpretrain.pth
_base_ = ['./dcama_r50.py']

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(
            checkpoint='checkpoints/resnet101_a1h_mmpretrain.pth')),
    decode_head=dict(num_blocks=(3, 4, 23, 3)))
