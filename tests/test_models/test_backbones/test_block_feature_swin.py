import copy

import pytest
import torch

from mmpretrain.models import SwinTransformer
from mmpretrain.models.utils import ShiftWindowMSA, WindowMSA

from dcama_mm.models.backbones import BlockFeatureSwin
from dcama_mm.models.layers import (FastLinear, GatherShiftWindowMSA,
                                    SDPAWindowMSA, use_sdpa_window_attention)
from dcama_mm.models.utils.fast_paths import set_fast_paths
from dcama_mm.models.utils.backbone_converters import convert_official_swin
from mmseg.registry import MODELS
from tests.device_helpers import tolerances
from tests.reference import randomize_parameters
from tests.reference.official_swin import OfficialSwin

# Tiny Swin at a size where everything DCAMA relies on happens: shifted
# windows with masks (stages 1-3), a stage exactly one window large (stage 4,
# unshifted), three patch mergings.
TINY_ARCH = dict(embed_dims=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8])
IMG, WINDOW = 192, 6


def tiny_official() -> OfficialSwin:
    model = OfficialSwin(
        img_size=IMG,
        embed_dim=TINY_ARCH['embed_dims'],
        depths=TINY_ARCH['depths'],
        num_heads=TINY_ARCH['num_heads'],
        window_size=WINDOW)
    torch.manual_seed(0)
    model.apply(lambda m: torch.nn.init.normal_(m.weight, std=0.1)
                if isinstance(m, torch.nn.Linear) else None)
    return randomize_parameters(model, seed=1).eval()


def tiny_swin(**kwargs) -> BlockFeatureSwin:
    return BlockFeatureSwin(
        arch=TINY_ARCH, img_size=IMG, window_size=WINDOW, **kwargs)


@pytest.fixture(scope='module')
def official_and_converted():
    official = tiny_official()
    model = tiny_swin()
    model.load_state_dict(
        convert_official_swin(official.state_dict()), strict=True)
    return official, model


@pytest.fixture(scope='module')
def official_and_converted_on(official_and_converted, device):
    """The pair on ``device`` (copies on CUDA: the same weights)."""
    if device.type == 'cpu':
        return official_and_converted
    return tuple(copy.deepcopy(m).to(device) for m in official_and_converted)


def test_block_features_equal_official(official_and_converted_on, device):
    official, model = official_and_converted_on
    x = torch.randn(2, 3, IMG, IMG,
                    generator=torch.Generator().manual_seed(2)).to(device)
    expected = official.forward_block_features(x)
    feats = model(x)
    assert isinstance(feats, tuple) and len(feats) == 4
    assert [len(s) for s in feats] == TINY_ARCH['depths']
    for stage, (ours, ref) in enumerate(zip(feats, expected)):
        for block, (a, b) in enumerate(zip(ours, ref)):
            c, h = 32 * 2**stage, IMG // 4 // 2**stage
            assert a.shape == (2, c, h, h), (stage, block)
            assert a.device.type == device.type
            torch.testing.assert_close(
                a, b, **tolerances(device, 1e-4, 1e-4),
                msg=f'stage {stage} block {block}')
    # the reference's features are not trivially equal across blocks
    assert not torch.allclose(feats[2][0], feats[2][1], atol=1e-2)


def test_unconverted_merging_order_differs(official_and_converted):
    """Loading without the neighbour reorder gives other features, so the
    equality above really checks the patch-merging conversion."""
    official, _ = official_and_converted
    sd = convert_official_swin(official.state_dict())
    for key, value in official.state_dict().items():
        if '.downsample.' in key:
            sd[key.replace('layers.', 'stages.')] = value
    model = tiny_swin()
    model.load_state_dict(sd, strict=True)
    x = torch.randn(1, 3, IMG, IMG, generator=torch.Generator().manual_seed(3))
    ref = official.forward_block_features(x)
    assert not torch.allclose(model(x)[1][0], ref[1][0], atol=1e-3)


@pytest.mark.parametrize('size', [(160, 224), (200, 138)])
def test_any_input_size(official_and_converted, size):
    _, model = official_and_converted
    h, w = size
    feats = model(torch.rand(1, 3, h, w))
    for stage, maps in enumerate(feats):
        # patch embedding and every merging round up (mmpretrain pads)
        hs, ws = -(-h // 4), -(-w // 4)
        for _ in range(stage):
            hs, ws = -(-hs // 2), -(-ws // 2)
        assert [tuple(m.shape) for m in maps] == [(1, 32 * 2**stage, hs, ws)
                                                  ] * 2
        assert all(torch.isfinite(m).all() for m in maps)


def test_frozen_by_default():
    model = tiny_swin(drop_path_rate=0.5, drop_rate=0.5)
    assert model.frozen and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert model.train() is model
    assert not any(m.training for m in model.modules())
    x = torch.rand(1, 3, 96, 96, requires_grad=True)
    first, second = model(x), model(x)
    assert not first[3][-1].requires_grad  # ran under no_grad
    # dropout / drop path stay off although train() was called
    torch.testing.assert_close(first[3][-1], second[3][-1])


def test_not_frozen_trains():
    model = tiny_swin(frozen=False)
    model.train()
    assert model.training and all(m.training for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())
    feats = model(torch.rand(1, 3, 96, 96))
    sum(f.sum() for stage in feats for f in stage).backward()
    assert model.patch_embed.projection.weight.grad is not None
    model.eval()
    assert not model.training


def test_attributes_and_state_dict():
    model = MODELS.build(
        dict(
            type='BlockFeatureSwin',
            arch=TINY_ARCH,
            img_size=IMG,
            window_size=WINDOW))
    assert isinstance(model, BlockFeatureSwin)
    assert model.num_blocks == (2, 2, 2, 2)
    assert model.out_channels == (32, 64, 128, 256)
    keys = model.state_dict().keys()
    assert not any('relative_position_index' in k for k in keys)
    assert not any(k.startswith(('norm', 'head')) for k in keys)


def test_loads_mmpretrain_layout_with_index_buffers(official_and_converted):
    """Checkpoints converted by mmpretrain's own tool keep the index
    buffers: they are accepted (and ignored) without complaint."""
    _, model = official_and_converted
    sd = model.state_dict()
    for name, buf in model.named_buffers():
        if name.endswith('relative_position_index'):
            sd[name] = buf.clone()
    other = tiny_swin()
    result = other.load_state_dict(sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_base_arch_shapes_on_meta():
    """Swin-B at 384: 2/2/18/2 blocks, 128..1024 channels, strides 4..32."""
    model = BlockFeatureSwin().to('meta')  # mmpretrain cannot build on meta
    feats = model(torch.empty(1, 3, 384, 384, device='meta'))
    assert model.num_blocks == (2, 2, 18, 2)
    assert model.out_channels == (128, 256, 512, 1024)
    assert [len(s) for s in feats] == [2, 2, 18, 2]
    for stage, stride in enumerate((4, 8, 16, 32)):
        assert {tuple(f.shape)
                for f in feats[stage]} == {(1, model.out_channels[stage],
                                            384 // stride, 384 // stride)}


@pytest.mark.parametrize('kwargs, match', [
    (dict(arch='huge'), 'unknown arch'),
    (dict(arch=dict(embed_dims=32, depths=[2, 2])), 'exactly the keys'),
    (dict(arch=dict(embed_dims=32, depths=[2, 2, 2], num_heads=[1, 2, 4])),
     '4 stages'),
    (dict(arch=dict(embed_dims=30, depths=[2] * 4, num_heads=[4] * 4)),
     'not divisible'),
    (dict(out_indices=(0, 1, 2, 3)), 'out_indices'),
    (dict(attn_impl='sdpa'), 'attn_impl.*no longer exist'),
    (dict(linear_impl='torch'), 'linear_impl.*model.fast_paths=False'),
])
def test_invalid_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BlockFeatureSwin(**kwargs)


def _plain_and_fast(device=torch.device('cpu'), **kwargs):
    """Fast paths off and on, same weights, on ``device``."""
    plain = set_fast_paths(tiny_swin(**kwargs), False)
    randomize_parameters(plain, seed=3)
    fast = tiny_swin(**kwargs)
    fast.load_state_dict(plain.state_dict(), strict=True)
    return plain.to(device), fast.to(device)


def test_module_tree_is_the_same_for_every_setting():
    """The fast-path modules replace mmpretrain's in every model (no state
    added, mmpretrain's keys); the setting only chooses the computation."""
    plain, fast = _plain_and_fast()
    reference = SwinTransformer(
        arch=TINY_ARCH, img_size=IMG, window_size=WINDOW, out_indices=())
    assert list(fast.state_dict()) == [
        k for k in reference.state_dict()
        if not k.endswith('relative_position_index')
    ]
    assert [type(m) for m in fast.modules()
            ] == [type(m) for m in plain.modules()]
    block = fast.stages[0].blocks[0]
    assert isinstance(block.attn, GatherShiftWindowMSA)
    assert isinstance(block.attn.w_msa, SDPAWindowMSA)
    assert isinstance(block.attn.w_msa.qkv, FastLinear)
    assert block.ffn.layers[0][0].activation == 'gelu'
    assert isinstance(block.ffn.layers[0][1], torch.nn.Identity)
    assert isinstance(fast.stages[0].downsample.reduction, FastLinear)


@pytest.mark.parametrize('shape', [(2, 3, IMG, IMG), (1, 3, 200, 260),
                                   (3, 3, 40, 56)])
def test_fast_paths_equal_straightforward_path(shape, device):
    """SDPA window attention + oneDNN linears (fused GELU) give mmpretrain's
    features: shifted windows with masks over several images, padding to
    the window, maps smaller than a window."""
    plain, fast = _plain_and_fast(device)
    x = torch.randn(*shape,
                    generator=torch.Generator().manual_seed(4)).to(device)
    with torch.no_grad():
        expected, feats = plain(x), fast(x)
    for stage, (ours, ref) in enumerate(zip(feats, expected)):
        for block, (a, b) in enumerate(zip(ours, ref)):
            torch.testing.assert_close(
                a, b, **tolerances(device, 1e-5, 1e-5),
                msg=f'stage {stage} block {block}')


def test_fast_paths_train_like_the_straightforward_path(device):
    """Unfrozen, with gradients, the fast configuration falls back to
    differentiable kernels: same outputs and same parameter gradients."""
    plain, fast = _plain_and_fast(device, frozen=False)
    x = torch.randn(2, 3, 96, 96,
                    generator=torch.Generator().manual_seed(5)).to(device)
    grads = []
    for model in (plain, fast):
        model.train()
        feats = model(x)
        loss = sum((f * torch.linspace(-1, 1, f.numel(),
                                       device=device).view_as(f)).sum()
                   for stage in feats for f in stage)
        loss.backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name, expected in grads[0].items():
        # round-off relative to the gradient's scale (it reaches ~1e3 here)
        tol = tolerances(device, 1e-5, 1e-5 * expected.abs().max().item())
        torch.testing.assert_close(grads[1][name], expected, **tol, msg=name)


def test_sdpa_window_attention_keeps_attention_dropout():
    """With attention dropout in training, SDPAWindowMSA draws the dropout
    exactly as mmpretrain's WindowMSA (it uses the parent computation)."""
    torch.manual_seed(0)
    plain = WindowMSA(16, (4, 4), 2, attn_drop=0.5)
    fast = WindowMSA(16, (4, 4), 2, attn_drop=0.5)
    fast.load_state_dict(plain.state_dict())
    use_sdpa_window_attention(fast)
    assert type(fast) is SDPAWindowMSA
    x = torch.randn(6, 16, 16)
    mask = torch.zeros(3, 16, 16)
    mask[1, :8, 8:] = -100.
    outs = []
    for model in (plain, fast):
        torch.manual_seed(1)
        outs.append(model.train()(x, mask))
    torch.testing.assert_close(outs[1], outs[0])
    with torch.no_grad():
        torch.testing.assert_close(
            fast.eval()(x, mask), plain.eval()(x, mask), rtol=1e-5,
            atol=1e-6)


@pytest.mark.parametrize('hw, shift, pad_small_map', [
    ((24, 24), 3, False),  # shifted, 16 windows, with the shift mask
    ((24, 24), 0, False),  # unshifted partition
    ((12, 30), 3, False),  # not square
    ((6, 6), 3, False),  # exactly one window: unshifted, no copy
    ((6, 6), 3, True),  # one window, shifted (pad_small_map)
    ((14, 20), 3, False),  # needs padding: mmpretrain's computation
])
def test_gather_shift_window_msa_equals_mmpretrain(hw, shift, pad_small_map,
                                                   device):
    """The gather-based shift/partition gives exactly mmpretrain's output,
    also in training with gradients, and the shift mask is cached."""
    torch.manual_seed(0)
    plain = ShiftWindowMSA(16, 2, 6, shift, pad_small_map=pad_small_map)
    fast = ShiftWindowMSA(16, 2, 6, shift, pad_small_map=pad_small_map)
    fast.load_state_dict(plain.state_dict())
    use_sdpa_window_attention(fast)
    plain, fast = plain.to(device), fast.to(device)
    assert type(fast) is GatherShiftWindowMSA
    fast.w_msa.fast_paths = False  # only the gather's fast path on
    x = torch.randn(2, hw[0] * hw[1], 16).to(device).requires_grad_()
    outs, grads = [], []
    for model in (plain, fast):
        out = model(x, hw)
        weights = torch.linspace(-1, 1, out.numel(),
                                 device=device).view_as(out)
        (out * weights).sum().backward()
        outs.append(out)
        grads.append(x.grad.clone())
        x.grad = None
    # the same data in the same layout: the same kernels, the same bits
    # (on CUDA too); the gradients' sums may be ordered differently
    assert torch.equal(outs[1], outs[0])
    torch.testing.assert_close(grads[1], grads[0],
                               **tolerances(device, 1e-6, 1e-7))
    with torch.no_grad():
        assert torch.equal(fast(x, hw), plain(x, hw))
