# 5-shot evaluation of dcama_swinb_pascal_fold0.py: the 1-shot-trained model tested on
# 5-shot episodes (same classes and seed), as in the paper. Equivalent to
#   python tools/test.py configs/dcama_swinb_pascal_fold0.py CKPT \
#       --cfg-options test_dataloader.dataset.shots=5
_base_ = ['./dcama_swinb_pascal_fold0.py']

test_dataloader = dict(dataset=dict(shots=5))
