# Copyright (c) dcama_mm contributors. All rights reserved.
"""Draw a dataset's episodes as its pipeline produces them (mmseg's
``browse_dataset.py``): no model, no checkpoint.

Each picture shows the episode's support images with their masks and the
query with its ground truth, at the network size, as the model receives
them (after the config's ``ResizeEpisode``), titled with the episode's
index, class and shots (:class:`FewShotLocalVisualizer`).

Examples::

    # the first 8 training episodes of fold 0
    python tools/analysis_tools/browse_dataset.py \\
        configs/dcama_swinb_coco_fold0.py --split train --num 8 \\
        --output-dir browse
    # test episode 123, 5-shot
    python tools/analysis_tools/browse_dataset.py CONFIG --split test \\
        --episode 123 --output-dir browse \\
        --cfg-options test_dataloader.dataset.shots=5
"""
import argparse
import os
import os.path as osp
import re
from typing import List, Optional, Sequence

import mmcv
from mmengine.logging import print_log
from mmengine.utils import track_iter_progress
from mmseg.registry import DATASETS

from dcama_mm.analysis import analysis_parser, load_analysis_config
from dcama_mm.engine.config_checks import check_dataset_paths
from dcama_mm.utils.output_files import check_picture_option
from dcama_mm.visualization import build_drawing_visualizer

SPLITS = ('train', 'val', 'test')


def parse_args(args: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = analysis_parser(
        'Draw the episodes of a dataset as its pipeline produces them',
        cfg_options_example='test_dataloader.dataset.shots=5')
    parser.add_argument(
        '--split', choices=SPLITS, default='train',
        help='the dataloader whose dataset is drawn (default: train)')
    parser.add_argument(
        '--num', type=int, default=8,
        help='draw the first N episodes (default: 8)')
    parser.add_argument(
        '--episode', type=int, nargs='+',
        help='draw these episode indices instead of the first N')
    parser.add_argument(
        '--output-dir', required=True,
        help='folder for the pictures (episode_<index>_<class>.png); one '
        'that holds such pictures is refused unless --force')
    parser.add_argument(
        '--force', action='store_true',
        help='overwrite the pictures of an earlier run in --output-dir')
    opts = parser.parse_args(args)
    check_picture_option(parser, opts.output_dir, opts.force, '--output-dir')
    return opts


def episode_indices(num: int, episodes: Optional[Sequence[int]],
                    length: int) -> List[int]:
    """The episodes to draw: ``episodes``, else the first ``num``.

    Raises:
        ValueError: ``num`` < 1 or an index outside the dataset.
    """
    if episodes:
        bad = [i for i in episodes if not 0 <= i < length]
        if bad:
            raise ValueError(
                f'--episode: {bad} outside the dataset\'s episodes '
                f'0..{length - 1}.')
        return list(episodes)
    if num < 1:
        raise ValueError(f'--num must be >= 1, got {num}.')
    return list(range(min(num, length)))


def main(args: Optional[Sequence[str]] = None) -> List[str]:
    """Run the tool; returns the written picture files."""
    opts = parse_args(args)
    cfg = load_analysis_config(opts.config, opts.cfg_options)
    option = f'{opts.split}_dataloader'
    if option not in cfg or 'dataset' not in cfg[option]:
        raise ValueError(
            f'--split {opts.split}: the config has no {option}.dataset.')
    check_dataset_paths(cfg[option].dataset, f'{option}.dataset')
    dataset = DATASETS.build(cfg[option].dataset)
    indices = episode_indices(opts.num, opts.episode, len(dataset))
    visualizer = build_drawing_visualizer(cfg.get('visualizer'),
                                          'browse_dataset')
    visualizer.dataset_meta = dataset.metainfo
    os.makedirs(opts.output_dir, exist_ok=True)
    written = []
    for index in track_iter_progress(indices):
        packed = dataset[index]
        sample = packed['data_samples']
        # the packed query is BGR uint8 [3, H, W], as mmseg packs it
        query = mmcv.bgr2rgb(packed['inputs'].permute(1, 2, 0).numpy())
        class_name = re.sub(r'[^\w.-]+', '_', visualizer.class_name(
            sample.get('class_id')))
        out_file = osp.join(opts.output_dir,
                            f'episode_{index:05d}_{class_name}.png')
        visualizer.add_datasample(
            f'episode_{index}', query, sample, draw_pred=False,
            out_file=out_file)
        written.append(out_file)
    print_log(
        f'{len(written)} {opts.split} episode(s) drawn to '
        f'{osp.abspath(opts.output_dir)}', logger='current')
    return written


if __name__ == '__main__':
    main()
