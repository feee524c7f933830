# DCAMA with a frozen ResNet-50 backbone on PASCAL-5i fold 1, trained on 1-shot
# episodes of 384x384 with 12 episodes per GPU on 4 GPUs (the reference
# setting: SGD lr 1e-3, constant; validation every epoch, best checkpoint
# by validation mIoU).
#
#   bash tools/dist_train.sh configs/dcama_r50_pascal_fold1.py 4
#   python tools/test.py configs/dcama_r50_pascal_fold1.py CKPT
#   python tools/test.py configs/dcama_r50_pascal_fold1_5shot.py CKPT   # 5-shot
_base_ = [
    './_base_/models/dcama_r50.py',
    './_base_/datasets/pascal5i.py',
    './_base_/default_runtime.py',
    './_base_/schedules/schedule_200e.py',
]

fold = 1
train_dataloader = dict(dataset=dict(fold=fold))
val_dataloader = dict(dataset=dict(fold=fold))
test_dataloader = dict(dataset=dict(fold=fold))
