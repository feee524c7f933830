# Copyright (c) dcama_mm contributors. All rights reserved.
"""Tests of the few-shot IoU metric on hand-computed cases."""
import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.logging import MMLogger
from mmengine.structures import PixelData

from mmseg.registry import METRICS
from mmseg.structures import SegDataSample

import dcama_mm  # noqa: F401  (registers FewShotIoUMetric)
from dcama_mm.evaluation import (FewShotIoUMetric, accumulate_class_areas,
                                 bootstrap_std_error, few_shot_iou,
                                 intersect_and_union_fb, summarize_seeds)

# gt: a 2x2 foreground square, two ignored pixels on the bottom row.
GT = np.array([[1, 1, 0, 0],
               [1, 1, 0, 0],
               [0, 0, 0, 0],
               [255, 255, 0, 0]])
# pred: 3 of the 4 foreground pixels, one false positive, and foreground on
# the two ignored pixels (which must not count).
PRED = np.array([[1, 0, 0, 0],
                 [1, 1, 1, 0],
                 [0, 0, 0, 0],
                 [1, 1, 0, 0]])
# 14 valid pixels; fg: I = 3, U = 4 + 4 - 3 = 5; bg: I = 14 - 5 = 9,
# U = 10 + 10 - 9 = 11.
AREAS = [3, 5, 9, 11]

META = dict(
    classes=('cat', 'dog', 'cow', 'bird'), episode_class_ids=[0, 1, 2])


def _sample(pred, gt, class_id, ori_gt=None):
    sample = SegDataSample(metainfo=dict(class_id=class_id))
    sample.pred_sem_seg = PixelData(data=torch.as_tensor(pred)[None].long())
    sample.gt_sem_seg = PixelData(data=torch.as_tensor(gt)[None].long())
    if ori_gt is not None:
        sample.ori_gt_sem_seg = PixelData(
            data=torch.as_tensor(ori_gt)[None].long())
    return sample


def test_intersect_and_union_fb_hand_computed():
    np.testing.assert_array_equal(intersect_and_union_fb(PRED, GT), AREAS)
    # Tensors with a channel dim give the same counts.
    areas = intersect_and_union_fb(
        torch.as_tensor(PRED)[None], torch.as_tensor(GT)[None])
    assert areas.dtype == np.int64
    np.testing.assert_array_equal(areas, AREAS)
    # Without an ignore label the bottom-left pixels count: two more
    # foreground false positives (U_fg 7) and two fewer bg pixels.
    np.testing.assert_array_equal(
        intersect_and_union_fb(PRED, np.where(GT == 255, 0, GT), 255),
        [3, 7, 9, 13])
    # Perfect and empty predictions.
    np.testing.assert_array_equal(
        intersect_and_union_fb(np.where(GT == 255, 0, GT), GT),
        [4, 4, 10, 10])
    np.testing.assert_array_equal(
        intersect_and_union_fb(np.zeros((4, 4)), GT), [0, 4, 10, 14])


def test_intersect_and_union_fb_rejects_bad_shapes():
    with pytest.raises(ValueError, match='same size'):
        intersect_and_union_fb(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match='shape'):
        intersect_and_union_fb(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)))


def test_few_shot_iou_hand_computed():
    episode_classes = [0, 0, 1, 3]
    areas = np.array([AREAS, [1, 3, 4, 6], [0, 2, 8, 10], [7, 7, 7, 7]])
    totals = accumulate_class_areas(episode_classes, areas, [0, 1, 2])
    np.testing.assert_array_equal(
        totals, [[4, 8, 13, 17], [0, 2, 8, 10], [0, 0, 0, 0]])

    stats = few_shot_iou(episode_classes, areas, [0, 1, 2])
    # Class IoUs 4/8, 0/2, 0/max(0, 1): mIoU = 50 / 3.
    np.testing.assert_allclose(stats['class_iou'], [50.0, 0.0, 0.0])
    assert stats['mIoU'] == pytest.approx(50.0 / 3)
    # FB-IoU = (4 / 10 + 21 / 27) / 2; class 3 is outside the fold.
    assert stats['FB-IoU'] == pytest.approx((0.4 + 21 / 27) / 2 * 100)
    np.testing.assert_array_equal(stats['class_episodes'], [2, 1, 0])
    assert stats['num_episodes'] == 3

    with pytest.raises(ValueError, match='class_ids'):
        few_shot_iou(episode_classes, areas, [])
    with pytest.raises(ValueError, match='must match'):
        few_shot_iou([0, 1], areas, [0, 1])


def test_metric_registered_and_prefix():
    metric = METRICS.build(dict(type='FewShotIoUMetric', prefix='val'))
    assert isinstance(metric, FewShotIoUMetric)
    metric.dataset_meta = META
    metric.process([], [_sample(PRED, GT, 0).to_dict()])
    results = metric.evaluate(1)
    assert set(results) == {
        'val/mIoU', 'val/FB-IoU', 'val/num_episodes', 'val/mIoU_se',
        'val/FB-IoU_se'
    }
    # one episode: every bootstrap resample is that episode
    assert results['val/mIoU_se'] == pytest.approx(0.0, abs=1e-9)
    assert results['val/FB-IoU_se'] == pytest.approx(0.0, abs=1e-9)
    assert results['val/mIoU'] == pytest.approx(60.0 / 3)  # (3/5) / 3 class
    assert results['val/FB-IoU'] == pytest.approx((3 / 5 + 9 / 11) / 2 * 100)
    assert results['val/num_episodes'] == 1


def test_metric_evaluate_drops_padding_and_logs_table(tmp_path):
    metric = FewShotIoUMetric()
    metric.dataset_meta = dict(META, seed=3)
    gt_full = np.ones((4, 4), dtype=np.int64)
    samples = [
        _sample(PRED, GT, 0),  # areas [3, 5, 9, 11]
        _sample(gt_full, gt_full, 1),  # perfect: [16, 16, 0, 0]
        _sample(np.zeros((4, 4)), gt_full, 2),  # all missed: [0, 16, 0, 16]
        _sample(gt_full, gt_full, 2),  # sampler padding: must be dropped
    ]
    metric.process([], [s.to_dict() for s in samples[:2]])
    metric.process([], [s.to_dict() for s in samples[2:]])
    logger = MMLogger.get_instance(
        'test_few_shot_iou_metric', log_file=str(tmp_path / 'metric.log'))
    results = metric.evaluate(3)
    assert results['num_episodes'] == 3
    assert results['mIoU'] == pytest.approx((60.0 + 100.0 + 0.0) / 3)
    assert results['FB-IoU'] == pytest.approx(
        ((3 + 16) / (5 + 16 + 16) + 9 / (11 + 16)) / 2 * 100)
    assert metric.results == []  # reset after evaluation
    for handler in logger.handlers:
        handler.flush()
    log = (tmp_path / 'metric.log').read_text()
    assert 'per class results (3 episodes over 3 classes, seed 3)' in log
    for name, iou in (('cat', '60.00'), ('dog', '100.00'), ('cow', '0.00')):
        assert any(name in line and iou in line for line in log.splitlines())
    assert 'bird' not in log


def test_metric_with_evaluator_and_original_size():
    evaluator = Evaluator([FewShotIoUMetric()])
    evaluator.dataset_meta = META
    # Prediction at the original size (6x6) against ori_gt_sem_seg, while
    # gt_sem_seg is at the network size (4x4).
    ori_gt = np.zeros((6, 6), dtype=np.int64)
    ori_gt[:3, :3] = 1
    ori_gt[5] = 255
    pred = np.zeros((6, 6), dtype=np.int64)
    pred[:3, :2] = 1  # 6 of the 9 foreground pixels
    pred[5] = 1  # ignored row
    evaluator.process([_sample(pred, GT, 1, ori_gt=ori_gt)])
    evaluator.process([_sample(PRED, GT, 1)])
    results = evaluator.evaluate(2)
    # class 1: I_fg = 6 + 3, U_fg = 9 + 5; I_bg = (30 - 9) + 9,
    # U_bg = (30 - 6) + 11.
    assert results['mIoU'] == pytest.approx(9 / 14 * 100 / 3)
    assert results['FB-IoU'] == pytest.approx((9 / 14 + 30 / 35) / 2 * 100)
    assert results['num_episodes'] == 2


def test_metric_rejects_bad_samples():
    metric = FewShotIoUMetric()
    sample = _sample(PRED, GT, 0).to_dict()
    del sample['class_id']
    with pytest.raises(ValueError, match='class_id'):
        metric.process([], [sample])
    sample = _sample(np.zeros((6, 6)), GT, 0).to_dict()
    with pytest.raises(ValueError, match='ori_gt_sem_seg'):
        metric.process([], [sample])


def test_bootstrap_on_a_hand_checkable_case():
    # One class, two episodes: I/U = 1/2 and 1/1. A resample holds episode
    # 1 twice (p = 1/4, IoU 1/2), episode 2 twice (p = 1/4, IoU 1) or both
    # (p = 1/2, IoU 2/3): mean 70.83 %, standard deviation
    # sqrt(1/4 50^2 + 1/4 100^2 + 1/2 66.67^2 - 70.83^2) = 18.16 points.
    areas = [[1, 2, 5, 6], [1, 1, 6, 6]]
    exact = np.sqrt(0.25 * 50**2 + 0.25 * 100**2 + 0.5 * (200 / 3)**2 -
                    (0.25 * 50 + 0.25 * 100 + 0.5 * 200 / 3)**2)
    assert exact == pytest.approx(18.162, abs=1e-3)
    se = bootstrap_std_error([0, 0], areas, [0], num_resamples=20000)
    assert se['mIoU'] == pytest.approx(exact, rel=0.03)
    # the same seed gives the same figure; identical episodes give 0
    assert bootstrap_std_error([0, 0], areas, [0]) == bootstrap_std_error(
        [0, 0], areas, [0])
    assert bootstrap_std_error([0, 1] * 5, [AREAS] * 10,
                               [0, 1])['FB-IoU'] == pytest.approx(0.0,
                                                                  abs=1e-9)
    with pytest.raises(ValueError, match='num_resamples'):
        bootstrap_std_error([0], [AREAS], [0], num_resamples=1)


def test_bootstrap_equals_a_plain_loop():
    rng = np.random.default_rng(3)
    classes = rng.integers(3, size=40)
    inter = rng.integers(0, 50, size=40)
    areas = np.stack([inter, inter + rng.integers(0, 50, size=40),
                      100 - inter, 150 - inter], axis=1)
    got = bootstrap_std_error(classes, areas, [0, 1, 2, 5],
                              num_resamples=50, seed=4, chunk=50)
    picks = np.random.default_rng(4).integers(40, size=(50, 40))
    runs = [few_shot_iou(classes[p], areas[p], [0, 1, 2, 5]) for p in picks]
    assert got['mIoU'] == pytest.approx(
        np.std([r['mIoU'] for r in runs], ddof=1))
    assert got['FB-IoU'] == pytest.approx(
        np.std([r['FB-IoU'] for r in runs], ddof=1))
    # chunks change nothing but memory
    assert bootstrap_std_error(classes, areas, [0, 1, 2, 5],
                               num_resamples=50, seed=4, chunk=7) == got


def test_metric_logs_the_standard_error(tmp_path):
    metric = FewShotIoUMetric(bootstrap_resamples=200)
    metric.dataset_meta = META
    gt_full = np.ones((4, 4), dtype=np.int64)
    metric.process([], [_sample(PRED, GT, 0).to_dict(),
                        _sample(gt_full, gt_full, 0).to_dict(),
                        _sample(np.zeros((4, 4)), gt_full, 1).to_dict()])
    logger = MMLogger.get_instance(
        'test_bootstrap_log', log_file=str(tmp_path / 'metric.log'))
    results = metric.evaluate(3)
    assert results['mIoU_se'] > 0
    for handler in logger.handlers:
        handler.flush()
    log = (tmp_path / 'metric.log').read_text()
    assert (f"mIoU {results['mIoU']:.2f} +- {results['mIoU_se']:.2f}, "
            'FB-IoU') in log
    off = FewShotIoUMetric(bootstrap_resamples=0)
    off.dataset_meta = META
    off.process([], [_sample(PRED, GT, 0).to_dict()])
    assert 'mIoU_se' not in off.evaluate(1)
    with pytest.raises(ValueError, match='bootstrap_resamples'):
        FewShotIoUMetric(bootstrap_resamples=1)


def test_seed_statistics():
    stats = summarize_seeds([60.0, 62.0, 64.0])
    assert stats['mean'] == 62.0 and stats['std'] == pytest.approx(2.0)
    assert stats['se'] == pytest.approx(2 / np.sqrt(3))
    # t(0.975, 2) = 4.3027
    assert stats['ci95'] == pytest.approx(4.3027 * 2 / np.sqrt(3), rel=1e-4)
    assert np.isnan(summarize_seeds([1.0])['std'])
    with pytest.raises(ValueError, match='no values'):
        summarize_seeds([])


def test_seed_table_interval_stays_in_the_figures_range():
    """2 seeds: t(0.975, 1) = 12.71 makes the interval of the mean wide;
    shown, it is cut to 0..100 (an IoU in %), said in the table; the JSON's
    ``_ci95`` keeps the half-width."""
    from dcama_mm.evaluation import seed_statistics as seed_stats
    format_seed_table = seed_stats.format_seed_table
    summarize_seed_metrics = seed_stats.summarize_seed_metrics
    per_seed = [{'mIoU': 90.0, 'FB-IoU': 95.0}, {'mIoU': 96.0, 'FB-IoU': 99.0}]
    summary = summarize_seed_metrics(per_seed)
    assert summary['mIoU_ci95'] == pytest.approx(12.7062 * 3.0, rel=1e-4)
    table = format_seed_table([0, 1], per_seed, summary)
    last = table.splitlines()[-2]
    assert last.split()[1:] == ['54.88..100.00', '71.59..100.00'], table
    assert table.splitlines()[-1] == (
        '(95% intervals cut to 0..100, the range of the figures)')
    same = per_seed[:1] * 2  # no spread: an interval of width 0
    narrow = format_seed_table([0, 1], same, summarize_seed_metrics(same))
    assert narrow.splitlines()[-1].split()[1:] == ['90.00..90.00',
                                                   '95.00..95.00']
