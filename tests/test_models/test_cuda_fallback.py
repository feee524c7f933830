"""Every CPU-only fast path falls back by itself on CUDA (tested on the CPU).

The speed policy (:mod:`dcama_mm.models.utils.fast_paths`) lets each module
choose its paths from the device, dtype and mode of its inputs. Here, on a
machine without a GPU, two things are checked for CUDA:

1. What each fast-path module *says* it does for a CUDA tensor description
   (``fast_paths_for(torch.device('cuda'), dtype, training)`` for fp32,
   fp16 and bf16, inference and training): only paths known to run on
   CUDA, none that needs oneDNN (mkldnn) or the CPU thread pool.
2. What the code *does* on a device that is not the CPU: every path
   selection tests ``device.type == 'cpu'`` (the same answer for a
   ``meta`` as for a ``cuda`` description, asserted below), so the whole
   segmentor is run on ``meta`` tensors (shapes only, no arithmetic) under
   a dispatch recorder: no oneDNN / CPU kernel is dispatched, the backbone
   runs over one batch on the calling thread, and the training step's
   one-pass attention backward is taken. The same recorder on the CPU sees
   the CPU kernels, so the check can fail.

:func:`test_fast_path_report_by_device_dtype_and_mode` (in
``test_few_shot_segmentor.py``) checks the report of the whole Swin model
for CUDA fp16; this file checks each module, each dtype and mode, and the
dispatch.
"""
import collections
import copy
from typing import Dict, List, Set

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import dcama_mm  # noqa: F401
from dcama_mm.models.layers import onednn_linear_available
from dcama_mm.models.utils.fast_paths import FastPathMixin, fast_path_report
from tests.test_models.dcama_cases import build_segmentor, random_episode

CUDA = torch.device('cuda')
DTYPES = (torch.float32, torch.float16, torch.bfloat16)

#: Fast paths that run on CUDA: PyTorch operations with CUDA kernels
#: (SDPA, index_select, convolutions in channels-last, a custom autograd
#: Function of matrix products and element-wise operations).
CUDA_PATHS = {
    'SDPA window attention',
    'shifted windows by one gather',
    'flash attention with a zero-padded value',
    'one-pass attention backward',
    'factored first mixer convolution',
    'channels-last convolutions',
}
#: What the name of a CPU-only path contains.
CPU_ONLY_MARKERS = ('oneDNN', 'mkldnn', 'CPU')

#: Every module class that owns fast paths, and the tiny model holding it.
OWNERS = {
    'FewShotSegmentor': 'swin',
    'DCAMAHead': 'swin',
    'DCAMAAttention': 'swin',
    'FastLinear': 'swin',
    'SDPAWindowMSA': 'swin',
    'GatherShiftWindowMSA': 'swin',
    'BlockFeatureResNet': 'r50',
}


class OpRecorder(TorchDispatchMode):
    """Counts the ATen-level operators dispatched while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[f'{func.namespace}.{func.overloadpacket.__name__}'] += 1
        return func(*args, **(kwargs or {}))

    def cpu_only(self) -> List[str]:
        """The recorded operators that exist for the CPU only."""
        return sorted(op for op in self.ops
                      if op.startswith('mkldnn.') or 'mkldnn' in op
                      or op.endswith('_for_cpu'))


def _subclasses(cls: type) -> Set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found


@pytest.fixture(scope='module')
def models() -> Dict[str, torch.nn.Module]:
    return {name: build_segmentor(name) for name in ('swin', 'r50')}


@pytest.fixture(scope='module')
def owners(models) -> Dict[str, torch.nn.Module]:
    """One module of each fast-path class, from the tiny models."""
    found: Dict[str, torch.nn.Module] = {}
    for name, model in models.items():
        for module in model.modules():
            if isinstance(module, FastPathMixin):
                found.setdefault(type(module).__name__, module)
    return found


def test_every_fast_path_class_is_checked(owners):
    """The list above is every FastPathMixin of dcama_mm (a new fast-path
    module must be classified here), and the tiny models hold them all."""
    classes = {
        cls.__name__
        for cls in _subclasses(FastPathMixin)
        if cls.__module__.startswith('dcama_mm.')
    }
    assert classes == set(OWNERS), (
        'a fast-path module was added or removed: list it in OWNERS and its '
        'paths in CUDA_PATHS (or mark them CPU-only by name)')
    assert set(owners) == set(OWNERS)


@pytest.mark.parametrize('training', [False, True], ids=['infer', 'train'])
@pytest.mark.parametrize('dtype', DTYPES, ids=str)
def test_cuda_description_takes_only_cuda_paths(owners, dtype, training):
    for name, module in owners.items():
        cuda = module.fast_paths_for(CUDA, dtype, training)
        meta = module.fast_paths_for(torch.device('meta'), dtype, training)
        where = f'{name}.fast_paths_for(cuda, {dtype}, training={training})'
        assert not [p for p in cuda if any(m in p for m in CPU_ONLY_MARKERS)
                    ], f'{where} names a CPU-only path: {cuda}'
        assert set(cuda) <= CUDA_PATHS, (
            f'{where} = {cuda}: a path not known to run on CUDA; add it to '
            'CUDA_PATHS if it does, else make the module fall back there')
        # the dispatch test below runs on meta tensors: it stands for CUDA
        assert meta == cuda, where


def test_cpu_only_paths_are_reported_on_the_cpu_only(owners):
    """Not a vacuous check: the CPU-only paths exist for the CPU
    (fp32 inference) and disappear for CUDA and for bf16/fp16."""
    cpu = {name: module.fast_paths_for(torch.device('cpu'), torch.float32,
                                       False)
           for name, module in owners.items()}
    assert cpu['FewShotSegmentor'][0].startswith(
        'CPU backbone image by image')
    assert owners['FewShotSegmentor'].fast_paths_for(CUDA, torch.float32,
                                                     False) == ()
    if onednn_linear_available():
        assert cpu['FastLinear'][0].startswith('oneDNN linear')
        assert 'oneDNN projections' in cpu['DCAMAAttention']
    for dtype in DTYPES:
        assert owners['FastLinear'].fast_paths_for(CUDA, dtype, False) == ()
        assert 'oneDNN projections' not in owners[
            'DCAMAAttention'].fast_paths_for(CUDA, dtype, False)


def _on_meta(model: torch.nn.Module, dtype: torch.dtype):
    """A copy of ``model`` and a 2-episode 2-shot batch on ``meta``."""
    model = copy.deepcopy(model).to('meta', dtype)
    episode = random_episode(2, 2, (64, 64), device=torch.device('meta'))
    return model, [t.to(dtype) for t in episode]


def _backbone_calls(model: torch.nn.Module) -> list:
    """(batch size, thread name) of each backbone call, recorded."""
    import threading
    calls: list = []
    model.backbone.register_forward_pre_hook(lambda module, args: calls.append(
        (args[0].shape[0], threading.current_thread().name)))
    return calls


@pytest.mark.parametrize('dtype', DTYPES, ids=str)
@pytest.mark.parametrize('backbone', ['swin', 'r50'])
def test_inference_off_the_cpu_dispatches_no_cpu_kernel(
        models, backbone, dtype):
    import threading
    model, (query, supports, masks) = _on_meta(models[backbone], dtype)
    calls = _backbone_calls(model)
    recorder = OpRecorder()
    with torch.no_grad(), recorder:
        logits = model.predict_logits(query, supports, masks)
    assert logits.shape == (2, 2, 64, 64) and logits.dtype == dtype
    assert recorder.cpu_only() == []
    # one backbone batch (2 queries + 4 supports), on the calling thread
    assert calls == [(6, threading.current_thread().name)]
    report = fast_path_report(model, CUDA, dtype)
    assert report and not any('CPU' in k or 'oneDNN' in k for k in report)


@pytest.mark.parametrize('dtype', DTYPES, ids=str)
def test_training_off_the_cpu_takes_the_differentiable_paths(models, dtype):
    """Head training (frozen backbone) on meta: no CPU kernel, gradients
    for the head, and the attention's one-pass backward (a CUDA path)."""
    model, (query, supports, masks) = _on_meta(models['swin'], dtype)
    model.train()
    grad_fns: list = []
    model.decode_head.attentions[0].register_forward_hook(
        lambda module, args, out: grad_fns.append(_graph_names(out)))
    recorder = OpRecorder()
    with recorder:
        logits = model.predict_logits(query, supports, masks)
        logits.sum().backward()
    assert recorder.cpu_only() == []
    assert all(p.grad is not None for p in model.decode_head.parameters())
    assert all(p.grad is None for p in model.backbone.parameters())
    assert any('_MaskAggregationBackward' in names for names in grad_fns)


def _graph_names(tensor: torch.Tensor, depth: int = 6) -> Set[str]:
    """Names of the autograd nodes within ``depth`` steps of ``tensor``."""
    names, frontier = set(), [tensor.grad_fn]
    for _ in range(depth):
        frontier = [fn for fn in frontier if fn is not None]
        names |= {type(fn).__name__ for fn in frontier}
        frontier = [nxt for fn in frontier for nxt, _ in fn.next_functions]
    return names


def test_the_recorder_sees_cpu_kernels_on_the_cpu(models):
    """The same check on the CPU (fp32) finds the CPU kernels: it can
    fail."""
    query, supports, masks = random_episode(1, 1, (64, 64))
    recorder = OpRecorder()
    with torch.no_grad(), recorder:
        models['swin'].predict_logits(query, supports, masks)
    found = recorder.cpu_only()
    assert 'aten._scaled_dot_product_flash_attention_for_cpu' in found
    if onednn_linear_available():
        assert 'mkldnn._linear_pointwise' in found
