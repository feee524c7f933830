"""oneDNN linears (FastLinear / fast_linear) equal F.linear (+ GELU).

The oneDNN kernel runs only for fp32 CPU inference; with gradients or under
autocast the usual F.linear runs, so outputs, gradients and dtypes are those
of nn.Linear.
"""
from unittest import mock

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks.wrappers import Linear as MMCVLinear

from dcama_mm.models.layers import (FastLinear, fast_linear,
                                    onednn_linear_available)
from dcama_mm.models.layers.onednn_linear import use_onednn
from tests.device_helpers import tolerances

needs_onednn = pytest.mark.skipif(
    not onednn_linear_available(),
    reason='this PyTorch build has no oneDNN linear')


def _data(shape=(3, 7, 24), out=40, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=gen),
            torch.randn(out, shape[-1], generator=gen) * 0.3,
            torch.randn(out, generator=gen))


@needs_onednn
@pytest.mark.parametrize('shape', [(5, 24), (3, 7, 24), (2, 3, 4, 24)])
@pytest.mark.parametrize('with_bias', [True, False])
@pytest.mark.parametrize('activation', [None, 'gelu'])
def test_equals_f_linear(shape, with_bias, activation):
    x, weight, bias = _data(shape)
    bias = bias if with_bias else None
    expected = F.linear(x, weight, bias)
    if activation == 'gelu':
        expected = F.gelu(expected)
    assert use_onednn(x, weight, bias)
    calls = []
    onednn = torch.ops.mkldnn._linear_pointwise
    with mock.patch.object(
            torch.ops.mkldnn, '_linear_pointwise',
            side_effect=lambda *a: calls.append(a[3]) or onednn(*a)):
        out = fast_linear(x, weight, bias, activation)
    assert calls == [activation or 'none']  # one fused oneDNN call
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_gradients_take_f_linear():
    x, weight, bias = _data()
    weight.requires_grad_()
    x.requires_grad_()
    assert not use_onednn(x, weight, bias)
    out = fast_linear(x, weight, bias, 'gelu')
    out.sum().backward()
    gx, gw = x.grad.clone(), weight.grad.clone()
    x.grad = weight.grad = None
    F.gelu(F.linear(x, weight, bias)).sum().backward()
    torch.testing.assert_close(gx, x.grad)
    torch.testing.assert_close(gw, weight.grad)
    with torch.no_grad():  # no gradient needed: oneDNN again
        assert use_onednn(x, weight, bias) == onednn_linear_available()


def test_autocast_and_other_dtypes_take_f_linear():
    x, weight, bias = _data()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert not use_onednn(x, weight, bias)
        out = fast_linear(x, weight, bias)
        expected = F.linear(x, weight, bias)
    assert out.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(out, expected)
    assert not use_onednn(x.double(), weight.double(), bias.double())
    assert not use_onednn(x[:0], weight, bias)
    assert fast_linear(x[:0], weight, bias).shape == (0, 7, 40)
    with torch.backends.mkldnn.flags(enabled=False):
        assert not use_onednn(x, weight, bias)


@pytest.mark.parametrize('cls', [nn.Linear, MMCVLinear])
def test_convert_keeps_the_layer(cls):
    torch.manual_seed(0)
    seq = nn.Sequential(cls(24, 40), nn.GELU())
    linear = seq[0]
    params = [linear.weight, linear.bias]
    keys = list(seq.state_dict())
    x = torch.randn(4, 24)
    with torch.no_grad():
        expected = seq(x)
        converted = FastLinear.convert_(linear, activation='gelu')
        seq[1] = nn.Identity()
        out = seq(x)
    assert converted is linear and isinstance(seq[0], FastLinear)
    assert [linear.weight, linear.bias] == params
    assert list(seq.state_dict()) == keys
    assert 'activation=' in repr(linear)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_fast_linear_module_and_bad_arguments(device):
    """On CUDA the module falls back to F.linear (+ F.gelu) by itself."""
    layer = FastLinear(24, 40, activation='gelu').to(device)
    x = torch.randn(2, 24).to(device)
    with torch.no_grad():
        assert use_onednn(x, layer.weight, layer.bias) == (
            device.type == 'cpu' and onednn_linear_available())
        torch.testing.assert_close(
            layer(x),
            F.gelu(F.linear(x, layer.weight, layer.bias)),
            **tolerances(device, 1e-5, 1e-5))
    with pytest.raises(ValueError, match="activation must be one of"):
        FastLinear(4, 4, activation='relu')
    with pytest.raises(ValueError, match="activation must be one of"):
        fast_linear(x, layer.weight, None, 'tanh')
    with pytest.raises(TypeError, match='nn.Linear or mmcv Linear'):
        FastLinear.convert_(nn.Conv2d(2, 2, 1))
