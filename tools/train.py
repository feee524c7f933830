# Copyright (c) dcama_mm contributors. All rights reserved.
"""Train a dcama_mm model with mmengine's Runner (mmseg's flags).

Examples:
    python tools/train.py configs/dcama_swinb_coco_fold0.py
    python tools/train.py CONFIG --work-dir work_dirs/run1 --resume
    python tools/train.py CONFIG --work-dir work_dirs/run1 --force
    bash tools/dist_train.sh CONFIG 4        # 4 GPUs (or 4 CPU processes)
    mim train dcama_mm CONFIG --gpus 4 --launcher pytorch
"""
import argparse
import os.path as osp
import sys
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.logging import print_log

# Running from a source checkout without installing: make `dcama_mm`
# importable (an installed / editable package wins, it comes first).
_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isdir(osp.join(_ROOT, 'dcama_mm')) and _ROOT not in sys.path:
    sys.path.append(_ROOT)

from dcama_mm.engine import launch  # noqa: E402  (fills mmseg's registries)
from dcama_mm.engine.hooks import configure_checkpoint_loading  # noqa: E402
from dcama_mm.engine.optimizers import amp_optim_wrapper_cfg  # noqa: E402
from dcama_mm.engine.resume import resolve_resume  # noqa: E402
from dcama_mm.engine.work_dirs import check_new_run  # noqa: E402
from dcama_mm.models.utils.precision import (add_amp_arguments,  # noqa: E402
                                             amp_from_args)


def parse_args() -> argparse.Namespace:
    """Parse the command line (the flags of mmseg's ``tools/train.py``)."""
    parser = launch.tool_arg_parser(
        description='Train a DCAMA few-shot segmentor',
        config_help='train config file path',
        work_dir_help='the dir to save logs and checkpoints (default: '
        './work_dirs/<config name>)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume training: from the newest intact checkpoint in the '
        'work dir when no path is given, else from the given checkpoint')
    parser.add_argument(
        '--force',
        action='store_true',
        help='start a new run in a work dir that holds the checkpoints of an '
        'earlier run: they are moved into <work dir>/previous_<time>/ first '
        '(without --force or --resume such a work dir is refused)')
    parser.add_argument(
        '--load-partial',
        action='store_true',
        help='fine-tune from checkpoints that fit the model only in part '
        '(load_from, the backbone\'s Pretrained init_cfg): load what fits '
        'and log the rest (default: refuse them; docs/checkpoints.md)')
    add_amp_arguments(parser, 'train')
    return launch.parse_tool_args(parser)


def build_cfg(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line options to it."""
    cfg = launch.load_tool_config(args)
    amp = amp_from_args(args)
    if amp:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
        cfg.optim_wrapper = amp_optim_wrapper_cfg(cfg.optim_wrapper, amp,
                                                  device)
    if args.resume is None and cfg.get('resume'):
        # `resume = True` in the config (or --cfg-options resume=True) takes
        # the same checked path as --resume: from load_from when it is set,
        # else from the newest intact checkpoint of the work dir
        args.resume = cfg.get('load_from') or 'auto'
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    configure_checkpoint_loading(
        cfg, partial=getattr(args, 'load_partial', False))
    return cfg


def resolve_run(cfg: Config, args: argparse.Namespace) -> Optional[str]:
    """Decide what the run resumes (nothing in the work dir changes).

    ``--resume`` is resolved to an intact checkpoint
    (:func:`dcama_mm.engine.resume.resolve_resume`); ``--force`` with
    ``--resume`` is refused.

    Returns:
        str, optional: The checkpoint the run resumes from.
    """
    if getattr(args, 'force', False) and args.resume is not None:
        raise ValueError(
            '--force starts a new run and --resume continues one: give only '
            'one of them.')
    return resolve_resume(cfg, args.resume)


def protect_earlier_run(cfg: Config,
                        args: argparse.Namespace,
                        resumed: Optional[str],
                        move: bool = True) -> None:
    """Refuse a new run into a work dir holding checkpoints unless
    ``--force``, which moves them aside (with ``move``; else only checked)
    (:func:`dcama_mm.engine.work_dirs.check_new_run`)."""
    check_new_run(
        cfg,
        resume=resumed is not None,
        force=getattr(args, 'force', False),
        nothing_to_resume=args.resume is not None,
        move=move)


def prepare_run(cfg: Config, args: argparse.Namespace) -> None:
    """:func:`resolve_run`, then :func:`protect_earlier_run` (for callers
    that build the Runner themselves; ``main`` moves an earlier run aside
    only once the Runner is built)."""
    protect_earlier_run(cfg, args, resolve_run(cfg, args))


def main() -> None:
    args = parse_args()
    cfg = build_cfg(args)
    resumed = resolve_run(cfg, args)
    # refused before anything is built; with --force, the earlier run is
    # moved aside once the Runner (the model, every component) is built
    runner = launch.build_runner(
        cfg,
        args.launcher,
        launch.check_train_config,
        prepare=lambda: protect_earlier_run(cfg, args, resumed, move=False))
    protect_earlier_run(cfg, args, resumed)
    completed = False
    try:
        runner.train()
        completed = True
    finally:
        launch.finish_distributed(completed)
    print_log(
        f'Training finished; checkpoints and logs are in '
        f'{osp.abspath(runner.work_dir)}',
        logger='current')


if __name__ == '__main__':
    main()
