# Swapping the backbone of an experiment you inherit: the Swin-B experiment
# of `my_swinb_coco_fold1_5shot.py` with DCAMA's ResNet-50 instead.
#
# Listing a second model base (`_base_ = [<a Swin leaf>,
# '../_base_/models/dcama_r50.py']`) does not work: both define `model`
# and mmengine refuses with "Duplicate key is not allowed among bases".
# Either compose your config from the bases directly (model, dataset,
# runtime, schedule: what `configs/dcama_r50_coco_fold0.py` does), or, as
# here, inherit the experiment and replace the backbone: `_delete_=True`
# drops the Swin backbone's keys (arch, img_size, window_size would
# otherwise be merged into the ResNet's arguments and refused), and the
# head takes the ResNet's channels and block counts.
# The result equals `configs/dcama_r50_coco_fold1_5shot.py` (checked by
# tests/test_tools/test_docs_paths.py).
#
#   python tools/test.py configs/examples/my_r50_coco_fold1_5shot.py CKPT
_base_ = ['./my_swinb_coco_fold1_5shot.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='BlockFeatureResNet',
        depth=50,
        frozen=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/resnet50_a1h_mmpretrain.pth')),
    decode_head=dict(
        in_channels=(256, 512, 1024, 2048), num_blocks=(3, 4, 6, 3)),
    # the Swin config runs two backbone images at once on the CPU; one at a
    # time as the ResNet configs do
    cpu_parallel_images=None)
