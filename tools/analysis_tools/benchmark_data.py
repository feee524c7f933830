# Copyright (c) dcama_mm contributors. All rights reserved.
"""Measure how many episodes per second one data worker prepares.

Builds a dataloader's dataset (with its pipeline) from a config and loads
episodes one after the other in this process, as one data worker does.

Example::

    python tools/analysis_tools/benchmark_data.py \
        configs/_base_/datasets/coco20i.py --split train --num-episodes 200
"""
import argparse
import time

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import init_default_scope

from mmseg.registry import DATASETS


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Episodes per second of a dataset + pipeline '
        '(one worker).')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--split',
        choices=('train', 'val', 'test'),
        default='train',
        help='which dataloader of the config to measure')
    parser.add_argument(
        '--num-episodes', type=int, default=200, help='episodes to load')
    parser.add_argument(
        '--warmup', type=int, default=5, help='episodes not timed')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. '
        'train_dataloader.dataset.data_root=data/coco')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.num_episodes < 1 or args.warmup < 0:
        raise ValueError('--num-episodes must be >= 1 and --warmup >= 0.')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import dcama_mm  # noqa: F401  (registers the datasets and transforms)
    key = f'{args.split}_dataloader'
    if key not in cfg:
        raise ValueError(f'The config {args.config!r} has no {key!r}.')
    dataset = DATASETS.build(cfg[key]['dataset'])
    for i in range(args.warmup):
        dataset[i]
    start = time.perf_counter()
    for i in range(args.warmup, args.warmup + args.num_episodes):
        dataset[i]
    elapsed = time.perf_counter() - start
    print_log(
        f'{type(dataset).__name__} ({args.split}, shots={dataset.shots}): '
        f'{args.num_episodes / elapsed:.1f} episodes/s per worker '
        f'({1000 * elapsed / args.num_episodes:.1f} ms per episode, '
        f'{args.num_episodes} episodes)',
        logger='current')


if __name__ == '__main__':
    main()
