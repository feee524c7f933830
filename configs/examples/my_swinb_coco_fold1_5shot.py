# Your own experiment by inheritance: the shipped Swin-B COCO-20i config,
# moved to fold 1 and tested 5-shot. A leaf config sets the values in the
# dataloaders' `dataset` dicts: the top-level `fold` alone would not reach
# them (the base file copied its own `fold = 0` into them when it was
# loaded). On the command line, `--cfg-options fold=1` does the same as the
# lines below (the tools set it in every dataset; docs/config_checks.md).
#
#   python tools/train.py configs/examples/my_swinb_coco_fold1_5shot.py
_base_ = ['../dcama_swinb_coco_fold0.py']

fold = 1
train_dataloader = dict(dataset=dict(fold=fold))
val_dataloader = dict(dataset=dict(fold=fold))
test_dataloader = dict(dataset=dict(fold=fold, shots=5))
