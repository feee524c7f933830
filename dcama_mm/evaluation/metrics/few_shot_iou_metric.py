# Copyright (c) dcama_mm contributors. All rights reserved.
"""Few-shot segmentation IoU: mIoU and FB-IoU over a fold's classes.

The arithmetic lives in pure functions (:mod:`.few_shot_iou`:
:func:`intersect_and_union_fb`, :func:`accumulate_class_areas`,
:func:`few_shot_iou`, :func:`bootstrap_std_error`) so that it can be
tested and reused without a runner; :class:`FewShotIoUMetric` wraps them in
mmengine's :class:`~mmengine.evaluator.BaseMetric` protocol.
"""
import logging
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmengine.structures import BaseDataElement
from prettytable import PrettyTable

from mmseg.registry import METRICS

from .few_shot_iou import (AREA_KEYS, ArrayLike, accumulate_class_areas,
                           bootstrap_std_error, few_shot_iou,
                           intersect_and_union_fb)
from ...utils.checks import strict_arguments

__all__ = [
    'AREA_KEYS', 'FewShotIoUMetric', 'accumulate_class_areas',
    'bootstrap_std_error', 'few_shot_iou', 'intersect_and_union_fb'
]


@METRICS.register_module()
@strict_arguments
class FewShotIoUMetric(BaseMetric):
    """Few-shot segmentation metric: mIoU and FB-IoU over a fold's classes.

    Each episode's prediction is compared with its query mask (label 255 is
    ignored) and reduced to four pixel counts (foreground and background
    intersection and union), stored with the episode's ``class_id``. At the
    end, counts are summed per class and reported as in HSNet / DCAMA (see
    :func:`few_shot_iou`): ``mIoU`` (mean foreground IoU over
    ``dataset_meta['episode_class_ids']``), ``FB-IoU`` and ``num_episodes``;
    the per-class IoU is logged as a table. It also reports ``mIoU_se``
    and ``FB-IoU_se``, the bootstrap standard errors over the episodes
    (:func:`bootstrap_std_error`), logged as ``mIoU 49.53 +- 0.61``.

    The records are tiny and per sample, so mmengine's result collection
    gathers them across ranks in the single-process order and drops the
    sampler's padding: the result does not depend on the number of GPUs.

    The prediction (``pred_sem_seg``) is compared with ``gt_sem_seg`` when
    their sizes match, otherwise with ``ori_gt_sem_seg`` (evaluation at the
    query's original size).

    Args:
        ignore_index (int): Label value that is ignored. Defaults to 255.
        bootstrap_resamples (int): Resamples of the standard errors; 0 turns
            them off. Defaults to 1000.
        bootstrap_seed (int): Seed of the resampling. Defaults to 0.
        collect_device (str): Device used to collect results across ranks,
            ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix added to the metric names, e.g.
            ``'val'`` gives ``'val/mIoU'``. Defaults to None.
        collect_dir (str, optional): Directory for collecting results across
            ranks with ``collect_device='cpu'``. Defaults to None (a
            temporary directory).
    """

    default_prefix: Optional[str] = None

    def __init__(self,
                 ignore_index: int = 255,
                 bootstrap_resamples: int = 1000,
                 bootstrap_seed: int = 0,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir)
        if isinstance(bootstrap_resamples, bool) or not isinstance(
                bootstrap_resamples, int) or bootstrap_resamples < 0 \
                or bootstrap_resamples == 1:
            raise ValueError(
                'FewShotIoUMetric: `bootstrap_resamples` must be 0 (off) or '
                f'an integer >= 2, but got {bootstrap_resamples!r}.')
        self.ignore_index = ignore_index
        self.bootstrap_resamples = bootstrap_resamples
        self.bootstrap_seed = bootstrap_seed

    @staticmethod
    def _pixel_data(data_sample: dict, key: str) -> Optional[ArrayLike]:
        """Return the mask tensor stored under ``key``, or None."""
        value = data_sample.get(key)
        if value is None:
            return None
        if isinstance(value, BaseDataElement):
            return value.data
        return value['data']

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Reduce each episode to its class id and four pixel counts.

        Args:
            data_batch (Any): A batch from the dataloader (not used).
            data_samples (Sequence[dict | SegDataSample]): Model outputs with
                ``pred_sem_seg``, ``gt_sem_seg`` (and optionally
                ``ori_gt_sem_seg``) and the metainfo ``class_id``.
        """
        for data_sample in data_samples:
            if isinstance(data_sample, BaseDataElement):
                data_sample = data_sample.to_dict()
            if 'class_id' not in data_sample:
                raise ValueError(
                    'FewShotIoUMetric needs the metainfo "class_id" on each '
                    'data sample; pack episodes with PackFewShotInputs.')
            pred = self._pixel_data(data_sample, 'pred_sem_seg')
            if pred is None:
                raise ValueError(
                    'FewShotIoUMetric needs "pred_sem_seg" on each data '
                    'sample: run the model in predict mode.')
            label = self._pixel_data(data_sample, 'gt_sem_seg')
            if label is None or tuple(label.shape[-2:]) != tuple(
                    pred.shape[-2:]):
                ori_label = self._pixel_data(data_sample, 'ori_gt_sem_seg')
                if ori_label is not None:
                    label = ori_label
            if label is None:
                raise ValueError(
                    'FewShotIoUMetric needs "gt_sem_seg" (or '
                    '"ori_gt_sem_seg") on each data sample.')
            if tuple(label.shape[-2:]) != tuple(pred.shape[-2:]):
                raise ValueError(
                    f'The prediction has size {tuple(pred.shape[-2:])} but '
                    f'the ground truth has size {tuple(label.shape[-2:])}: '
                    'keep "ori_gt_sem_seg" in the test pipeline when the '
                    'model predicts at the original size '
                    '(test_cfg=dict(resize_to_original=True)).')
            areas = intersect_and_union_fb(pred, label, self.ignore_index)
            self.results.append(
                dict(class_id=int(data_sample['class_id']), areas=areas))

    def _class_ids_and_names(
            self, results: List[dict]) -> Tuple[List[int], List[str]]:
        """The classes to report and their names, from ``dataset_meta``."""
        meta = self.dataset_meta or {}
        class_ids = meta.get('episode_class_ids')
        if class_ids is None:
            class_ids = sorted({r['class_id'] for r in results})
            print_log(
                'dataset_meta has no "episode_class_ids": reporting over the '
                f'classes seen in the episodes ({len(class_ids)}).',
                logger='current',
                level=logging.WARNING)
        class_ids = [int(c) for c in class_ids]
        classes = meta.get('classes')
        names = [
            str(classes[c]) if classes is not None and c < len(classes) else
            str(c) for c in class_ids
        ]
        return class_ids, names

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Sum the episode records per class and compute the metrics.

        Args:
            results (list[dict]): Records of all episodes (all ranks), each
                ``dict(class_id=int, areas=np.ndarray[4])``.

        Returns:
            dict: ``mIoU`` and ``FB-IoU`` (in %), ``num_episodes`` and,
            unless ``bootstrap_resamples=0``, ``mIoU_se`` and ``FB-IoU_se``.
        """
        logger = MMLogger.get_current_instance()
        class_ids, names = self._class_ids_and_names(results)
        episode_classes = [r['class_id'] for r in results]
        areas = np.stack([r['areas'] for r in results]) if results else \
            np.zeros((0, len(AREA_KEYS)), dtype=np.int64)
        stats = few_shot_iou(episode_classes, areas, class_ids)

        outside = len(results) - stats['num_episodes']
        if outside:
            print_log(
                f'{outside} episode(s) have a class outside the reported '
                'classes (dataset_meta["episode_class_ids"]) and are not '
                'counted.',
                logger=logger,
                level=logging.WARNING)
        empty = [n for n, e in zip(names, stats['class_episodes']) if e == 0]
        if empty:
            print_log(
                f'{len(empty)} class(es) have no episode and count as IoU 0 '
                f'in the mIoU: {", ".join(empty)}.',
                logger=logger,
                level=logging.WARNING)

        table = PrettyTable()
        table.add_column('Class', names)
        table.add_column('IoU', [f'{v:.2f}' for v in stats['class_iou']])
        table.add_column('Episodes', [int(e) for e in stats['class_episodes']])
        meta = self.dataset_meta or {}
        extra = ''.join(f', {key} {meta[key]}' for key in ('shots', 'seed')
                        if key in meta)
        print_log(
            f'per class results ({stats["num_episodes"]} episodes over '
            f'{len(class_ids)} classes{extra}):', logger)
        print_log('\n' + table.get_string(), logger=logger)

        metrics = OrderedDict([('mIoU', stats['mIoU']),
                               ('FB-IoU', stats['FB-IoU']),
                               ('num_episodes', stats['num_episodes'])])
        if self.bootstrap_resamples:
            counted = np.isin(episode_classes, class_ids)
            se = bootstrap_std_error(
                np.asarray(episode_classes)[counted], areas[counted],
                class_ids, self.bootstrap_resamples, self.bootstrap_seed)
            metrics['mIoU_se'] = se['mIoU']
            metrics['FB-IoU_se'] = se['FB-IoU']
            print_log(
                f"mIoU {stats['mIoU']:.2f} +- {se['mIoU']:.2f}, FB-IoU "
                f"{stats['FB-IoU']:.2f} +- {se['FB-IoU']:.2f} (bootstrap "
                f'standard errors over the {stats["num_episodes"]} episodes, '
                f'{self.bootstrap_resamples} resamples)', logger)
        return metrics
