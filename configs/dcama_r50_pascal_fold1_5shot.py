# 5-shot evaluation of dcama_r50_pascal_fold1.py: the 1-shot-trained model tested on
# 5-shot episodes (same classes and seed), as in the paper. Equivalent to
#   python tools/test.py configs/dcama_r50_pascal_fold1.py CKPT \
#       --cfg-options test_dataloader.dataset.shots=5
_base_ = ['./dcama_r50_pascal_fold1.py']

test_dataloader = dict(dataset=dict(shots=5))
