"""FewShotSegmentor: equality with the reference DCAMA, modes, training."""
import copy
import threading

import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from mmseg.structures import SegDataSample

import dcama_mm  # noqa: F401
from dcama_mm.models.utils.fast_paths import fast_path_report, set_fast_paths
from tests.device_helpers import tolerances
from tests.test_models.dcama_cases import IMG_SIZE, build_segmentor
from tests.test_models.dcama_cases import converted_pair as _pair
from tests.test_models.dcama_cases import model_cfg, random_episode


@pytest.mark.parametrize('backbone,shots,batch', [
    (backbone, shots, batch) for backbone in ('swin', 'r50')
    for shots, batch in ((1, 1), (1, 2), (5, 1), (5, 2))
] + [('r101', 1, 1), ('r101', 5, 2)])
def test_equals_reference(backbone, shots, batch, device):
    reference, segmentor = _pair(backbone, device)
    size = (IMG_SIZE[backbone], ) * 2
    query, supports, masks = random_episode(
        batch, shots, size, seed=shots, device=device)
    with torch.no_grad():
        expected = reference(query, supports, masks)
        logits = segmentor.predict_logits(query, supports, masks)
    assert logits.shape == (batch, 2, *size)
    assert logits.device.type == device.type
    assert expected.abs().max() > 1e-3  # not a degenerate comparison
    torch.testing.assert_close(logits, expected,
                               **tolerances(device, 1e-4, 1e-4))


@pytest.mark.parametrize('backbone', ['swin', 'r50'])
def test_fast_paths_equal_straightforward_path(backbone, device):
    """Every fast path on (the default: oneDNN linears, SDPA window
    attention, flash head attention, factored mixer, channels-last ResNet,
    one backbone image at a time on the CPU, two at once for Swin) equals
    the one setting ``fast_paths=False`` (mmpretrain's window attention,
    F.linear, the reference's explicit attention, one backbone batch); on
    CUDA, the paths that apply there."""
    _, fast = _pair(backbone, device)
    plain = build_segmentor(backbone, fast=False).to(device)
    plain.load_state_dict(fast.state_dict())
    assert fast_path_report(fast, device) and not fast_path_report(
        plain, device)
    query, supports, masks = random_episode(
        2, 3, (64, 64), seed=5, device=device)
    with torch.no_grad():
        torch.testing.assert_close(
            fast.predict_logits(query, supports, masks),
            plain.predict_logits(query, supports, masks),
            **tolerances(device, 1e-5, 1e-5))


def test_one_setting_reaches_every_module(monkeypatch):
    """``fast_paths`` of the segmentor, set_fast_paths and the
    environment's default all reach every module that owns a fast path."""
    from dcama_mm.models.utils import fast_paths as policy
    owners = [m for m in build_segmentor('swin').modules()
              if isinstance(m, policy.FastPathMixin)]
    assert {type(m).__name__ for m in owners} == {
        'FewShotSegmentor', 'DCAMAHead', 'DCAMAAttention', 'FastLinear',
        'SDPAWindowMSA', 'GatherShiftWindowMSA'}
    assert all(m.fast_paths for m in owners)
    off = build_segmentor('swin', fast=False)
    assert not any(m.fast_paths for m in off.modules()
                   if isinstance(m, policy.FastPathMixin))
    policy.set_fast_paths(off, True)
    assert all(m.fast_paths for m in off.modules()
               if isinstance(m, policy.FastPathMixin))
    monkeypatch.setattr(policy, '_DEFAULT', False)
    cfg = model_cfg('r50')
    cfg['fast_paths'] = None
    default_off = MODELS.build(cfg)
    assert not any(m.fast_paths for m in default_off.modules()
                   if isinstance(m, policy.FastPathMixin))


@pytest.mark.parametrize('value,ok', [('0', False), ('off', False),
                                      ('1', True), ('', True),
                                      ('maybe', None)])
def test_fast_paths_environment_variable(monkeypatch, value, ok):
    from dcama_mm.models.utils import fast_paths as policy
    monkeypatch.setenv(policy.ENV_VAR, value)
    if ok is None:
        with pytest.raises(ValueError, match=policy.ENV_VAR):
            policy._read_environment()
    else:
        assert policy._read_environment() is ok


def test_fast_path_report_by_device_dtype_and_mode():
    """Each module says which path it takes for a tensor description: the
    CPU-only paths fall back by themselves on CUDA and under bf16."""
    swin = build_segmentor('swin')
    cpu = fast_path_report(swin, 'cpu', torch.float32, training=False)
    assert cpu['FastLinear: oneDNN linear + GELU'] > 0
    assert cpu['FewShotSegmentor: CPU backbone image by image, 2 at once']
    assert cpu['DCAMAAttention: flash attention with a zero-padded value']
    cuda = fast_path_report(swin, 'cuda', torch.float16, training=False)
    assert not any('oneDNN' in key or 'CPU' in key for key in cuda)
    assert cuda['SDPAWindowMSA: SDPA window attention'] > 0
    train = fast_path_report(swin, 'cpu', torch.float32, training=True)
    assert 'DCAMAAttention: one-pass attention backward' in train
    assert 'DCAMAAttention: oneDNN projections' not in train
    # the frozen backbone runs as at inference while the head trains
    assert train['FastLinear: oneDNN linear + GELU'] == cpu[
        'FastLinear: oneDNN linear + GELU']
    bf16 = fast_path_report(swin, 'cpu', torch.bfloat16, training=False)
    assert not any('oneDNN' in key for key in bf16)


@pytest.mark.parametrize('key', ['attn_impl', 'cpu_backbone_batch_size'])
def test_removed_speed_switches_are_refused(key):
    cfg = dict(model_cfg('r50'), **{key: 1})
    with pytest.raises(ValueError, match=f'{key}.*model.fast_paths=False'):
        MODELS.build(cfg)
    cfg = model_cfg('r50')
    cfg['decode_head']['mixer_impl'] = 'concat'
    with pytest.raises(ValueError, match='mixer_impl.*no longer exist'):
        MODELS.build(cfg)


def test_unknown_test_cfg_key_is_refused():
    cfg = dict(model_cfg('r50'), test_cfg=dict(resize_to_orignal=True))
    with pytest.raises(ValueError, match="resize_to_orignal.*resize_to_"):
        MODELS.build(cfg)


def test_cpu_backbone_runs_image_by_image():
    _, segmentor = _pair('r50')
    sizes = []
    handle = segmentor.backbone.register_forward_pre_hook(
        lambda module, args: sizes.append(args[0].shape[0]))
    query, supports, masks = random_episode(2, 2, (64, 64), seed=6)
    try:
        with torch.no_grad():
            segmentor.predict_logits(query, supports, masks)
            set_fast_paths(segmentor, False)
            segmentor.predict_logits(query, supports, masks)
    finally:
        set_fast_paths(segmentor, True)
        handle.remove()
    assert sizes == [1] * 6 + [6]


def test_cpu_backbone_not_split_for_a_training_backbone():
    """BatchNorm in train mode needs the whole batch: no splitting."""
    cfg = copy.deepcopy(model_cfg('r50'))
    cfg['backbone']['frozen'] = False
    segmentor = MODELS.build(cfg).train()
    sizes = []
    segmentor.backbone.register_forward_pre_hook(
        lambda module, args: sizes.append(args[0].shape[0]))
    query, supports, masks = random_episode(2, 1, (64, 64), seed=7)
    segmentor.predict_logits(query, supports, masks)
    segmentor.eval()
    with torch.no_grad():
        segmentor.predict_logits(query, supports, masks)
    assert sizes == [4, 1, 1, 1, 1]


@pytest.mark.parametrize('value', [0, -1, 1.5, True, '2'])
def test_cpu_parallel_images_is_checked(value):
    cfg = dict(model_cfg('r50'), cpu_parallel_images=value)
    with pytest.raises(ValueError, match='cpu_parallel_images'):
        MODELS.build(cfg)


def test_cpu_parallel_images_run_side_by_side():
    _, segmentor = _pair('swin')
    assert segmentor.cpu_parallel_images == 2
    threads = []
    handle = segmentor.backbone.register_forward_pre_hook(
        lambda module, args: threads.append(threading.current_thread().name))
    query, supports, masks = random_episode(1, 3, (64, 64), seed=8)
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.no_grad():
            parallel = segmentor.predict_logits(query, supports, masks)
            assert torch.get_num_threads() == 2  # restored
            segmentor.cpu_parallel_images = None
            serial = segmentor.predict_logits(query, supports, masks)
    finally:
        segmentor.cpu_parallel_images = 2
        torch.set_num_threads(torch_threads)
        handle.remove()
    assert len(threads) == 8
    main = threading.main_thread().name
    assert sorted(name.startswith('dcama_mm_cpu') for name in threads[:4]
                  ) == [False, False, True, True]
    assert threads[4:] == [main] * 4
    torch.testing.assert_close(parallel, serial, rtol=1e-5, atol=1e-5)


def test_batch_episodes_are_independent(device):
    """Episode b of a batch gives the logits it gives alone (per-episode
    support concatenation, unlike the reference's batch>1, K>1 reshape)."""
    _, segmentor = _pair('r50', device)
    query, supports, masks = random_episode(
        2, 3, (64, 64), seed=4, device=device)
    with torch.no_grad():
        both = segmentor.predict_logits(query, supports, masks)
        second = segmentor.predict_logits(query[1:], supports[1:], masks[1:])
    torch.testing.assert_close(both[1:], second,
                               **tolerances(device, 1e-5, 1e-5))


def test_encoded_supports_reused_over_queries(device):
    _, segmentor = _pair('swin', device)
    query, supports, masks = random_episode(
        3, 2, (64, 64), seed=5, device=device)
    supports = supports[:1].expand(3, -1, -1, -1, -1)
    masks = masks[:1].expand(3, -1, -1, -1)
    with torch.no_grad():
        direct = segmentor.predict_logits(query, supports, masks)
        encoded = segmentor.encode_supports(supports[0], masks[0])
        reused = segmentor.predict_logits(query, supports=encoded)
        encoded5d = segmentor.encode_supports(supports[:1], masks[:1])
        reused5d = segmentor.predict_logits(query[:1], supports=encoded5d)
    assert encoded.feats[0][0].shape[:2] == (1, 2)
    tol = tolerances(device, 1e-5, 1e-5)
    torch.testing.assert_close(reused, direct, **tol)
    torch.testing.assert_close(reused5d, direct[:1], **tol)


def _samples(batch, shots, size, seed=0, ori_shape=None,
             device=torch.device('cpu')):
    query, supports, masks = random_episode(
        batch, shots, size, seed=seed, device=device)
    gen = torch.Generator().manual_seed(seed + 100)
    samples = []
    for b in range(batch):
        sample = SegDataSample()
        gt = (torch.rand(1, *size, generator=gen) > 0.5).long().to(device)
        sample.gt_sem_seg = PixelData(data=gt)
        sample.support_imgs = supports[b]
        sample.support_masks = masks[b]
        sample.set_metainfo(
            dict(img_shape=size, ori_shape=ori_shape or size, class_id=b))
        samples.append(sample)
    return query, samples


def test_loss_mode_is_cross_entropy(device):
    _, segmentor = _pair('r50', device)
    query, samples = _samples(2, 1, (64, 64), seed=6, device=device)
    segmentor.eval()  # no dropout: the loss is deterministic
    with torch.no_grad():
        losses = segmentor(query, samples, mode='loss')
        logits = segmentor(query, samples, mode='tensor')
    gt = torch.cat([s.gt_sem_seg.data for s in samples])
    assert set(losses) == {'loss_ce', 'acc_seg'}
    torch.testing.assert_close(losses['loss_ce'], F.cross_entropy(logits, gt))
    acc = (logits.argmax(1) == gt).float().mean() * 100
    torch.testing.assert_close(losses['acc_seg'].reshape(()), acc)


def test_predict_at_network_and_original_size(device):
    _, segmentor = _pair('r50', device)
    query, samples = _samples(
        2, 2, (64, 64), seed=7, ori_shape=(50, 80), device=device)
    with torch.no_grad():
        logits = segmentor.predict_logits(
            query, torch.stack([s.support_imgs for s in samples]),
            torch.stack([s.support_masks for s in samples]))
        results = segmentor(query, copy.deepcopy(samples), mode='predict')
        original = copy.deepcopy(segmentor)
        original.test_cfg = dict(resize_to_original=True)
        results_ori = original(query, samples, mode='predict')
    for b in range(2):
        torch.testing.assert_close(results[b].seg_logits.data, logits[b])
        assert results[b].pred_sem_seg.data.shape == (1, 64, 64)
        assert torch.equal(results[b].pred_sem_seg.data[0],
                           logits[b].argmax(0))
        resized = F.interpolate(
            logits[b:b + 1], (50, 80), mode='bilinear',
            align_corners=True)[0]
        torch.testing.assert_close(results_ori[b].seg_logits.data, resized)
        assert torch.equal(results_ori[b].pred_sem_seg.data[0],
                           resized.argmax(0))


def _uint8_batch(seed: int) -> dict:
    """A dataloader-style batch of 2 1-shot 64x64 episodes (uint8 images)."""
    query, samples = _samples(2, 1, (64, 64), seed=seed)
    for sample in samples:
        sample.support_imgs = ((sample.support_imgs + 2) * 50).clamp(
            0, 255).to(torch.uint8)
    return dict(
        inputs=[((q + 2) * 50).clamp(0, 255).to(torch.uint8) for q in query],
        data_samples=list(samples))


def test_training_step_updates_head_only(device):
    model = build_segmentor('r50').to(device)
    model.train()
    assert not model.backbone.training  # frozen backbone stays in eval
    optim_wrapper = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(
            type='FewShotOptimWrapperConstructor',
            optim_wrapper_cfg=dict(
                type='OptimWrapper',
                optimizer=dict(
                    type='SGD', lr=0.1, momentum=0.9, nesterov=True,
                    weight_decay=1e-4))))(model)
    in_optim = {
        id(p)
        for g in optim_wrapper.optimizer.param_groups for p in g['params']
    }
    assert not in_optim & {id(p) for p in model.backbone.parameters()}
    assert in_optim == {id(p) for p in model.decode_head.parameters()}

    before = copy.deepcopy(model.state_dict())
    data = _uint8_batch(seed=8)  # on the CPU: the preprocessor moves it
    log_vars = model.train_step(data, optim_wrapper)
    assert torch.isfinite(log_vars['loss'])
    assert log_vars['loss'].device.type == device.type
    for name, param in model.backbone.named_parameters():
        assert param.grad is None, name
    after = model.state_dict()
    for key in before:
        if key.startswith('backbone.'):
            assert torch.equal(before[key], after[key]), key
    changed = [
        k for k in before
        if k.startswith('decode_head.') and not torch.equal(
            before[k], after[k])
    ]
    head_params = [
        'decode_head.' + n for n, _ in model.decode_head.named_parameters()
    ]
    assert sorted(changed) == sorted(head_params)


def test_unfrozen_backbone_trains_with_the_head():
    from mmseg.registry import MODELS
    cfg = model_cfg('r50')
    cfg['backbone']['frozen'] = False
    model = MODELS.build(cfg)
    model.train()
    assert model.backbone.training
    optim_wrapper = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(
            type='FewShotOptimWrapperConstructor',
            optim_wrapper_cfg=dict(
                type='OptimWrapper',
                optimizer=dict(type='SGD', lr=0.1))))(model)
    in_optim = {
        id(p)
        for g in optim_wrapper.optimizer.param_groups for p in g['params']
    }
    assert in_optim == {id(p) for p in model.parameters()}
    data = _uint8_batch(seed=8)
    losses = model.train_step(data, optim_wrapper)
    assert torch.isfinite(losses['loss'])
    # A backward pass reaches every backbone parameter (what DDP requires of
    # every trainable parameter); the optimizer step above updated them.
    processed = model.data_preprocessor(data, True)
    loss = sum(v for k, v in model(**processed, mode='loss').items()
               if k.startswith('loss'))
    loss.backward()
    for name, param in model.backbone.named_parameters():
        assert param.grad is not None, name


def test_model_mismatch_is_reported():
    cfg = model_cfg('r50')
    cfg['decode_head']['num_blocks'] = (3, 4, 23, 3)
    with pytest.raises(ValueError, match='num_blocks'):
        MODELS.build(cfg)
    cfg = model_cfg('r50')
    cfg['decode_head']['in_channels'] = (256, 512, 1024, 2048)
    with pytest.raises(ValueError, match='in_channels'):
        MODELS.build(cfg)


@pytest.mark.parametrize('args,message', [
    (lambda q, s, m: (q[0], s, m), r'query_imgs must have shape'),
    (lambda q, s, m: (q, s[:, 0], m), r'support_imgs must have shape'),
    (lambda q, s, m: (q, s, m[:, :, :32]), 'support_masks shape'),
    (lambda q, s, m: (q[:1], s, m), 'Batch mismatch'),
    (lambda q, s, m: (q[..., :32], s, m), 'resize them to the same size'),
    (lambda q, s, m: (q, s[:, :0], m[:, :0]), 'K = 0'),
    (lambda q, s, m: (q.to(torch.uint8), s, m), 'must be float'),
    (lambda q, s, m: (q, s.to(torch.uint8), m), 'must be float'),
    (lambda q, s, m: (q, s, m[0]), r'\[B, K, H, W\] tensor'),
])
def test_predict_logits_rejects_bad_inputs(args, message):
    _, segmentor = _pair('r50')
    query, supports, masks = random_episode(2, 2, (64, 64))
    with pytest.raises(ValueError, match=message):
        segmentor.predict_logits(*args(query, supports, masks))


def test_predict_logits_needs_supports():
    _, segmentor = _pair('r50')
    query, supports, masks = random_episode(1, 1, (64, 64))
    with pytest.raises(ValueError, match='needs support_imgs'):
        segmentor.predict_logits(query)
    encoded = segmentor.encode_supports(supports[0], masks[0])
    with pytest.raises(ValueError, match='not both'):
        segmentor.predict_logits(query, supports, masks, supports=encoded)
    with pytest.raises(ValueError, match='ONE support set'):
        segmentor.encode_supports(supports.expand(2, -1, -1, -1, -1),
                                  masks.expand(2, -1, -1, -1))
