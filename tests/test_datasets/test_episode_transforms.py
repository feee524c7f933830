"""Tests of LoadEpisode, ResizeEpisode, PackFewShotInputs and
EpisodeSampler."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from dcama_mm.datasets import EpisodeSampler, ResizeEpisode
from dcama_mm.datasets.synthetic import class_texture


def _episode(rng, sizes=((30, 41), (50, 37))):
    imgs = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
    masks = [rng.choice(np.array([0, 1, 255], np.uint8), (h, w))
             for h, w in sizes]
    return dict(img=imgs[0], gt_seg_map=masks[0], support_imgs=imgs[1:],
                support_masks=masks[1:])


def test_resize_matches_reference_preprocessing():
    rng = np.random.default_rng(0)
    results = _episode(rng)
    before = {k: (v.copy() if isinstance(v, np.ndarray) else list(v))
              for k, v in results.items()}
    out = ResizeEpisode(scale=(24, 20))(results)
    # the caller's dict is unchanged
    assert np.array_equal(results['img'], before['img'])
    assert results['support_imgs'][0] is before['support_imgs'][0]
    assert out['img'].shape == (20, 24, 3) and out['img_shape'] == (20, 24)
    # images: PIL bilinear, as torchvision's Resize on PIL images
    ref = np.asarray(
        Image.fromarray(before['support_imgs'][0][..., ::-1]).resize(
            (24, 20), Image.BILINEAR))[..., ::-1]
    np.testing.assert_array_equal(out['support_imgs'][0], ref)
    # masks: nearest, as torch's F.interpolate(mode='nearest')
    for key, src in (('gt_seg_map', before['gt_seg_map']),
                     ('support_masks', before['support_masks'][0])):
        got = out[key] if key == 'gt_seg_map' else out[key][0]
        ref = F.interpolate(
            torch.from_numpy(src)[None, None].float(), (20, 24),
            mode='nearest')[0, 0].to(torch.uint8).numpy()
        np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(out['ori_gt_seg_map'], before['gt_seg_map'])
    assert 'ori_gt_seg_map' not in ResizeEpisode(
        scale=8, keep_ori_seg=False)(results)
    with pytest.raises(ValueError, match='scale'):
        ResizeEpisode(scale=(0, 3))


def test_pack_ignores_and_rejects_mixed_sizes():
    from dcama_mm.datasets import PackFewShotInputs
    rng = np.random.default_rng(1)
    results = ResizeEpisode(scale=16)(_episode(rng))
    out = PackFewShotInputs()(dict(results, class_id=3, shots=1))
    masks = out['data_samples'].support_masks
    np.testing.assert_array_equal(masks[0].numpy(),
                                  results['support_masks'][0] == 1)
    gt = out['data_samples'].gt_sem_seg.data[0].numpy()
    np.testing.assert_array_equal(gt, results['gt_seg_map'])
    assert set(np.unique(gt)) == {0, 1, 255}
    assert torch.equal(out['inputs'],
                       torch.from_numpy(results['img']).permute(2, 0, 1))
    with pytest.raises(ValueError, match='ResizeEpisode'):
        PackFewShotInputs()(_episode(rng))


class _Sized:

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


@pytest.mark.parametrize('n,world', [(7, 2), (10, 3), (4, 4), (3, 5)])
def test_sampler_splits_like_default_sampler(n, world):
    shares = []
    for rank in range(world):
        shares.append(_rank_indices(n, rank, world))
    lens = {len(x) for x in shares}
    assert len(lens) == 1
    # interleaving the ranks restores 0..n-1, then the padding
    merged = [x for group in zip(*shares) for x in group]
    assert merged[:n] == list(range(n))
    assert set(merged) == set(range(n))


def _rank_indices(n, rank, world, train=False, epoch=0):
    """Indices of one rank (the rank set as ``get_dist_info`` returns it;
    test_coco20i.py runs 2 real gloo processes)."""
    # EpisodeSampler is a DefaultSampler: rank and world size are read
    # where mmengine's sampler module looks them up
    from mmengine.dataset import sampler
    orig = sampler.get_dist_info
    sampler.get_dist_info = lambda: (rank, world)
    try:
        s = EpisodeSampler(_Sized(n), train=train)
    finally:
        sampler.get_dist_info = orig
    s.set_epoch(epoch)
    assert len(s) == len(list(s))
    return list(s)


def test_sampler_epochs():
    assert _rank_indices(5, 0, 1, train=True, epoch=0) == [0, 1, 2, 3, 4]
    assert _rank_indices(5, 0, 1, train=True, epoch=2) == list(range(10, 15))
    assert _rank_indices(5, 1, 2, train=True, epoch=1) == [6, 8, 5]
    assert _rank_indices(5, 0, 1, train=False, epoch=3) == [0, 1, 2, 3, 4]


def test_class_textures_are_consistent_and_distinct():
    rng = np.random.default_rng(0)
    feats = {}
    for c in range(12):
        feats[c] = [class_texture(c, 32, 32, rng).reshape(-1, 3).mean(0)
                    for _ in range(3)]
    within = np.mean([np.abs(f[0] - f[1]).mean() for f in feats.values()])
    between = np.mean([np.abs(feats[a][0] - feats[b][0]).mean()
                       for a in range(12) for b in range(a + 1, 12)])
    assert between > 3 * within
