# DCAMA with a frozen Swin-B backbone on PASCAL-5i fold 2, trained on 1-shot
# episodes of 384x384 with 12 episodes per GPU on 4 GPUs (the reference
# setting: SGD lr 1e-3, constant; validation every epoch, best checkpoint
# by validation mIoU).
#
#   bash tools/dist_train.sh configs/dcama_swinb_pascal_fold2.py 4
#   python tools/test.py configs/dcama_swinb_pascal_fold2.py CKPT
#   python tools/test.py configs/dcama_swinb_pascal_fold2_5shot.py CKPT   # 5-shot
_base_ = [
    './_base_/models/dcama_swinb.py',
    './_base_/datasets/pascal5i.py',
    './_base_/default_runtime.py',
    './_base_/schedules/schedule_200e.py',
]

fold = 2
train_dataloader = dict(dataset=dict(fold=fold))
val_dataloader = dict(dataset=dict(fold=fold))
test_dataloader = dict(dataset=dict(fold=fold))
