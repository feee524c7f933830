"""Mixed precision (bf16 autocast on the CPU): the precision policy
(:mod:`dcama_mm.models.utils.precision`), the segmentor's ``test_cfg.amp``,
the fast paths under bf16 and the fused attention's backward under
autocast.

Tolerances: bf16 keeps 8 significant bits, a unit round-off of
``u = 2**-8 ~ 0.0039`` per rounded value. An output passes through a
handful of rounded matrix products (projection, scores, softmax weights,
value product, convolutions); errors of independent roundings add up to a
few ``u``: we allow ``8u ~ 0.031`` relative to the largest magnitude.
"""
import pytest
import torch
from mmengine.optim import OptimWrapper

from dcama_mm.engine.optimizers import (AutocastOptimWrapper,
                                        amp_optim_wrapper_cfg)
from dcama_mm.models.layers import DCAMAAttention
from dcama_mm.models.utils.fast_paths import fast_path_report
from dcama_mm.models.utils.precision import (amp_from_args, autocast_for,
                                             resolve_amp_dtype, set_amp)
from tests.test_models.dcama_cases import (build_segmentor, model_cfg,
                                           random_episode)

U = 2**-8
TOL = 8 * U


def _relative_max(a: torch.Tensor, ref: torch.Tensor) -> float:
    return float((a.float() - ref).abs().max() / ref.abs().max())


@pytest.mark.parametrize('amp,device,dtype', [
    (None, 'cpu', None), (False, 'cuda', None), (True, 'cpu', torch.bfloat16),
    ('auto', 'cpu', torch.bfloat16), (True, 'cuda', torch.float16),
    ('auto', 'cuda', torch.float16), ('bfloat16', 'cuda', torch.bfloat16),
    ('float16', 'cpu', torch.float16)
])
def test_resolve_amp_dtype(amp, device, dtype):
    assert resolve_amp_dtype(amp, device) is dtype


def test_bad_amp_values_are_refused_by_name():
    with pytest.raises(ValueError, match='test_cfg.amp must be'):
        resolve_amp_dtype('fp8', 'cpu', 'test_cfg.amp')
    cfg = model_cfg('r50')
    cfg['test_cfg'] = dict(amp='half')
    from mmseg.registry import MODELS
    with pytest.raises(ValueError, match='test_cfg.amp'):
        MODELS.build(cfg)


def test_amp_dtype_without_amp_is_refused():
    import argparse
    with pytest.raises(ValueError, match='--amp-dtype float16 needs --amp'):
        amp_from_args(argparse.Namespace(amp=False, amp_dtype='float16'))
    assert amp_from_args(argparse.Namespace(amp=True,
                                            amp_dtype='auto')) == 'auto'


@pytest.mark.parametrize('backbone', ['swin', 'r50', 'r101'])
def test_bf16_logits_close_to_fp32(backbone):
    model = build_segmentor(backbone)
    query, supports, masks = random_episode(1, 2, (32, 32))
    with torch.no_grad():
        ref = model.predict_logits(query, supports, masks)
        set_amp(model, 'bfloat16')
        low = model.predict_logits(query, supports, masks)
        # nothing is left on: the next fp32 call is fp32 again
        set_amp(model, False)
        again = model.predict_logits(query, supports, masks)
    assert low.dtype == torch.float32  # the final logits come back fp32
    assert not torch.equal(low, ref)  # it did run in bf16
    assert _relative_max(low, ref) < TOL
    torch.testing.assert_close(again, ref, rtol=0, atol=0)


def test_predict_and_encoded_supports_under_amp():
    model = build_segmentor('r50')
    query, supports, masks = random_episode(1, 2, (32, 32))
    with torch.no_grad():
        ref = model.predict_logits(query, supports, masks)
        set_amp(model, True)
        encoded = model.encode_supports(supports[0], masks[0])
        assert all(f.dtype == torch.float32 for stage in encoded.feats
                   for f in stage)
        low = model.predict_logits(query, supports=encoded)
        n_way = model.predict_logits_n_way(query, [encoded, encoded])
        samples = model.predict(query, None, supports=encoded)
    assert _relative_max(low, ref) < TOL
    assert n_way.dtype == torch.float32
    torch.testing.assert_close(n_way[:, 0], low)
    assert samples[0].seg_logits.data.dtype == torch.float32
    assert torch.equal(samples[0].pred_sem_seg.data[0], low[0].argmax(0))


def test_test_cfg_amp_leaves_training_in_fp32():
    # test_cfg.amp is inference precision: the training forward (loss goes
    # through predict_logits) stays fp32 unless the optimizer wrapper says
    torch.manual_seed(0)
    model = build_segmentor('r50')
    query, supports, masks = random_episode(1, 1, (32, 32))
    model.train()
    torch.manual_seed(1)  # the same dropout masks
    ref = model.predict_logits(query, supports, masks)
    set_amp(model, 'bfloat16')
    torch.manual_seed(1)
    assert torch.equal(model.predict_logits(query, supports, masks), ref)
    model.eval()
    with torch.no_grad():
        low = model.predict_logits(query, supports, masks)
    assert not torch.equal(low, ref.detach())


def test_outer_autocast_is_kept():
    model = build_segmentor('r50')
    query, supports, masks = random_episode(1, 1, (32, 32))
    set_amp(model, 'bfloat16')
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        inner = model.predict_logits(query, supports, masks)
        assert torch.is_autocast_enabled('cpu')
    assert autocast_for('cpu', None).__class__.__name__ == 'nullcontext'
    set_amp(model, False)
    with torch.no_grad():
        ref = model.predict_logits(query, supports, masks)
    assert _relative_max(inner, ref) < TOL


def test_fast_path_report_under_bf16():
    model = build_segmentor('swin')
    fp32 = fast_path_report(model, 'cpu', torch.float32)
    bf16 = fast_path_report(model, 'cpu', torch.bfloat16)
    # oneDNN's fused linear is fp32-only: under bf16 those modules compute
    # F.linear, which autocast runs in bf16
    assert any('oneDNN' in path for path in fp32)
    assert not any('oneDNN' in path for path in bf16)
    for path in ('DCAMAAttention: flash attention with a zero-padded value',
                 'SDPAWindowMSA: SDPA window attention',
                 'GatherShiftWindowMSA: shifted windows by one gather'):
        assert bf16[path] == fp32[path] > 0
    train = fast_path_report(model, 'cpu', torch.bfloat16, training=True)
    assert train['DCAMAAttention: one-pass attention backward'] == 3


def _attention_grads(fast: bool, amp: bool, seed: int = 0):
    torch.manual_seed(seed)
    attn = DCAMAAttention(64, num_heads=8, attn_drop=0.0)
    attn.fast_paths = fast
    query = torch.randn(2, 96, 64, requires_grad=True)
    key = torch.randn(2, 160, 64, requires_grad=True)
    value = (torch.rand(2, 160) > 0.5).float()
    target = torch.randn(2, 96)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp):
        out = attn(query, key, value)
    loss = (out.float() - target).pow(2).sum()
    loss.backward()
    return out.float().detach(), {
        'query': query.grad,
        'key': key.grad,
        'query_proj.weight': attn.query_proj.weight.grad,
        'key_proj.weight': attn.key_proj.weight.grad,
        'query_proj.bias': attn.query_proj.bias.grad,
    }


def test_fused_attention_backward_under_autocast():
    ref_out, ref = _attention_grads(fast=False, amp=False)
    fast_out, fast = _attention_grads(fast=True, amp=True)
    plain_out, plain = _attention_grads(fast=False, amp=True)
    assert _relative_max(fast_out, ref_out) < TOL
    for name, grad in ref.items():
        assert fast[name].dtype == torch.float32, name
        # the custom backward under bf16 vs fp32, and vs autograd's chain
        # under the same bf16 autocast (norm-wise: the gradient is a sum
        # over many rounded terms)
        err = float((fast[name] - grad).norm() / grad.norm())
        err_plain = float((plain[name] - grad).norm() / grad.norm())
        assert err < TOL, (name, err)
        assert err < 2 * err_plain + U, (name, err, err_plain)


def test_autocast_optim_wrapper_on_the_cpu():
    model = torch.nn.Linear(4, 2)
    wrapper = AutocastOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.1))
    assert isinstance(wrapper, OptimWrapper)
    with wrapper.optim_context(model):
        assert torch.is_autocast_enabled('cpu')
        out = model(torch.randn(3, 4))
    assert out.dtype == torch.bfloat16
    assert not torch.is_autocast_enabled('cpu')


def test_amp_optim_wrapper_cfg():
    base = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))
    cpu = amp_optim_wrapper_cfg(base, 'auto', 'cpu')
    assert cpu['type'] == 'AutocastOptimWrapper'
    assert cpu['dtype'] == 'bfloat16'
    gpu = amp_optim_wrapper_cfg(base, True, 'cuda')
    assert (gpu['type'], gpu['dtype'], gpu['loss_scale']) == (
        'AmpOptimWrapper', 'float16', 'dynamic')
    assert base['type'] == 'OptimWrapper'  # not modified
    assert amp_optim_wrapper_cfg(base, False, 'cpu') == base
    with pytest.raises(ValueError, match='--amp-dtype float16 cannot train '
                       'on the CPU'):
        amp_optim_wrapper_cfg(base, 'float16', 'cpu')
    with pytest.raises(ValueError, match='optim_wrapper.type'):
        amp_optim_wrapper_cfg(dict(type='Other'), True, 'cpu')
