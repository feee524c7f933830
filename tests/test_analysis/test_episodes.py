"""dcama_mm.analysis.episodes: random episodes, a function of the seed."""
import torch

from dcama_mm.analysis import make_episodes


def test_shapes_masks_and_samples():
    state = torch.random.get_rng_state()
    e = make_episodes(batch=2, shots=3, size=(40, 48), seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert e['query_imgs'].shape == (2, 3, 40, 48)
    assert e['support_imgs'].shape == (2, 3, 3, 40, 48)
    assert e['support_masks'].shape == (2, 3, 40, 48)
    assert e['query_masks'].shape == (2, 40, 48)
    assert e['query_masks'].dtype == torch.long
    # a rectangle of half the height and width per mask
    assert set(e['support_masks'].unique().tolist()) == {0.0, 1.0}
    assert (e['support_masks'].sum((-2, -1)) == 20 * 24).all()
    samples = e['data_samples']
    assert len(samples) == 2
    assert torch.equal(samples[1].support_imgs, e['support_imgs'][1])
    assert torch.equal(samples[1].support_masks, e['support_masks'][1])
    assert torch.equal(samples[0].gt_sem_seg.data[0], e['query_masks'][0])


def test_same_seed_same_episodes():
    a, b = make_episodes(1, 1, (32, 32)), make_episodes(1, 1, (32, 32))
    c = make_episodes(1, 1, (32, 32), seed=5)
    assert torch.equal(a['support_imgs'], b['support_imgs'])
    assert not torch.equal(a['support_imgs'], c['support_imgs'])
