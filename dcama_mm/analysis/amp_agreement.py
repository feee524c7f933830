# Copyright (c) dcama_mm contributors. All rights reserved.
"""Does mixed precision keep the answers? fp32 and autocast on the same
episodes: both mIoU, the per-pixel agreement of the predictions and the
largest logit difference."""
import copy
import time
from typing import Dict, Optional

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.runner import Runner

from ..models.utils.precision import (AmpSetting, dtype_name,
                                      resolve_amp_dtype, set_amp)
from .episodes import make_episodes
from .profiling import synchronize


class _Agreement:
    """Running counts of equal predicted pixels and the largest logit
    difference."""

    def __init__(self) -> None:
        self.equal = self.total = self.episodes = 0
        self.max_logit_diff = 0.0
        self.min_episode_agreement = 1.0

    def add(self, ref: torch.Tensor, amp: torch.Tensor) -> None:
        """The logits ``[C, H, W]`` of one episode, fp32 and amp."""
        same = ref.argmax(0) == amp.argmax(0)
        self.equal += int(same.sum())
        self.total += same.numel()
        self.episodes += 1
        self.min_episode_agreement = min(self.min_episode_agreement,
                                         float(same.float().mean()))
        self.max_logit_diff = max(self.max_logit_diff,
                                  float((ref - amp.float()).abs().max()))

    def figures(self) -> Dict[str, float]:
        return dict(
            episodes=self.episodes,
            pixels=self.total,
            pixel_agreement=self.equal / max(self.total, 1),
            min_episode_agreement=self.min_episode_agreement,
            max_logit_diff=self.max_logit_diff)


def _logits(model: nn.Module, amp: AmpSetting, fn) -> torch.Tensor:
    set_amp(model, amp)
    with torch.no_grad():
        return fn()


def agreement_on_random_episodes(model: nn.Module,
                                 amp: AmpSetting,
                                 num_episodes: int = 2,
                                 shots: int = 1,
                                 size=(384, 384),
                                 seed: int = 0) -> Dict[str, object]:
    """Argmax agreement of fp32 and ``amp`` on random normalised episodes
    (:func:`~dcama_mm.analysis.make_episodes`, one at a time).

    Args:
        model (nn.Module): A built few-shot segmentor (eval mode).
        amp (bool | str): The mixed-precision setting to compare.
        num_episodes (int): Episodes. Defaults to 2.
        shots (int): Supports per episode. Defaults to 1.
        size (tuple): ``(H, W)``. Defaults to (384, 384).
        seed (int): Seed of the first episode. Defaults to 0.

    Returns:
        dict: ``pixel_agreement``, ``min_episode_agreement``,
        ``max_logit_diff``, ``episodes``, ``pixels``, ``dtype``, seconds.
    """
    device = next(model.parameters()).device
    counts = _Agreement()
    seconds = dict(fp32=0.0, amp=0.0)
    for i in range(num_episodes):
        ep = make_episodes(1, shots, size, device, seed=seed + i)

        def run():
            return model.predict_logits(ep['query_imgs'], ep['support_imgs'],
                                        ep['support_masks'])

        # synchronised: on a GPU the clock would see only the launches
        synchronize(device)
        start = time.perf_counter()
        ref = _logits(model, False, run)
        synchronize(device)
        seconds['fp32'] += time.perf_counter() - start
        start = time.perf_counter()
        low = _logits(model, amp, run)
        synchronize(device)
        seconds['amp'] += time.perf_counter() - start
        for r, a in zip(ref, low):
            counts.add(r, a)
    set_amp(model, False)
    return dict(
        counts.figures(),
        dtype=dtype_name(resolve_amp_dtype(amp, device)),
        seconds=seconds)


def _predict(model: nn.Module, amp: AmpSetting, data: dict) -> list:
    set_amp(model, amp)
    samples = copy.deepcopy(data['data_samples'])
    with torch.no_grad():
        return model.predict(data['inputs'], samples)


def agreement_on_test_set(model: nn.Module,
                          cfg: Config,
                          amp: AmpSetting,
                          max_batches: Optional[int] = None
                          ) -> Dict[str, object]:
    """fp32 and ``amp`` predictions of the config's test episodes.

    The test dataloader and evaluator of ``cfg`` (as ``tools/test.py``
    builds them); each batch is preprocessed once and predicted twice.

    Args:
        model (nn.Module): The segmentor with its checkpoint loaded.
        cfg (Config): The config (``test_dataloader``, ``test_evaluator``).
        amp (bool | str): The mixed-precision setting to compare.
        max_batches (int, optional): Stop after this many batches.
            Defaults to None (all).

    Returns:
        dict: ``metrics_fp32``, ``metrics_amp`` (the evaluator's figures),
        ``pixel_agreement`` (of the argmax of ``seg_logits``, i.e. of
        ``pred_sem_seg``), ``min_episode_agreement``,
        ``max_logit_diff``, ``episodes``, ``pixels``, ``dtype``.
    """
    loader = Runner.build_dataloader(copy.deepcopy(cfg.test_dataloader))
    evaluators = {
        key: Evaluator(copy.deepcopy(cfg.test_evaluator))
        for key in ('fp32', 'amp')
    }
    for evaluator in evaluators.values():
        evaluator.dataset_meta = loader.dataset.metainfo
    counts = _Agreement()
    for index, batch in enumerate(loader):
        if max_batches is not None and index >= max_batches:
            break
        data = model.data_preprocessor(batch, False)
        outputs = {
            'fp32': _predict(model, False, data),
            'amp': _predict(model, amp, data)
        }
        for key, out in outputs.items():
            evaluators[key].process(data_samples=out, data_batch=batch)
        for ref, low in zip(outputs['fp32'], outputs['amp']):
            counts.add(ref.seg_logits.data, low.seg_logits.data)
        print_log(
            f'batch {index + 1}: pixel agreement so far '
            f'{counts.figures()["pixel_agreement"]:.5f}',
            logger='current')
    figures = counts.figures()
    num = figures['episodes']
    return dict(
        figures,
        metrics_fp32=evaluators['fp32'].evaluate(num),
        metrics_amp=evaluators['amp'].evaluate(num),
        dtype=dtype_name(
            resolve_amp_dtype(amp,
                              next(model.parameters()).device)))
