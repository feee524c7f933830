"""Tests of FewShotInferencer on a tiny random DCAMA and small tmp images:
it computes what the model computes (supports encoded once, batched
queries, the original size) and what tools/test.py evaluates.

Its input kinds and bad input: test_inferencer_inputs.py; the files it
writes: test_inferencer_outputs.py; the shared helpers and fixtures:
inferencer_helpers.py and conftest.py."""
import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmcv.transforms import BaseTransform
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from PIL import Image

from dcama_mm.apis import FewShotInferencer
from dcama_mm.datasets.synthetic import make_synthetic_fss1000
from mmseg.registry import DATASETS, TRANSFORMS
from tests.device_helpers import tolerances
from tests.test_apis.inferencer_helpers import (CONFIG_TEXT, NET_SIZE,
                                                TINY_MODEL,
                                                assert_masks_match,
                                                reference_inputs, to_original)


@pytest.fixture(scope='module')
def device_model(tiny_model, device) -> nn.Module:
    """``tiny_model`` on ``device`` (a copy on CUDA: the same weights)."""
    if device.type == 'cpu':
        return tiny_model
    return copy.deepcopy(tiny_model).to(device)


@pytest.fixture(scope='module')
def device_inferencer(device_model, device) -> FewShotInferencer:
    """An inferencer of ``device_model`` on ``device``."""
    return FewShotInferencer(
        device_model, device=str(device), img_size=NET_SIZE)


@pytest.mark.parametrize('shots', [1, 5])
def test_masks_equal_predict_logits_argmax_at_original_size(
        device_inferencer, device_model, device, episode_dir, shots):
    inferencer, tiny_model = device_inferencer, device_model
    assert inferencer.device.type == device.type
    _, support_imgs, support_masks, queries = episode_dir
    result = inferencer(
        queries,
        support_imgs=support_imgs[:shots],
        support_masks=support_masks[:shots],
        batch_size=len(queries),
        return_probs=True)
    assert inferencer.num_shots == shots
    preds = result['predictions']
    assert len(preds) == len(queries)
    assert result['img_paths'] == queries
    assert result['failed'] == []

    episodes = [[
        t.to(device)
        for t in reference_inputs(q, support_imgs[:shots],
                                  support_masks[:shots])
    ] for q in queries]
    with torch.no_grad():
        # the same computation: supports encoded once, queries batched
        encoded = tiny_model.encode_supports(episodes[0][1], episodes[0][2])
        batched = tiny_model.predict_logits(
            torch.stack([e[0] for e in episodes]), supports=encoded)
        # one plain episode per query
        plain = [
            tiny_model.predict_logits(q[None], s[None], m[None])[0]
            for q, s, m in episodes
        ]
    fg_fractions = []
    for i, (query, pred) in enumerate(zip(queries, preds)):
        ori_shape = np.asarray(Image.open(query)).shape[:2]
        # non-square and odd-sized queries come back at their own size
        assert pred['sem_seg'].shape == ori_shape
        assert pred['sem_seg'].dtype == np.uint8
        assert pred['fg_prob'].shape == ori_shape
        assert pred['fg_prob'].dtype == np.float32
        exp_mask, exp_prob = to_original(batched[i], query)
        if device.type == 'cpu':
            np.testing.assert_array_equal(pred['sem_seg'], exp_mask)
        else:  # the final resize ran on the GPU there, here on the CPU
            assert_masks_match(pred['sem_seg'], exp_mask, exp_prob)
        np.testing.assert_allclose(
            pred['fg_prob'], exp_prob,
            atol=tolerances(device, 0, 1e-6)['atol'])
        plain_mask, plain_prob = to_original(plain[i], query)
        np.testing.assert_allclose(
            pred['fg_prob'], plain_prob,
            atol=tolerances(device, 0, 1e-5)['atol'])
        assert_masks_match(pred['sem_seg'], plain_mask, plain_prob)
        fg_fractions.append(pred['sem_seg'].mean())
    # the comparison is not trivial: masks hold both classes
    assert 0.05 < np.mean(fg_fractions) < 0.95


def test_reuse_gives_identical_results(device_inferencer, device,
                                       episode_dir):
    inferencer = device_inferencer
    _, support_imgs, support_masks, queries = episode_dir
    inferencer.set_supports(support_imgs[:3], support_masks[:3])
    reused = inferencer(queries, batch_size=4, return_probs=True)
    recomputed = inferencer(
        queries, batch_size=4, return_probs=True, reuse_supports=False)
    one_by_one = inferencer(
        queries, batch_size=1, return_probs=True, reuse_supports=True)
    atol = tolerances(device, 0, 1e-5)['atol']
    for a, b, c in zip(reused['predictions'], recomputed['predictions'],
                       one_by_one['predictions']):
        np.testing.assert_allclose(a['fg_prob'], b['fg_prob'], atol=atol)
        np.testing.assert_allclose(a['fg_prob'], c['fg_prob'], atol=atol)
        assert_masks_match(a['sem_seg'], b['sem_seg'], a['fg_prob'])
        assert_masks_match(a['sem_seg'], c['sem_seg'], a['fg_prob'])


def test_built_from_config_and_checkpoint(tiny_model, episode_dir, tmp_path):
    _, support_imgs, support_masks, queries = episode_dir
    cfg_file = tmp_path / 'tiny_dcama.py'
    cfg_file.write_text(CONFIG_TEXT)
    ckpt = str(tmp_path / 'tiny.pth')
    torch.save(dict(state_dict=tiny_model.state_dict(), meta=dict()), ckpt)
    from_files = FewShotInferencer(
        str(cfg_file), ckpt, device='cpu', img_size=NET_SIZE)
    # the default device (cuda where available) takes the model there: a
    # copy, so that the shared CPU model stays where it is
    in_memory = FewShotInferencer(
        copy.deepcopy(tiny_model), img_size=NET_SIZE)
    default = 'cuda' if torch.cuda.is_available() else 'cpu'
    assert in_memory.device.type == default
    a = from_files(queries[:2], support_imgs=support_imgs[:1],
                   support_masks=support_masks[:1], return_probs=True)
    b = in_memory(queries[:2], support_imgs=support_imgs[:1],
                  support_masks=support_masks[:1], return_probs=True)
    atol = tolerances(in_memory.device, 0, 1e-6)['atol']
    for pa, pb in zip(a['predictions'], b['predictions']):
        if default == 'cpu':
            np.testing.assert_array_equal(pa['sem_seg'], pb['sem_seg'])
        else:  # CPU against CUDA: equal but for ties within round-off
            assert_masks_match(pb['sem_seg'], pa['sem_seg'], pa['fg_prob'])
        np.testing.assert_allclose(pa['fg_prob'], pb['fg_prob'], atol=atol)


def test_network_size_from_config_else_384(tiny_model):
    cfg = Config(
        dict(
            default_scope='mmseg',
            model=TINY_MODEL,
            test_dataloader=dict(
                dataset=dict(pipeline=[
                    dict(type='LoadEpisode'),
                    dict(type='ResizeEpisode', scale=(48, 32)),  # (w, h)
                    dict(type='PackFewShotInputs'),
                ]))))
    assert FewShotInferencer(cfg, device='cpu').img_size == (32, 48)
    # device='cpu': the default (cuda where available) would move the
    # shared model
    assert FewShotInferencer(tiny_model, device='cpu').img_size == (384, 384)
    assert FewShotInferencer(
        tiny_model, device='cpu', img_size=(32, 48)).img_size == (32, 48)
    with pytest.raises(ValueError, match='img_size'):
        FewShotInferencer(tiny_model, device='cpu', img_size=(0, 48))


# ----------------------------------------------------------------------
# one episode path: the inferencer computes what tools/test.py computes
# ----------------------------------------------------------------------
@TRANSFORMS.register_module(force=True)
class _InvertQueryForTest(BaseTransform):
    """A test-only step: the query's colours inverted."""

    def transform(self, results: dict) -> dict:
        results = dict(results)
        results['img'] = 255 - results['img']
        return results


def _fss_config(root: str, extra_steps=()) -> Config:
    pipeline = [dict(type='LoadEpisode'), *extra_steps,
                dict(type='ResizeEpisode', scale=(NET_SIZE, NET_SIZE)),
                dict(type='PackFewShotInputs')]
    return Config(
        dict(
            default_scope='mmseg',
            model=TINY_MODEL,
            test_dataloader=dict(
                dataset=dict(
                    type='FSS1000Dataset',
                    data_root=root,
                    split='test',
                    shots=2,
                    pipeline=pipeline))))


@pytest.fixture(scope='module')
def fss_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('fss'))
    make_synthetic_fss1000(
        root, num_classes=(1, 1, 2), images_per_class=4,
        size_range=(50, 90), seed=3)
    return root


@pytest.mark.parametrize('resize_to_original', [False, True])
def test_same_masks_as_the_test_tool_path(tiny_model, fss_root,
                                          resize_to_original, device):
    """An FSS-1000 test episode through the dataset, its pipeline, the
    collate function and ``model.test_step`` (what ``tools/test.py`` runs)
    and through the inferencer given the same files: the same masks, at
    the network size and at the original size."""
    cfg = _fss_config(fss_root)
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    model = copy.deepcopy(tiny_model)
    model.cfg = cfg
    inferencer = FewShotInferencer(model, device=str(device))
    model.test_cfg = dict(resize_to_original=resize_to_original)
    fg = []
    for index in range(4):
        info = dataset.get_episode_info(index)
        with torch.no_grad():
            expected = model.test_step(pseudo_collate([dataset[index]]))[0]
        got = inferencer(
            info['img_path'],
            support_imgs=info['support_img_paths'],
            support_masks=info['support_seg_map_paths'],
            resize_to_original=resize_to_original,
            return_probs=True)['predictions']
        exp_mask = expected.pred_sem_seg.data[0].cpu().numpy().astype(
            np.uint8)
        exp_prob = expected.seg_logits.data.softmax(0)[1].cpu().numpy()
        size = expected.ori_shape if resize_to_original else (NET_SIZE, ) * 2
        assert got['sem_seg'].shape == tuple(size)
        np.testing.assert_allclose(got['fg_prob'], exp_prob,
                                   atol=tolerances(device, 0, 1e-5)['atol'])
        assert_masks_match(got['sem_seg'], exp_mask, exp_prob)
        fg.append(exp_mask.mean())
    assert 0.02 < np.mean(fg) < 0.98  # not a trivial comparison


def test_a_transform_added_to_the_test_pipeline_is_applied(
        tiny_model, fss_root):
    """A step added to test_pipeline changes what the inferencer computes,
    exactly as it changes the evaluated episode."""
    plain_cfg = _fss_config(fss_root)
    inverted_cfg = _fss_config(
        fss_root, extra_steps=[dict(type='_InvertQueryForTest')])
    dataset = DATASETS.build(inverted_cfg.test_dataloader.dataset)
    info = dataset.get_episode_info(1)
    results = {}
    for name, cfg in (('plain', plain_cfg), ('inverted', inverted_cfg)):
        model = copy.deepcopy(tiny_model)
        model.cfg = cfg
        results[name] = FewShotInferencer(model, device='cpu')(
            info['img_path'],
            support_imgs=info['support_img_paths'],
            support_masks=info['support_seg_map_paths'],
            return_probs=True)['predictions']
    assert np.abs(results['plain']['fg_prob'] -
                  results['inverted']['fg_prob']).max() > 1e-3
    # the same as the evaluated episode with that pipeline (the step
    # touches the query only: the support set is unchanged)
    model = copy.deepcopy(tiny_model)
    model.test_cfg = dict(resize_to_original=True)
    with torch.no_grad():
        expected = model.test_step(pseudo_collate([dataset[1]]))[0]
    exp_prob = expected.seg_logits.data.softmax(0)[1].numpy()
    np.testing.assert_allclose(results['inverted']['fg_prob'], exp_prob,
                               atol=1e-5)


def test_the_split_module_keeps_its_names():
    """What dcama_mm.apis.few_shot_inferencer offered before it was split
    into one_way, query_loop and inferencer_blocks is still there."""
    from dcama_mm.apis import few_shot_inferencer, init_model
    from dcama_mm.apis.support_set import load_support_set
    names = ('FewShotInferencer', 'ImageType', 'InferenceResults',
             'InputsType', 'LabelsType', 'NWayInferenceMixin', 'Query',
             'SupportSet', 'SupportSpec', 'build_drawing_visualizer',
             'check_amp', 'collect_queries', 'config_of', 'init_model',
             'is_single', 'load_support_set', 'query_batches',
             'resize_option', 'set_amp', 'split_test_pipeline')
    assert [n for n in names if not hasattr(few_shot_inferencer, n)] == []
    assert few_shot_inferencer.init_model is init_model
    assert few_shot_inferencer.load_support_set is load_support_set
    assert few_shot_inferencer.FewShotInferencer is FewShotInferencer
