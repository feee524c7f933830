# Copyright (c) dcama_mm contributors. All rights reserved.
"""Train a dcama_mm model with mmengine's Runner (mmseg's flags).

Examples:
    python tools/train.py configs/dcama_swinb_coco_fold0.py
    python tools/train.py CONFIG --work-dir work_dirs/run1 --resume
    bash tools/dist_train.sh CONFIG 4        # 4 GPUs (or 4 CPU processes)
    mim train dcama_mm CONFIG --gpus 4 --launcher pytorch
"""
import argparse
import logging
import os
import os.path as osp
import sys

# Running from a source checkout without installing: make `dcama_mm`
# importable (an installed / editable package wins, it comes first).
_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isdir(osp.join(_ROOT, 'dcama_mm')) and _ROOT not in sys.path:
    sys.path.append(_ROOT)

import dcama_mm  # noqa: E402,F401  (fills mmseg's registries)
from dcama_mm.engine.launch import (check_train_config,  # noqa: E402
                                    check_world_size, default_work_dir,
                                    setup_cpu_distributed)
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.runner import Runner  # noqa: E402


def parse_args() -> argparse.Namespace:
    """Parse the command line (the flags of mmseg's ``tools/train.py``)."""
    parser = argparse.ArgumentParser(
        description='Train a DCAMA few-shot segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--work-dir',
        help='the dir to save logs and checkpoints (default: '
        './work_dirs/<config name>)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume training: from the latest checkpoint in the work dir '
        'when no path is given, else from the given checkpoint')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training (needs a GPU)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. '
        'key="[(a,b),(c,d)]" Note that the quotation marks are necessary and '
        'that no white space is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_cfg(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line options to it."""
    if not osp.isfile(args.config):
        raise FileNotFoundError(
            f'config: the file "{args.config}" does not exist.')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # work_dir: command line > config > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = default_work_dir(args.config)

    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise ValueError(
                '--amp: automatic mixed precision needs a CUDA GPU; run '
                'without --amp on the CPU.')
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper == 'AmpOptimWrapper':
            print_log(
                'AMP training is already enabled in your config.',
                logger='current',
                level=logging.WARNING)
        else:
            if optim_wrapper != 'OptimWrapper':
                raise ValueError(
                    '--amp is only supported with optim_wrapper.type='
                    f'"OptimWrapper", but got "{optim_wrapper}".')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main() -> None:
    args = parse_args()
    cfg = build_cfg(args)
    # Fail fast, before any model or data is built.
    check_world_size()
    check_train_config(cfg)
    setup_cpu_distributed(cfg, args.launcher)

    # build the runner from config
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        from mmseg.registry import RUNNERS
        runner = RUNNERS.build(cfg)
    runner.train()
    print_log(
        f'Training finished; checkpoints and logs are in '
        f'{osp.abspath(runner.work_dir)}',
        logger='current')


if __name__ == '__main__':
    main()
