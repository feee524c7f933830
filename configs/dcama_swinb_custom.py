# DCAMA with a frozen Swin-B backbone on YOUR classes (a folder of class
# folders, see configs/_base_/datasets/few_shot_folder.py), fine-tuned from
# a COCO-20i model converted with tools/model_converters/dcama2mmseg.py.
#
#   python tools/train.py configs/dcama_swinb_custom.py
#   python tools/test.py configs/dcama_swinb_custom.py CKPT
#   python tools/test.py configs/dcama_swinb_custom.py CKPT \
#       --cfg-options test_dataloader.dataset.shots=5          # 5-shot
#
# Data elsewhere than data/my_classes: a config of your own that inherits
# this one and sets `dataset=dict(data_root=...)` in the three dataloaders.
_base_ = [
    './_base_/models/dcama_swinb.py',
    './_base_/datasets/few_shot_folder.py',
    './_base_/default_runtime.py',
    './_base_/schedules/schedule_50e.py',
]

# start from the paper's COCO-20i model: only the head trains (the backbone
# stays frozen), so a few epochs adapt it to the new domain
load_from = 'checkpoints/dcama_swinb_coco_fold0.pth'
max_epochs = 20
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0,
         end=max_epochs),
]
