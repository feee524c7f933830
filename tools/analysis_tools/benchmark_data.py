# Copyright (c) dcama_mm contributors. All rights reserved.
"""Measure how many episodes per second one data worker prepares.

Builds a dataloader's dataset (with its pipeline) from a config and loads
episodes one after the other in this process, as one data worker does.

Example::

    python tools/analysis_tools/benchmark_data.py \\
        configs/_base_/datasets/coco20i.py --split train --num-episodes 200
"""
import argparse
from typing import Optional, Sequence

from mmengine.logging import print_log
from mmseg.registry import DATASETS

from dcama_mm.analysis import (analysis_parser, load_analysis_config,
                               time_runs)


def parse_args(args: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = analysis_parser(
        'Episodes per second of a dataset + pipeline (one worker).',
        cfg_options_example='train_dataloader.dataset.data_root=data/coco',
        warmup=5)
    parser.add_argument(
        '--split',
        choices=('train', 'val', 'test'),
        default='train',
        help='which dataloader of the config to measure')
    parser.add_argument(
        '--num-episodes', type=int, default=200, help='episodes to load')
    return parser.parse_args(args)


def main(args: Optional[Sequence[str]] = None) -> float:
    """Run the tool; returns the episodes per second it printed."""
    opts = parse_args(args)
    if opts.num_episodes < 1 or opts.warmup < 0:
        raise ValueError('--num-episodes must be >= 1 and --warmup >= 0.')
    cfg = load_analysis_config(opts.config, opts.cfg_options,
                               'a config with dataloaders')
    key = f'{opts.split}_dataloader'
    if key not in cfg:
        raise ValueError(f'The config {opts.config!r} has no {key!r}.')
    dataset = DATASETS.build(cfg[key]['dataset'])
    indices = iter(range(opts.warmup + opts.num_episodes))
    elapsed = sum(
        time_runs(lambda: dataset[next(indices)], opts.num_episodes,
                  opts.warmup, 'cpu'))
    rate = opts.num_episodes / elapsed
    print_log(
        f'{type(dataset).__name__} ({opts.split}, shots={dataset.shots}): '
        f'{rate:.1f} episodes/s per worker '
        f'({1000 * elapsed / opts.num_episodes:.1f} ms per episode, '
        f'{opts.num_episodes} episodes)',
        logger='current')
    return rate


if __name__ == '__main__':
    main()
