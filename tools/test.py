# Copyright (c) dcama_mm contributors. All rights reserved.
"""Test (evaluate) a dcama_mm checkpoint with mmengine's Runner.

Examples:
    python tools/test.py configs/dcama_swinb_coco_fold0.py CKPT
    # 5-shot with the 1-shot-trained model
    python tools/test.py configs/dcama_swinb_coco_fold0.py CKPT \
        --cfg-options test_dataloader.dataset.shots=5
    # evaluation at each query's original size
    python tools/test.py CONFIG CKPT \
        --cfg-options model.test_cfg.resize_to_original=True
    # one picture per episode, metrics to a JSON file
    python tools/test.py CONFIG CKPT --show-dir vis --out results.json
    bash tools/dist_test.sh CONFIG CKPT 4
    mim test dcama_mm CONFIG --checkpoint CKPT
"""
import argparse
import json
import os
import os.path as osp
import sys

from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.logging import print_log

_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isdir(osp.join(_ROOT, 'dcama_mm')) and _ROOT not in sys.path:
    sys.path.append(_ROOT)

from dcama_mm.engine import launch  # noqa: E402  (fills mmseg's registries)


def parse_args() -> argparse.Namespace:
    """Parse the command line (the flags of mmseg's ``tools/test.py``)."""
    parser = launch.tool_arg_parser(
        description='Test (and evaluate) a DCAMA few-shot segmentor',
        config_help='test config file path',
        work_dir_help='the directory to save the file containing evaluation '
        'metrics (default: ./work_dirs/<config name>)')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out',
        type=str,
        help='write the metrics, with the checkpoint and the test episodes '
        '(dataset settings: fold, shots, seed, number of episodes), to this '
        'JSON file')
    parser.add_argument(
        '--show', action='store_true', help='show the episode pictures')
    parser.add_argument(
        '--show-dir',
        help='directory where one picture per test episode is saved (a '
        'relative path is taken under work_dir/timestamp/)')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    return launch.parse_tool_args(parser)


def trigger_visualization_hook(cfg: Config, args: argparse.Namespace) -> None:
    """Turn on the episode visualisation hook for ``--show``/``--show-dir``."""
    default_hooks = cfg.get('default_hooks') or {}
    if 'visualization' not in default_hooks:
        raise ValueError(
            '--show / --show-dir need a "visualization" entry in '
            'default_hooks (e.g. dict(type="FewShotVisualizationHook")); '
            'inherit configs/_base_/default_runtime.py or add one.')
    hook = default_hooks['visualization']
    hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        hook['show_dir'] = args.show_dir


def build_cfg(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line options to it."""
    cfg = launch.load_tool_config(args)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.show or args.show_dir:
        trigger_visualization_hook(cfg, args)
    if args.out is not None and not args.out.endswith('.json'):
        raise ValueError(
            f'--out: "{args.out}" must be a .json file name (the metrics are '
            'written as JSON).')
    return cfg


def write_results(path: str, metrics: dict, cfg: Config,
                  args: argparse.Namespace) -> None:
    """Write the metrics and what they were computed on to a JSON file."""
    dataset_cfg = cfg.test_dataloader.get('dataset', {}).to_dict()
    dataset_cfg.pop('pipeline', None)
    record = dict(
        config=osp.abspath(args.config),
        checkpoint=osp.abspath(args.checkpoint),
        metrics={k: (float(v) if isinstance(v, (int, float)) else v)
                 for k, v in metrics.items()},
        test_dataset=dataset_cfg,
        test_cfg=cfg.model.get('test_cfg', {}) and dict(cfg.model.test_cfg),
    )
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(record, f, indent=2, default=str)
    print_log(f'Metrics written to {osp.abspath(path)}', logger='current')


def main() -> None:
    args = parse_args()
    cfg = build_cfg(args)
    runner = launch.build_runner(cfg, args.launcher,
                                 launch.check_test_config)
    metrics = runner.test()
    if args.out is not None and is_main_process():
        write_results(args.out, metrics, cfg, args)


if __name__ == '__main__':
    main()
