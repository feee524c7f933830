"""The fast paths of DCAMAHead equal the straightforward path.

With ``fast_paths=False`` the attention writes the reference's computation
out (scores, division by sqrt(d_k), softmax, dropout, product) and the first
mixer convolves the concatenation; the fast paths (flash kernel with a
padded value and oneDNN projections at inference, scale folded into the
query projection and a one-pass backward in training, the factored mixer)
must give the same outputs and gradients. The training fast path draws its
dropout masks as ``rand >= p`` (another draw than ``F.dropout``, the same
distribution): with dropout it is checked against that computation written
out.
"""
import pytest
import torch
import torch.nn.functional as F

import dcama_mm  # noqa: F401
from dcama_mm.models import DCAMAHead
from dcama_mm.models.layers import DCAMAAttention
from dcama_mm.models.utils.fast_paths import set_fast_paths
from tests.device_helpers import tolerances, to_device
from tests.test_models.dcama_cases import random_head_inputs

IN_CHANNELS = (16, 32, 64, 128)
NUM_BLOCKS = (2, 2, 3, 2)


def _attentions(channels=64, heads=8, drop=0.5, device=torch.device('cpu')):
    """``{'fast': module, 'plain': the same weights, fast paths off}``."""
    torch.manual_seed(0)
    fast = DCAMAAttention(channels, heads, drop).to(device)
    plain = DCAMAAttention(channels, heads, drop).to(device)
    plain.load_state_dict(fast.state_dict())
    plain.fast_paths = False
    assert fast.fast_paths
    return dict(fast=fast, plain=plain)


def _tokens(batch, lq, lk, channels, seed=0, device=torch.device('cpu')):
    gen = torch.Generator().manual_seed(seed)
    return to_device((torch.randn(batch, lq, channels, generator=gen),
                      torch.randn(batch, lk, channels, generator=gen),
                      torch.rand(batch, lk, generator=gen)), device)


def _linspace_like(out):
    """Weights -1..1 of ``out``'s shape, on its device."""
    return torch.linspace(-1, 1, out.numel(), device=out.device).view_as(out)


@pytest.mark.parametrize('batch,lq,lk', [(1, 37, 37), (2, 24, 115)])
def test_attention_inference_equal(batch, lq, lk, device):
    modules = _attentions(device=device)
    query, key, value = _tokens(batch, lq, lk, 64, device=device)
    with torch.no_grad():
        outs = {n: m.eval()(query, key, value) for n, m in modules.items()}
    assert outs['plain'].shape == (batch, lq)
    torch.testing.assert_close(outs['fast'], outs['plain'],
                               **tolerances(device, 1e-5, 1e-6))


def _train_run(module, query, key, value, seed):
    query = query.clone().requires_grad_()
    key = key.clone().requires_grad_()
    module.train().zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    out = module(query, key, value)
    (out * _linspace_like(out)).sum().backward()
    grads = [query.grad, key.grad] + [p.grad for p in module.parameters()]
    return out.detach(), grads


def test_attention_training_equal_outputs_and_gradients(device):
    modules = _attentions(drop=0.0, device=device)
    query, key, value = _tokens(2, 20, 45, 64, seed=1, device=device)
    expected, expected_grads = _train_run(modules['plain'], query, key,
                                          value, seed=3)
    out, grads = _train_run(modules['fast'], query, key, value, seed=3)
    torch.testing.assert_close(out, expected,
                               **tolerances(device, 1e-5, 1e-6))
    for grad, ref in zip(grads, expected_grads):
        torch.testing.assert_close(grad, ref,
                                   **tolerances(device, 1e-4, 1e-6))


def test_training_fast_path_dropout_masks_and_gradients(device):
    """Training fast path with dropout: masks ``rand >= p``, exact output
    and gradients of that computation written out; another seed differs."""
    import math
    drop, heads, channels = 0.5, 8, 64
    module = _attentions(drop=drop, device=device)['fast']
    query, key, value = _tokens(2, 30, 50, channels, seed=4, device=device)
    out, grads = _train_run(module, query, key, value, seed=9)

    # the same computation written out, with the mask drawn as documented
    q = query.clone().requires_grad_()
    k = key.clone().requires_grad_()
    module.zero_grad(set_to_none=True)

    def split(x):
        return x.view(2, -1, heads, channels // heads).transpose(1, 2)

    scores = split(module.query_proj(q)) @ split(module.key_proj(k)).transpose(
        -2, -1) / math.sqrt(channels // heads)
    weights = scores.softmax(-1)
    torch.manual_seed(9)
    keep = torch.rand_like(weights) >= drop
    assert 0.45 < keep.float().mean() < 0.55
    expected = (weights * keep / (1 - drop) @ value[:, None, :, None]).mean(
        1).squeeze(-1)
    (expected * _linspace_like(expected)).sum().backward()
    expected_grads = [q.grad, k.grad] + [p.grad for p in module.parameters()]
    torch.testing.assert_close(out, expected.detach(),
                               **tolerances(device, 1e-5, 1e-6))
    for grad, ref in zip(grads, expected_grads):
        torch.testing.assert_close(grad, ref,
                                   **tolerances(device, 1e-4, 1e-6))
    other, _ = _train_run(module, query, key, value, seed=10)
    assert not torch.allclose(other, out)


def test_fused_backward_gradcheck():
    """The hand-written backward against finite differences (float64)."""
    from dcama_mm.models.layers.dcama_attention import _MaskAggregation
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(1, 2, 5, 3, dtype=torch.float64, generator=gen)
    k = torch.randn(1, 2, 7, 3, dtype=torch.float64, generator=gen)
    v = torch.rand(1, 7, dtype=torch.float64, generator=gen)
    q.requires_grad_()
    k.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b: _MaskAggregation.apply(a, b, v, 0.0), (q, k))


def test_train_mode_without_grad_takes_the_training_path(device):
    """Dropout active but no graph: the training kernel, the same masks as
    with a graph."""
    module = _attentions(device=device)['fast'].train()
    query, key, value = _tokens(1, 16, 16, 64, seed=2, device=device)
    torch.manual_seed(7)
    with torch.no_grad():
        no_grad = module(query, key, value)
    with_grad, _ = _train_run(module, query, key, value, seed=7)
    torch.testing.assert_close(no_grad, with_grad,
                               **tolerances(device, 1e-6, 1e-7))


def _head_features(batch, shots, size, seed=0, device=torch.device('cpu')):
    return random_head_inputs(IN_CHANNELS, NUM_BLOCKS, batch, shots, size,
                              seed, device=device)


def _heads(attn_drop=0.5, device=torch.device('cpu')):
    """``{'fast': head, 'plain': the same weights, every fast path off}``."""
    torch.manual_seed(0)
    fast = DCAMAHead(IN_CHANNELS, NUM_BLOCKS, attn_drop=attn_drop).to(device)
    plain = DCAMAHead(IN_CHANNELS, NUM_BLOCKS, attn_drop=attn_drop).to(device)
    plain.load_state_dict(fast.state_dict())
    set_fast_paths(plain, False)
    return dict(fast=fast, plain=plain)


def test_head_inference_equal_k_shot_non_square(device):
    heads = _heads(device=device)
    inputs = _head_features(2, 3, (64, 96), seed=5, device=device)
    with torch.no_grad():
        outs = {n: h.eval()(inputs) for n, h in heads.items()}
    assert outs['plain'].shape == (2, 2, 64, 96)
    torch.testing.assert_close(outs['fast'], outs['plain'],
                               **tolerances(device, 1e-4, 1e-4))


def test_head_training_step_equal(device):
    """Without attention dropout (whose fast path draws other masks); the
    positional-encoding dropout is drawn alike."""
    heads = _heads(attn_drop=0.0, device=device)
    inputs = _head_features(1, 2, (64, 64), seed=6, device=device)
    target = torch.randint(0, 2, (1, 64, 64),
                           generator=torch.Generator().manual_seed(0)).to(
                               device)
    results = {}
    for impl, head in heads.items():
        head.train()
        torch.manual_seed(11)
        logits = head(inputs)
        F.cross_entropy(logits, target).backward()
        results[impl] = (logits.detach(),
                         {n: p.grad
                          for n, p in head.named_parameters()})
    logits, grads = results['plain']
    torch.testing.assert_close(results['fast'][0], logits,
                               **tolerances(device, 1e-4, 1e-4))
    for name, grad in grads.items():
        torch.testing.assert_close(
            results['fast'][1][name], grad,
            **tolerances(device, 1e-3, 1e-5),
            msg=lambda m, n=name: f'{n}: {m}')


@pytest.mark.parametrize('low_hw, skip_hw', [
    ((6, 8), (12, 16)),
    ((3, 4), (7, 9)),
    ((1, 1), (1, 2)),
    ((5, 5), (5, 5)),
])
def test_factored_conv_of_up_and_skip_equals_concat(low_hw, skip_hw,
                                                    device):
    """The factored first mixer convolution equals the 3x3 convolution of
    the concatenation: any resize factor, borders, 1-pixel maps, no resize,
    and the same gradients."""
    from dcama_mm.models.decode_heads.dcama_head import (
        _conv3x3_of_up_and_skip, _up)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(5 + 3, 4, 3, padding=1).to(device)
    low = torch.randn(2, 5, *low_hw).to(device).requires_grad_()
    skip = torch.randn(2, 3, *skip_hw).to(device).requires_grad_()
    outs, grads = [], []
    for factored in (False, True):
        if factored:
            out = _conv3x3_of_up_and_skip(conv, low, skip)
        else:
            out = conv(torch.cat((_up(low, skip_hw), skip), dim=1))
        (out * _linspace_like(out)).sum().backward()
        outs.append(out)
        tensors = (low, skip, conv.weight, conv.bias)
        grads.append([t.grad.clone() for t in tensors])
        for t in tensors:
            t.grad = None
    torch.testing.assert_close(outs[1], outs[0],
                               **tolerances(device, 1e-5, 1e-6))
    for a, b in zip(grads[1], grads[0]):
        torch.testing.assert_close(a, b, **tolerances(device, 1e-5, 1e-5))


@pytest.mark.parametrize('size', [(64, 96), (100, 76)])
def test_head_factored_mixer_equal(size, device):
    """The head's own fast path, the factored mixer, gives the logits and
    gradients of the concatenated form (the head's fast_paths off, its
    attentions' on), also when the stride-8 map is not half the stride-4
    map (100 -> 25 and 12)."""
    torch.manual_seed(0)
    concat = DCAMAHead(IN_CHANNELS, NUM_BLOCKS).to(device)
    concat.fast_paths = False
    factored = DCAMAHead(IN_CHANNELS, NUM_BLOCKS).to(device)
    factored.load_state_dict(concat.state_dict())
    inputs = _head_features(2, 2, size, seed=7, device=device)
    with torch.no_grad():
        torch.testing.assert_close(
            factored.eval()(inputs), concat.eval()(inputs),
            **tolerances(device, 1e-5, 1e-5))
    target = torch.randint(0, 2, (2, *size),
                           generator=torch.Generator().manual_seed(1)).to(
                               device)
    results = []
    for head in (concat, factored):
        head.train()
        torch.manual_seed(11)
        logits = head(inputs)
        F.cross_entropy(logits, target).backward()
        results.append((logits.detach(),
                        {n: p.grad
                         for n, p in head.named_parameters()}))
    torch.testing.assert_close(results[1][0], results[0][0],
                               **tolerances(device, 1e-5, 1e-5))
    for name, grad in results[0][1].items():
        # float round-off: a few 1e-6 on near-zero bias gradients
        torch.testing.assert_close(
            results[1][1][name], grad, **tolerances(device, 1e-4, 1e-5),
            msg=lambda m, n=name: f'{n}: {m}')
