"""dcama_mm.analysis.training: the optimizer wrapper of a config (or the
reference SGD) and one training step through it."""
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from dcama_mm.analysis import (REFERENCE_OPTIM_WRAPPER,
                               benchmark_optim_wrapper, describe_optim_wrapper,
                               train_step)


class _Model(BaseModel):
    """A frozen part and a trainable part."""

    def __init__(self):
        super().__init__()
        self.frozen = nn.Linear(4, 4).requires_grad_(False)
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        return dict(
            loss_mse=self.head(self.frozen(x)).pow(2).mean(),
            acc=torch.zeros(()))


@pytest.fixture(autouse=True)
def scope():
    init_default_scope('mmseg')


def test_reference_sgd_without_an_optim_wrapper():
    cfg = Config(dict(model=dict(type='Anything')))
    model = _Model()
    wrapper = benchmark_optim_wrapper(cfg, model)
    assert type(wrapper) is OptimWrapper
    group = wrapper.optimizer.param_groups[0]
    expected = REFERENCE_OPTIM_WRAPPER['optimizer']
    assert isinstance(wrapper.optimizer, torch.optim.SGD)
    assert (group['lr'], group['momentum'], group['nesterov'],
            group['weight_decay']) == (expected['lr'], expected['momentum'],
                                       True, expected['weight_decay'])
    # FewShotOptimWrapperConstructor: the frozen parameters are left out
    assert [p for g in wrapper.optimizer.param_groups
            for p in g['params']] == list(model.head.parameters())
    assert describe_optim_wrapper(cfg, wrapper) == \
        'OptimWrapper(SGD, reference default)'


def test_the_config_optim_wrapper_and_a_step():
    cfg = Config(
        dict(
            optim_wrapper=dict(
                type='AmpOptimWrapper',
                loss_scale='dynamic',
                optimizer=dict(type='AdamW', lr=0.01))))
    model = _Model()
    wrapper = benchmark_optim_wrapper(cfg, model)  # fp32: no AMP wrapper
    assert type(wrapper) is OptimWrapper
    assert isinstance(wrapper.optimizer, torch.optim.AdamW)
    assert wrapper.optimizer.param_groups[0]['lr'] == 0.01
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'  # not modified
    assert describe_optim_wrapper(cfg, wrapper) == \
        'OptimWrapper(AdamW, from the config)'
    head, frozen = model.head.weight.clone(), model.frozen.weight.clone()
    x = torch.randn(8, 4)
    loss = train_step(model, wrapper, lambda: model(x))
    assert loss.shape == () and not loss.requires_grad
    assert not torch.equal(model.head.weight, head)
    assert torch.equal(model.frozen.weight, frozen)
    assert model.head.weight.grad is None  # zeroed by update_params


def test_fp16_training_needs_a_gpu():
    with pytest.raises(ValueError, match='cannot train on the CPU'):
        benchmark_optim_wrapper(Config(dict()), _Model(), amp='float16')


def test_bf16_training_on_the_cpu_autocasts():
    wrapper = benchmark_optim_wrapper(Config(dict()), _Model(), amp='auto')
    assert type(wrapper).__name__ == 'AutocastOptimWrapper'
    assert wrapper.cast_dtype == torch.bfloat16
