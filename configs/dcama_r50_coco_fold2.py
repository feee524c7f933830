# DCAMA with a frozen ResNet-50 backbone on COCO-20i fold 2, trained on 1-shot
# episodes of 384x384 with 12 episodes per GPU on 4 GPUs (the reference
# setting: SGD lr 1e-3, constant; validation every epoch, best checkpoint
# by validation mIoU).
#
#   bash tools/dist_train.sh configs/dcama_r50_coco_fold2.py 4
#   python tools/test.py configs/dcama_r50_coco_fold2.py CKPT
#   python tools/test.py configs/dcama_r50_coco_fold2_5shot.py CKPT   # 5-shot
_base_ = [
    './_base_/models/dcama_r50.py',
    './_base_/datasets/coco20i.py',
    './_base_/default_runtime.py',
    './_base_/schedules/schedule_50e.py',
]

fold = 2
train_dataloader = dict(dataset=dict(fold=fold))
val_dataloader = dict(dataset=dict(fold=fold))
test_dataloader = dict(dataset=dict(fold=fold))
