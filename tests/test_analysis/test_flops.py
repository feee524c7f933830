"""dcama_mm.analysis.flops: the CPU kernels of the fast paths count as the
products they compute."""
import math

import torch
import torch.nn.functional as F

from dcama_mm.analysis import count_flops
from dcama_mm.models.layers import DCAMAAttention
from dcama_mm.models.layers.onednn_linear import fast_linear


def test_linear_counts_the_same_on_onednn():
    x, linear = torch.randn(3, 10, 32), torch.nn.Linear(32, 48)
    expected = 2 * 3 * 10 * 32 * 48
    with torch.no_grad():
        assert count_flops(lambda: linear(x)) == expected
        assert count_flops(
            lambda: fast_linear(x, linear.weight, linear.bias)) == expected


def test_cpu_flash_attention_counts_its_two_products():
    b, h, lq, lk, d = 2, 4, 24, 40, 16
    q, k, v = (torch.randn(b, h, n, d) for n in (lq, lk, lk))
    products = 2 * (2 * b * h * lq * lk * d)

    def explicit():
        scores = q @ k.transpose(-2, -1) / math.sqrt(d)
        return scores.softmax(-1) @ v

    with torch.no_grad():
        assert count_flops(explicit) == products
        assert count_flops(
            lambda: F.scaled_dot_product_attention(q, k, v)) == products
    q.requires_grad_(True)
    # forward + backward (the backward has twice the products and more)
    both = count_flops(
        lambda: F.scaled_dot_product_attention(q, k, v).sum().backward())
    assert both > 2 * products


def test_dcama_attention_with_and_without_fast_paths():
    """Projections + the two attention products; the fast path (inference)
    pads the one-channel value to the head width."""
    c, heads, lq, lk = 64, 8, 48, 96
    query, key = torch.randn(2, lq, c), torch.randn(2, lk, c)
    value = torch.rand(2, lk)
    projections = 2 * lq * c * c + 2 * lk * c * c
    scores = 2 * lq * lk * c
    for fast, value_width in ((True, c // heads), (False, 1)):
        attention = DCAMAAttention(c, heads).eval()
        attention.fast_paths = fast
        with torch.no_grad():
            flops = count_flops(lambda: attention(query, key, value))
        expected = 2 * (
            projections + scores + 2 * heads * lq * lk * value_width)
        assert flops == expected, fast
