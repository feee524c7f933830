"""N-way inference: several classes at once (FewShotInferencer, infer.py)."""
import os
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from dcama_mm.apis import FewShotInferencer
from dcama_mm.apis.n_way import label_map
from tests.test_apis.inferencer_helpers import NET_SIZE
from tests.test_tools.test_infer import infer_tool, load_tool, setup

__all__ = ['infer_tool', 'load_tool', 'setup']


def _inverted_masks(tmp_path, masks):
    """Masks of a second 'class': the complement of the first class's."""
    out = []
    for k, path in enumerate(masks):
        mask = np.asarray(Image.open(path))
        inverted = str(tmp_path / f'inverted{k}.png')
        Image.fromarray(np.where(mask >= 128, 0, 255).astype(
            np.uint8)).save(inverted)
        out.append(inverted)
    return out


def test_label_rule():
    probs = torch.tensor([[[0.9, 0.4, 0.6, 0.5]], [[0.2, 0.45, 0.7, 0.5]]])
    np.testing.assert_array_equal(
        label_map(probs).numpy(), [[1, 0, 2, 0]])  # 0.5 does not exceed
    np.testing.assert_array_equal(
        label_map(probs, fg_threshold=0.3).numpy(), [[1, 2, 2, 1]])


def test_label_maps_follow_the_rule_on_one_way_probabilities(
        tiny_model, episode_dir, tmp_path):
    """The N-way label map equals, pixel for pixel, the rule applied to the
    1-way probabilities of each class computed separately."""
    _, support_imgs, support_masks, queries = episode_dir
    sets = {
        'blob': (support_imgs[:2], support_masks[:2]),
        'rest': (support_imgs[2:4], _inverted_masks(tmp_path,
                                                    support_masks[2:4])),
    }
    inferencer = FewShotInferencer(tiny_model, img_size=NET_SIZE)
    one_way = {
        name: inferencer(queries, support_imgs=imgs, support_masks=masks,
                         return_probs=True, batch_size=2)['predictions']
        for name, (imgs, masks) in sets.items()
    }
    for threshold in (0.5, 0.3):
        n_way = inferencer(
            queries, support_sets=sets, fg_threshold=threshold,
            batch_size=2)['predictions']
        assert inferencer.classes == ['blob', 'rest']
        labels_seen = set()
        for i, pred in enumerate(n_way):
            assert pred['classes'] == ['blob', 'rest']
            probs = np.stack(
                [one_way[name][i]['fg_prob'] for name in sets])
            for n, name in enumerate(sets):
                np.testing.assert_allclose(
                    pred['fg_probs'][name], probs[n], atol=1e-6)
            best = probs.max(axis=0)
            expected = np.where(best > threshold, probs.argmax(axis=0) + 1,
                                0)
            near_tie = np.abs(best - threshold) < 1e-5
            assert pred['label_map'].shape == probs.shape[1:]
            np.testing.assert_array_equal(pred['label_map'][~near_tie],
                                          expected[~near_tie])
            labels_seen |= set(np.unique(pred['label_map']).tolist())
        assert {1, 2} <= labels_seen  # both classes appear: not trivial


def test_backbone_runs_once_per_query_for_all_classes(tiny_model,
                                                      episode_dir):
    _, support_imgs, support_masks, queries = episode_dir
    inferencer = FewShotInferencer(tiny_model, img_size=NET_SIZE)
    inferencer.set_support_sets({
        f'class{n}': (support_imgs[n:n + 1], support_masks[n:n + 1])
        for n in range(3)
    })
    images = []
    handle = tiny_model.backbone.register_forward_pre_hook(
        lambda module, args: images.append(args[0].shape[0]))
    try:
        result = inferencer(queries, batch_size=3)
    finally:
        handle.remove()
    assert sum(images) == len(queries)  # 3 queries, 3 classes: 3 images
    assert len(result['predictions']) == len(queries)


def test_bad_support_sets(tiny_model, episode_dir):
    _, support_imgs, support_masks, queries = episode_dir
    inferencer = FewShotInferencer(tiny_model, img_size=NET_SIZE)
    with pytest.raises(ValueError, match='empty'):
        inferencer(queries[0], support_sets={})
    with pytest.raises(ValueError, match="Class 'b'.*no mask"):
        inferencer(queries[0], support_sets={
            'a': (support_imgs[:1], support_masks[:1]),
            'b': (support_imgs[:2], support_masks[:1])})
    with pytest.raises(ValueError, match='not both'):
        inferencer(queries[0], support_imgs=support_imgs[:1],
                   support_masks=support_masks[:1],
                   support_sets={'a': (support_imgs[:1],
                                       support_masks[:1])})


def test_cli_several_classes(infer_tool, setup, tmp_path):
    """--support CLASS:IMAGE:MASK: label PNGs with a palette, overlays with
    a legend, the inferencer's label maps."""
    inverted = _inverted_masks(tmp_path, setup['masks'])
    out = str(tmp_path / 'out')
    args = [setup['cfg'], setup['ckpt'],
            '--support', f"blob:{setup['supports'][0]}:{setup['masks'][0]}",
            '--support', f"blob:{setup['supports'][1]}:{setup['masks'][1]}",
            '--support', f"rest:{setup['supports'][0]}:{inverted[0]}",
            '--query', setup['query_dir'], '--out', out,
            '--img-size', str(NET_SIZE), '--device', 'cpu']
    assert infer_tool.main(args) == 0
    expected = FewShotInferencer(setup['model'], img_size=NET_SIZE)(
        setup['queries'],
        support_sets={
            'blob': (setup['supports'][:2], setup['masks'][:2]),
            'rest': (setup['supports'][:1], inverted[:1]),
        })['predictions']
    for query, pred in zip(setup['queries'], expected):
        name = osp.basename(query)
        saved = Image.open(osp.join(out, 'pred', name + '.png'))
        assert saved.mode == 'P'
        np.testing.assert_array_equal(np.asarray(saved), pred['label_map'])
        palette = saved.getpalette()[:9]
        assert palette[:3] == [0, 0, 0] and palette[3:6] != palette[6:9]
        vis = np.asarray(Image.open(osp.join(out, 'vis', name + '.jpg')))
        # the legend band above the query
        assert vis.shape[0] > pred['label_map'].shape[0]
    assert sorted(os.listdir(osp.join(out, 'pred'))) == [
        'query0.png.png', 'query1.png.png', 'query2.png.png']
    with pytest.raises(ValueError, match='not both'):
        infer_tool.parse_supports(['a.jpg:a.png', 'cat:b.jpg:b.png'])


@pytest.mark.parametrize('threshold', [1.0, 50, -0.1, True])
def test_fg_threshold_outside_a_probability_is_refused(
        inferencer, episode_dir, threshold):
    """A foreground probability never exceeds 1: ``fg_threshold=50`` (a
    percentage) used to label every pixel background, and a negative one
    every pixel a class, with no word."""
    _, support_imgs, support_masks, queries = episode_dir
    sets = {'blob': (support_imgs[:1], support_masks[:1])}
    with pytest.raises(ValueError, match=r'fg_threshold must be a '
                       r'probability in \[0, 1\)'):
        inferencer(queries[0], support_sets=sets, fg_threshold=threshold)


def test_fg_threshold_of_a_one_way_call_is_refused(inferencer, episode_dir):
    """A 1-way mask is the argmax of its two logits: ``fg_threshold`` was
    silently ignored there (the mask stayed the 0.5 cut)."""
    _, support_imgs, support_masks, queries = episode_dir
    with pytest.raises(ValueError, match=r'fg_threshold applies to N-way.*'
                       'return_probs=True'):
        inferencer(queries[0], support_imgs=support_imgs[:1],
                   support_masks=support_masks[:1], fg_threshold=0.3)
    # the default is the 1-way rule and passes
    mask = inferencer(queries[0], support_imgs=support_imgs[:1],
                      support_masks=support_masks[:1],
                      fg_threshold=0.5)['predictions']
    assert mask.dtype == np.uint8 and mask.shape == Image.open(
        queries[0]).size[::-1]


def test_fg_threshold_as_a_numpy_scalar(inferencer, episode_dir):
    """``np.float32(0.25)`` (a slider's or an array's value) is the
    probability 0.25: it was refused as 'no probability in [0, 1)'."""
    _, support_imgs, support_masks, queries = episode_dir
    sets = {'blob': (support_imgs[:1], support_masks[:1]),
            'other': (support_imgs[1:2], support_masks[1:2])}
    as_float = inferencer(queries[0], support_sets=sets,
                          fg_threshold=0.25)['predictions']
    as_numpy = inferencer(queries[0], support_sets=sets,
                          fg_threshold=np.float32(0.25))['predictions']
    np.testing.assert_array_equal(as_numpy['label_map'],
                                  as_float['label_map'])
    # the threshold was applied: a pixel is labelled iff its best
    # foreground probability exceeds 0.25
    best = np.stack([as_float['fg_probs'][name] for name in sets]).max(0)
    far = np.abs(best - 0.25) > 1e-5
    np.testing.assert_array_equal((as_numpy['label_map'] > 0)[far],
                                  (best > 0.25)[far])
