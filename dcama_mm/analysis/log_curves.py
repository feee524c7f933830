# Copyright (c) dcama_mm contributors. All rights reserved.
"""Training curves from mmengine's ``scalars.json`` logs
(``tools/analysis_tools/analyze_logs.py``).

mmengine's ``LocalVisBackend`` writes one JSON record per line to
``<work_dir>/<timestamp>/vis_data/scalars.json``: training records (with
``epoch``, ``iter`` and ``step``, the global iteration) every logger
interval, and validation records (the metrics, e.g. ``mIoU`` and
``FB-IoU``, with ``step`` the epoch of an epoch-based loop) after each
validation.
"""
import json
import os.path as osp
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

#: The x axes a curve can be drawn over.
X_AXES = ('iter', 'epoch')


@dataclass(frozen=True)
class ScalarLog:
    """One run's ``scalars.json``, split into training and validation.

    Attributes:
        path (str): The file.
        train (list[dict]): The training records (they have ``epoch``).
        val (list[dict]): The validation records.
    """

    path: str
    train: List[dict]
    val: List[dict]

    @property
    def keys(self) -> List[str]:
        """list[str]: The scalar names the log has, training ones first."""
        names: Dict[str, None] = OrderedDict()
        for record in self.train + self.val:
            for key in record:
                if key not in ('epoch', 'iter', 'step'):
                    names[key] = None
        return list(names)


def load_scalar_log(path: str) -> ScalarLog:
    """Read a ``scalars.json`` (one JSON record per line).

    Args:
        path (str): The file, or a work directory's ``<timestamp>`` folder
            or its ``vis_data`` folder holding it.

    Returns:
        ScalarLog: The records.

    Raises:
        FileNotFoundError: When there is no such file.
        ValueError: When a line is not a JSON record.
    """
    for candidate in (path, osp.join(path, 'scalars.json'),
                      osp.join(path, 'vis_data', 'scalars.json')):
        if osp.isfile(candidate):
            path = candidate
            break
    else:
        raise FileNotFoundError(
            f'{path}: no such scalars.json; pass the file mmengine writes '
            'to <work_dir>/<timestamp>/vis_data/scalars.json.')
    train, val = [], []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f'{path}, line {number}: not a JSON record ({err}).'
                ) from err
            if not isinstance(record, dict) or 'step' not in record:
                raise ValueError(
                    f'{path}, line {number}: a record of mmengine\'s '
                    'scalars.json is a JSON object with a "step".')
            (train if 'epoch' in record else val).append(record)
    return ScalarLog(path=path, train=train, val=val)


def curve(log: ScalarLog, key: str, x: str = 'iter'
          ) -> Tuple[List[float], List[float]]:
    """The values of ``key`` over iterations or epochs.

    Training scalars (e.g. ``loss``) are drawn at their iteration, or with
    ``x='epoch'`` as each epoch's mean over its logged iterations.
    Validation scalars (e.g. ``mIoU``) are drawn at their epoch, or with
    ``x='iter'`` at the last logged iteration of that epoch.

    Args:
        log (ScalarLog): The run's records.
        key (str): The scalar.
        x (str): ``'iter'`` or ``'epoch'``. Defaults to ``'iter'``.

    Returns:
        tuple[list[float], list[float]]: The x and y values.

    Raises:
        ValueError: For an unknown ``x`` or a ``key`` the log lacks.
    """
    if x not in X_AXES:
        raise ValueError(f'x must be one of {X_AXES}, got {x!r}.')
    train = [r for r in log.train if key in r]
    val = [r for r in log.val if key in r]
    if not train and not val:
        raise ValueError(
            f'--keys: {log.path} has no {key!r}; it has '
            f'{", ".join(log.keys)}.')
    if train:
        if x == 'iter':
            return ([float(r['step']) for r in train],
                    [float(r[key]) for r in train])
        by_epoch: Dict[int, List[float]] = OrderedDict()
        for record in train:
            by_epoch.setdefault(int(record['epoch']), []).append(
                float(record[key]))
        return ([float(e) for e in by_epoch],
                [sum(v) / len(v) for v in by_epoch.values()])
    epochs = [float(r['step']) for r in val]
    values = [float(r[key]) for r in val]
    if x == 'epoch':
        return epochs, values
    last_iter = {}
    for record in log.train:
        epoch = int(record['epoch'])
        last_iter[epoch] = max(last_iter.get(epoch, 0), int(record['step']))
    return [float(last_iter.get(int(e), e)) for e in epochs], values


def plot_curves(logs: Sequence[ScalarLog],
                keys: Sequence[str],
                out: Optional[str] = None,
                legend: Optional[Sequence[str]] = None,
                x: str = 'iter',
                title: Optional[str] = None):
    """Plot ``keys`` of one or more runs, one panel per key.

    Args:
        logs (Sequence[ScalarLog]): The runs.
        keys (Sequence[str]): The scalars, e.g. ``['loss', 'mIoU']``.
        out (str, optional): Write the figure to this image file (its
            metadata ``Series`` lists the curves as JSON). Defaults to None.
        legend (Sequence[str], optional): One label per run and key, in the
            order run 1's keys, run 2's keys, ... Defaults to None: the key,
            preceded by the run's work directory name when there are
            several runs.
        x (str): ``'iter'`` or ``'epoch'``. Defaults to ``'iter'``.
        title (str, optional): The figure's title. Defaults to None.

    Returns:
        tuple: The matplotlib figure and the curves, a dict
        ``label -> (xs, ys)``.

    Raises:
        ImportError: Without matplotlib.
        ValueError: No key, a key a log lacks, or a legend of the wrong
            length.
    """
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError(
            'analyze_logs needs matplotlib: pip install matplotlib') from err
    if not keys:
        raise ValueError('--keys: give at least one scalar, e.g. loss mIoU.')
    labels = default_labels(logs, keys) if legend is None else list(legend)
    if len(labels) != len(logs) * len(keys):
        raise ValueError(
            f'--legend: {len(labels)} labels for {len(logs)} log(s) x '
            f'{len(keys)} key(s); give {len(logs) * len(keys)}.')
    series: Dict[str, Tuple[List[float], List[float]]] = OrderedDict()
    figure, axes = plt.subplots(
        len(keys), 1, figsize=(8, 3 * len(keys)), squeeze=False)
    for row, key in enumerate(keys):
        ax = axes[row][0]
        for run, log in enumerate(logs):
            label = labels[run * len(keys) + row]
            xs, ys = curve(log, key, x)
            series[label] = (xs, ys)
            ax.plot(xs, ys, label=label, marker='.' if len(xs) < 50 else '')
        ax.set_ylabel(key)
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    if out is not None:
        summary = json.dumps(
            [dict(label=k, points=len(v[0])) for k, v in series.items()])
        metadata = {'Series': summary} if out.endswith('.png') else None
        figure.savefig(out, dpi=100, metadata=metadata)
    return figure, series


def default_labels(logs: Sequence[ScalarLog],
                   keys: Sequence[str]) -> List[str]:
    """The key, preceded by the run's name when there are several runs (its
    work directory, or its ``<timestamp>`` folder when the work
    directories have the same name)."""
    if len(logs) == 1:
        return list(keys)
    names = [_run_folder(log.path, 2) for log in logs]
    if len(set(names)) < len(names):
        names = [_run_folder(log.path, 1) for log in logs]
    return [f'{name}: {key}' for name in names for key in keys]


def _run_folder(path: str, up: int) -> str:
    """The name of the folder ``up`` levels above ``vis_data``."""
    folder = osp.dirname(osp.abspath(path))
    if osp.basename(folder) == 'vis_data':
        folder = osp.dirname(folder)
    for _ in range(up - 1):
        folder = osp.dirname(folder)
    return osp.basename(folder)
