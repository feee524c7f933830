"""FrozenBackboneMixin on a toy two-stage backbone."""
import pytest
import torch
from torch import nn

from dcama_mm.models.backbones import FrozenBackboneMixin


class ToyBackbone(FrozenBackboneMixin, nn.Module):

    def __init__(self, frozen: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self._set_frozen(frozen)

    def _block_features(self, x):
        first = self.drop(self.bn(self.conv(x)))
        return [first], [first.mean(dim=1, keepdim=True)]


def test_frozen_stays_in_eval_without_grad():
    model = ToyBackbone(frozen=True)
    assert model.frozen and not model.training
    assert model.train() is model
    assert not any(m.training for m in model.modules())
    assert not any(p.requires_grad for p in model.parameters())
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    first, second = model(x)
    assert not first[0].requires_grad and tuple(second[0].shape) == (2, 1,
                                                                     8, 8)
    # eval mode: BatchNorm statistics unchanged, dropout off
    torch.testing.assert_close(model.bn.running_mean, torch.zeros(4))
    torch.testing.assert_close(model(x)[0][0], first[0])


def test_unfrozen_is_ordinary():
    model = ToyBackbone(frozen=False)
    assert model.training and model.bn.training
    assert all(p.requires_grad for p in model.parameters())
    first, _ = model(torch.rand(2, 3, 8, 8))
    first[0].sum().backward()
    assert model.conv.weight.grad is not None
    assert model.train(False) is model and not model.bn.training


def test_block_features_must_be_implemented():

    class Incomplete(FrozenBackboneMixin, nn.Module):

        def __init__(self):
            super().__init__()
            self._set_frozen(True)

    with pytest.raises(NotImplementedError, match='Incomplete'):
        Incomplete()(torch.rand(1, 3, 4, 4))
