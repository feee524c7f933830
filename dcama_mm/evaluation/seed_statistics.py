# Copyright (c) dcama_mm contributors. All rights reserved.
"""Statistics of figures measured once per seed (``tools/test.py
--seeds``)."""
import math
from typing import Dict, Sequence

from scipy import stats

__all__ = ['summarize_seeds', 'summarize_seed_metrics', 'format_seed_table']

#: The range of the figures (IoUs in %): a shown interval is cut to it.
FIGURE_RANGE = (0.0, 100.0)


def summarize_seeds(values: Sequence[float]) -> Dict[str, float]:
    """Mean, standard deviation and 95% interval of per-seed figures.

    Args:
        values (Sequence[float]): One figure per seed (e.g. mIoU in %).

    Returns:
        dict: ``mean``; ``std``, the sample standard deviation (``ddof=1``:
        how far one seed's figure typically is from the mean); ``se``, the
        standard error of the mean (``std / sqrt(n)``); ``ci95``, the
        half-width of the 95% Student-t interval of the mean
        (``t(0.975, n - 1) * se``); ``num_seeds``. With one seed ``std``,
        ``se`` and ``ci95`` are NaN.
    """
    values = [float(v) for v in values]
    num = len(values)
    if num == 0:
        raise ValueError('summarize_seeds: no values given.')
    mean = sum(values) / num
    if num == 1:
        nan = float('nan')
        return dict(mean=mean, std=nan, se=nan, ci95=nan, num_seeds=1)
    std = math.sqrt(sum((v - mean)**2 for v in values) / (num - 1))
    se = std / math.sqrt(num)
    return dict(
        mean=mean,
        std=std,
        se=se,
        ci95=float(stats.t.ppf(0.975, num - 1)) * se,
        num_seeds=num)


def summarize_seed_metrics(per_seed: Sequence[Dict[str, float]],
                           keys: Sequence[str] = ('mIoU', 'FB-IoU')
                           ) -> Dict[str, float]:
    """Summarise the metrics of one test run per seed.

    Args:
        per_seed (Sequence[dict]): The metrics of each run (``mIoU``,
            ``FB-IoU``, ``num_episodes``, ...).
        keys (Sequence[str]): The figures to summarise. Defaults to
            ``('mIoU', 'FB-IoU')``.

    Returns:
        dict: For each key, ``<key>`` (the mean), ``<key>_std``,
        ``<key>_se`` (standard error of the mean) and ``<key>_ci95``
        (half-width of the 95% interval of the mean); ``num_episodes`` (of
        one run) and ``num_seeds``.
    """
    out: Dict[str, float] = {}
    for key in keys:
        summary = summarize_seeds([m[key] for m in per_seed])
        out[key] = summary['mean']
        out[f'{key}_std'] = summary['std']
        out[f'{key}_se'] = summary['se']
        out[f'{key}_ci95'] = summary['ci95']
    if per_seed and 'num_episodes' in per_seed[0]:
        out['num_episodes'] = per_seed[0]['num_episodes']
    out['num_seeds'] = len(per_seed)
    return out


def format_seed_table(seeds: Sequence[int],
                      per_seed: Sequence[Dict[str, float]],
                      summary: Dict[str, float],
                      keys: Sequence[str] = ('mIoU', 'FB-IoU')) -> str:
    """The per-seed figures and their statistics as a text table.

    Args:
        seeds (Sequence[int]): The seeds, in run order.
        per_seed (Sequence[dict]): The metrics of each run.
        summary (dict): :func:`summarize_seed_metrics` of ``per_seed``.
        keys (Sequence[str]): The figures shown. Defaults to
            ``('mIoU', 'FB-IoU')``.

    Returns:
        str: One line per seed (with the bootstrap standard error where
        known), then the mean, the standard deviation and the 95% interval
        of the mean, cut to :data:`FIGURE_RANGE` (and then a line says so:
        with few seeds the t interval can pass 100%).
    """

    def cell(metrics: Dict[str, float], key: str) -> str:
        se = metrics.get(f'{key}_se')
        text = f'{metrics[key]:6.2f}'
        return text if se is None else f'{text} +- {se:.2f}'

    lines = ['seed  ' + '  '.join(f'{k:>15}' for k in keys)]
    for seed, metrics in zip(seeds, per_seed):
        lines.append(f'{seed:<4}  ' + '  '.join(
            f'{cell(metrics, k):>15}' for k in keys))
    lines.append('mean  ' + '  '.join(f'{summary[k]:15.2f}' for k in keys))
    lines.append('std   ' + '  '.join(f'{summary[k + "_std"]:15.2f}'
                                      for k in keys))
    cells, cut = [], False
    for k in keys:
        low = summary[k] - summary[k + '_ci95']
        high = summary[k] + summary[k + '_ci95']
        cut = cut or low < FIGURE_RANGE[0] or high > FIGURE_RANGE[1]
        low, high = max(low, FIGURE_RANGE[0]), min(high, FIGURE_RANGE[1])
        cells.append(f'{low:7.2f}..{high:.2f}'.rjust(15))
    lines.append('95%   ' + '  '.join(cells))
    if cut:
        lines.append(f'(95% intervals cut to {FIGURE_RANGE[0]:g}..'
                     f'{FIGURE_RANGE[1]:g}, the range of the figures)')
    return '\n'.join(lines)
