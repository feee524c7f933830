# Copyright (c) dcama_mm contributors. All rights reserved.
"""Build the paper-style results table from ``tools/test.py --out`` files.

One row per benchmark, shots and metric (mIoU, FB-IoU), one column per fold
and the mean over the folds, each figure with its ``±`` where the file has
one: the bootstrap standard error of a single run, or the standard error of
the mean over seeds for a ``--seeds`` run. The mean's ``±`` combines the
folds' (independent draws): ``sqrt(sum se_i^2) / n``. A mean is shown only
when every fold of that benchmark in the table is there (COCO-20i's and
PASCAL-5i's folds 0-3 and FSS-1000's single test set can share a table).

The files of one benchmark must come from the same kind of model and
settings (model, backbone, ``replay_reference``, ``resize_to_original``,
``amp``; the ``run`` section ``tools/test.py --out`` writes): a mix is
refused, naming the two files and the field; so is one checkpoint (same
SHA-256) on two folds of a benchmark. Each file's note names its
model and checkpoint (with its SHA-256 prefix).

Examples::

    python tools/analysis_tools/collect_results.py results/*.json
    python tools/analysis_tools/collect_results.py results/*.json \\
        --markdown table.md --csv table.csv
"""
import argparse
import csv
import json
import math
import os.path as osp
import sys
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple

_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isdir(osp.join(_ROOT, 'dcama_mm')) and _ROOT not in sys.path:
    sys.path.append(_ROOT)

from dcama_mm.evaluation.run_identity import (  # noqa: E402
    check_same_model, describe, identity_of_record)

METRICS = ('mIoU', 'FB-IoU')
#: A figure and its standard error (None where unknown).
Cell = Tuple[float, Optional[float]]
Key = Tuple[str, int, Optional[int]]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Collect tools/test.py --out files into a folds x shots '
        'table (Markdown and CSV).')
    parser.add_argument('results', nargs='+', help='tools/test.py --out files')
    parser.add_argument(
        '--markdown', help='write the Markdown table here (default: print)')
    parser.add_argument('--csv', help='also write the table as CSV here')
    return parser.parse_args(argv)


def read_result(
        path: str) -> Tuple[Key, Dict[str, Cell], str, Dict[str, Any]]:
    """Read one ``--out`` file.

    Returns:
        tuple: ``(benchmark, shots, fold)``, ``{metric: (value, se)}``, a
        note on its episodes (count and seed) and model, and its run
        identity (:func:`identity_of_record`).
    """
    try:
        with open(path, encoding='utf-8') as f:
            record = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f'collect_results: {path!r} does not exist.')
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(
            f'collect_results: {path!r} is not valid JSON ({err}).') from err
    metrics = record.get('metrics') if isinstance(record, dict) else None
    dataset = record.get('test_dataset') if isinstance(record, dict) else None
    if not isinstance(metrics, dict) or not isinstance(dataset, dict) or any(
            not isinstance(metrics.get(m), (int, float)) for m in METRICS) \
            or 'shots' not in dataset or 'type' not in dataset:
        raise ValueError(
            f'collect_results: {path!r} is not a tools/test.py --out file '
            '(it needs "metrics" with mIoU and FB-IoU and "test_dataset" '
            'with type and shots).')
    fold = dataset.get('fold')
    key = (str(dataset['type']), int(dataset['shots']),
           None if fold is None else int(fold))
    cells = {}
    for m in METRICS:
        se = metrics.get(f'{m}_se')
        cells[m] = (float(metrics[m]),
                    None if se is None else float(se))
    seeds = dataset.get('seed')
    replayed = ', reference episodes' if dataset.get(
        'replay_reference') else ''
    identity = identity_of_record(record)
    note = (f"{metrics.get('num_episodes', '?')} episodes, seed"
            f"{'s' if isinstance(seeds, list) else ''} {seeds}{replayed}; "
            f'{describe(identity)}')
    return key, cells, note, identity


def _mean(cells: List[Optional[Cell]]) -> Optional[Cell]:
    """The mean of ``cells`` and its standard error ``sqrt(sum se_i^2) /
    n`` (None where a standard error is unknown); None when a cell is."""
    if not cells or any(c is None for c in cells):
        return None
    value = sum(c[0] for c in cells) / len(cells)
    se = None
    if all(c[1] is not None for c in cells):
        se = math.sqrt(sum(c[1]**2 for c in cells)) / len(cells)
    return value, se


def collect(paths: Sequence[str]) -> Tuple[List[str], List[List[str]],
                                           List[str]]:
    """The table of ``paths``.

    Returns:
        tuple: The fold column names, the rows (benchmark, shots, metric,
        then per fold and for the mean a ``(value, se)`` or None) and one
        note per file.
    """
    results: Dict[Key, Dict[str, Cell]] = OrderedDict()
    notes, identities = [], []
    for path in paths:
        key, cells, note, identity = read_result(path)
        identities.append((path, key[0], identity, key[2]))
        if key in results:
            raise ValueError(
                f'collect_results: {key[0]} fold {key[2]} {key[1]}-shot is '
                f'given twice (again in {path!r}).')
        results[key] = cells
        notes.append(f'{osp.basename(path)}: {key[0]}, fold {key[2]}, '
                     f'{key[1]}-shot, {note}')
    check_same_model(identities)
    folds = sorted({k[2] for k in results}, key=lambda f: (f is None, f))
    rows = []
    for bench, shots in sorted({(k[0], k[1]) for k in results}):
        # the mean is over the folds of this benchmark, not of the table
        own = [f for f in folds if any(k[::2] == (bench, f) for k in results)]
        for m in METRICS:
            cells = [results.get((bench, shots, f), {}).get(m) for f in folds]
            rows.append([bench, shots, m, *cells,
                         _mean([results.get((bench, shots, f), {}).get(m)
                                for f in own])])
    names = [f'fold {f}' if f is not None else 'all' for f in folds]
    return names, rows, notes


def to_markdown(names: List[str], rows: List[list],
                notes: List[str]) -> str:
    """The table as Markdown (``±`` where the standard error is known)."""

    def cell(c: Optional[Cell]) -> str:
        if c is None:
            return '–'
        return f'{c[0]:.2f}' + ('' if c[1] is None else f' ± {c[1]:.2f}')

    header = ['benchmark', 'shots', 'metric', *names, 'mean']
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    for bench, shots, m, *cells in rows:
        lines.append('| ' + ' | '.join([bench, str(shots), m] +
                                       [cell(c) for c in cells]) + ' |')
    lines.append('')
    lines += [f'- {n}' for n in notes]
    return '\n'.join(lines) + '\n'


def write_csv(path: str, names: List[str], rows: List[list]) -> None:
    """The table as CSV: a value and a standard-error column per fold."""
    header = ['benchmark', 'shots', 'metric']
    for name in [*names, 'mean']:
        header += [name, f'{name} se']
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for bench, shots, m, *cells in rows:
            out = [bench, shots, m]
            for c in cells:
                out += ['', ''] if c is None else [
                    f'{c[0]:.2f}', '' if c[1] is None else f'{c[1]:.2f}'
                ]
            writer.writerow(out)


def main(argv: Optional[Sequence[str]] = None) -> str:
    args = parse_args(argv)
    names, rows, notes = collect(args.results)
    table = to_markdown(names, rows, notes)
    if args.markdown:
        with open(args.markdown, 'w', encoding='utf-8') as f:
            f.write(table)
        print(f'Markdown table written to {osp.abspath(args.markdown)}')
    else:
        print(table, end='')
    if args.csv:
        write_csv(args.csv, names, rows)
        print(f'CSV table written to {osp.abspath(args.csv)}')
    return table


if __name__ == '__main__':
    try:
        main()
    except (ValueError, FileNotFoundError) as error:
        sys.exit(str(error))  # one line, exit status 1
