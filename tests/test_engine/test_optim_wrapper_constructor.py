"""FewShotOptimWrapperConstructor: frozen parameters stay out."""
import pytest
import torch
import torch.nn as nn
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS

import dcama_mm  # noqa: F401


class _Model(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.backbone.requires_grad_(False)
        self.head = nn.Sequential(nn.Conv2d(4, 2, 1), nn.GroupNorm(1, 2))


def _build(model, paramwise_cfg=None):
    return OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(
            type='FewShotOptimWrapperConstructor',
            optim_wrapper_cfg=dict(
                optimizer=dict(
                    type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4)),
            paramwise_cfg=paramwise_cfg))(model)


def _ids(optim_wrapper):
    return [
        id(p) for g in optim_wrapper.optimizer.param_groups
        for p in g['params']
    ]


def test_frozen_parameters_left_out():
    model = _Model()
    optim_wrapper = _build(model)
    assert sorted(_ids(optim_wrapper)) == sorted(
        id(p) for p in model.head.parameters())
    assert optim_wrapper.optimizer.defaults['lr'] == 0.01


def test_paramwise_cfg_applies_to_trainable_only():
    model = _Model()
    optim_wrapper = _build(
        model,
        dict(
            norm_decay_mult=0.,
            custom_keys={'head.0.bias': dict(lr_mult=10.)}))
    groups = optim_wrapper.optimizer.param_groups
    assert sorted(_ids(optim_wrapper)) == sorted(
        id(p) for p in model.head.parameters())
    by_id = {id(g['params'][0]): g for g in groups}
    assert by_id[id(model.head[0].bias)]['lr'] == pytest.approx(0.1)
    assert by_id[id(model.head[1].weight)]['weight_decay'] == 0.
    assert by_id[id(model.head[0].weight)]['weight_decay'] == \
        pytest.approx(1e-4)


def test_step_leaves_frozen_untouched():
    model = _Model()
    optim_wrapper = _build(model)
    frozen = [p.clone() for p in model.backbone.parameters()]
    head = [p.clone() for p in model.head.parameters()]
    loss = model.head(model.backbone(torch.rand(2, 3, 6, 6))).pow(2).mean()
    optim_wrapper.update_params(loss)
    assert all(p.grad is None for p in model.backbone.parameters())
    for old, new in zip(frozen, model.backbone.parameters()):
        assert torch.equal(old, new)
    assert all(not torch.equal(old, new)
               for old, new in zip(head, model.head.parameters()))


def test_all_frozen_is_an_error():
    model = _Model()
    model.requires_grad_(False)
    with pytest.raises(ValueError, match='no trainable parameter'):
        _build(model)
