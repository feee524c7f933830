"""The fused attention's training path under CUDA's autocast rules.

CUDA autocast runs ``softmax`` in float32 (its fp32 op list); the CPU's
runs it in the autocast dtype. So under CUDA fp16/bf16 autocast the
one-pass backward of :class:`DCAMAAttention` (``_MaskAggregation``) meets
fp32 softmax weights beside fp16/bf16 queries and keys, and runs outside
autocast (mmengine's ``AmpOptimWrapper`` calls ``backward`` after the
autocast context). Without a GPU, :class:`CudaSoftmaxRule` applies that one
rule of CUDA autocast to the CPU's autocast, so the CPU shows the dtypes a
GPU would; the ``device``-parametrised case runs the real thing on CUDA.

Tolerance: ``8u`` of the low-precision dtype (``u = 2**-11`` for fp16,
``2**-8`` for bf16), as ``test_amp.py`` argues for bf16.
"""
import contextlib
import copy

import pytest
import torch
from torch.overrides import TorchFunctionMode

from dcama_mm.models.layers import DCAMAAttention
from tests.test_models.dcama_cases import build_segmentor

UNIT = {torch.float16: 2**-11, torch.bfloat16: 2**-8}


class CudaSoftmaxRule(TorchFunctionMode):
    """CUDA autocast's rule for softmax (run in float32), applied under the
    CPU's autocast."""

    _SOFTMAX = (torch.Tensor.softmax, torch.softmax,
                torch.nn.functional.softmax)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self._SOFTMAX and torch.is_autocast_enabled('cpu'):
            args = (args[0].float(), ) + tuple(args[1:])
        return func(*args, **(kwargs or {}))


def _grads(device, fast: bool, dtype, attn_drop: float, cuda_rule: bool):
    torch.manual_seed(0)
    attn = DCAMAAttention(64, num_heads=8, attn_drop=attn_drop).to(device)
    attn.train()
    attn.fast_paths = fast
    gen = torch.Generator().manual_seed(1)
    query = torch.randn(2, 96, 64, generator=gen).to(device)
    key = torch.randn(2, 160, 64, generator=gen).to(device)
    value = (torch.rand(2, 160, generator=gen) > 0.5).float().to(device)
    target = torch.randn(2, 96, generator=gen).to(device)
    query.requires_grad_(True)
    mode = CudaSoftmaxRule() if cuda_rule else contextlib.nullcontext()
    torch.manual_seed(2)  # the same dropout draw
    with mode, torch.autocast(device.type, dtype=dtype or torch.float32,
                              enabled=dtype is not None):
        out = attn(query, key, value)
    # backward outside autocast, as AmpOptimWrapper does
    (out.float() - target).pow(2).sum().backward()
    return out.float().detach(), {
        'query': query.grad,
        'query_proj.weight': attn.query_proj.weight.grad,
        'query_proj.bias': attn.query_proj.bias.grad,
        'key_proj.weight': attn.key_proj.weight.grad,
    }


def _check(low, ref, dtype):
    tol = 8 * UNIT[dtype]
    low_out, low_grads = low
    ref_out, ref_grads = ref
    assert float((low_out - ref_out).abs().max() /
                 ref_out.abs().max()) < tol
    for name, grad in ref_grads.items():
        assert low_grads[name].dtype == torch.float32, name
        err = float((low_grads[name] - grad).norm() / grad.norm())
        assert err < tol, (name, err)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('attn_drop', [0.0, 0.5])
def test_one_pass_backward_with_cuda_softmax_rule(dtype, attn_drop):
    cpu = torch.device('cpu')
    # the fp32 fast path draws its dropout mask from fp32 weights, as the
    # fp32 softmax under the CUDA rule does: the same mask
    ref = _grads(cpu, True, None, attn_drop, cuda_rule=False)
    low = _grads(cpu, True, dtype, attn_drop, cuda_rule=True)
    _check(low, ref, dtype)


def _device_dtypes(device):
    """The autocast dtypes trained / run on ``device``: bf16 on the CPU;
    fp16 and (where the GPU has it) bf16 on CUDA."""
    if device.type == 'cpu':
        return [torch.bfloat16]
    return [torch.float16] + ([torch.bfloat16]
                              if torch.cuda.is_bf16_supported() else [])


def test_one_pass_backward_under_device_autocast(device):
    ref = _grads(device, False, None, 0.0, cuda_rule=False)
    for dtype in _device_dtypes(device):
        low = _grads(device, True, dtype, 0.0, cuda_rule=False)
        _check(low, ref, dtype)


def _update(model, device, amp):
    """The parameter change of one SGD step (lr 1: minus the gradient) of
    ``tools/train.py``'s wrapper for ``amp`` on ``device``."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope

    from dcama_mm.analysis import make_episodes, train_step
    from dcama_mm.engine.optimizers import amp_optim_wrapper_cfg
    model = copy.deepcopy(model).to(device).train()
    cfg = amp_optim_wrapper_cfg(
        dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=1.0)), amp,
        device.type)
    with DefaultScope.overwrite_default_scope('mmseg'):  # as the Runner
        wrapper = build_optim_wrapper(model, cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters()
              if p.requires_grad}
    # drawn on the CPU, then moved: the same episode on every device
    episode = make_episodes(2, 2, (64, 64), device)
    query, samples = episode['query_imgs'], episode['data_samples']
    loss = train_step(model, wrapper, lambda: model.loss(query, samples))
    delta = torch.cat([(p.detach() - before[n]).flatten().float()
                       for n, p in model.named_parameters() if n in before])
    return type(wrapper).__name__, float(loss), delta.cpu()


@pytest.mark.parametrize('backbone', ['r50', 'swin'])
def test_amp_train_step_of_the_wrapper(device, backbone):
    """tools/train.py --amp's step (AmpOptimWrapper with a dynamic loss
    scale on CUDA, AutocastOptimWrapper bf16 on the CPU) against fp32:
    the same loss and parameter update up to the dtype's round-off."""
    torch.manual_seed(0)
    model = build_segmentor(backbone)
    for module in model.modules():  # no dropout: the same computation
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(module, DCAMAAttention):
            module.attn_drop_rate = 0.0
    _, ref_loss, ref = _update(model, device, False)
    kind, loss, delta = _update(model, device, 'auto')
    dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16
    assert kind == ('AmpOptimWrapper'
                    if device.type == 'cuda' else 'AutocastOptimWrapper')
    assert abs(loss - ref_loss) < 8 * UNIT[dtype] * abs(ref_loss)
    # a skipped step (an overflow of the loss scale) would leave 0
    err = float((delta - ref).norm() / ref.norm())
    assert err < 16 * UNIT[dtype], err


@pytest.mark.parametrize('backbone', ['swin', 'r50'])
def test_amp_logits_close_to_fp32_on_device(device, backbone):
    """``test_cfg.amp`` inference (fp16 and bf16 on CUDA, bf16 on the CPU)
    against fp32 on the same device; the logits come back fp32."""
    from dcama_mm.models.utils.precision import dtype_name, set_amp
    from tests.test_models.dcama_cases import random_episode
    model = copy.deepcopy(build_segmentor(backbone)).to(device)
    query, supports, masks = random_episode(1, 2, (32, 32), device=device)
    with torch.no_grad():
        ref = model.predict_logits(query, supports, masks)
    for dtype in _device_dtypes(device):
        set_amp(model, dtype_name(dtype))
        with torch.no_grad():
            low = model.predict_logits(query, supports, masks)
        assert low.dtype == torch.float32 and low.device == ref.device
        assert not torch.equal(low, ref)  # it did run in low precision
        err = float((low - ref).abs().max() / ref.abs().max())
        assert err < 8 * UNIT[dtype], (dtype, err)
