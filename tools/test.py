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
    # the reference code's own test episodes (docs/protocol.md)
    python tools/test.py CONFIG CKPT \
        --cfg-options test_dataloader.dataset.replay_reference=True
    # one test per seed (one model load): per-seed figures, mean, std, 95%
    python tools/test.py CONFIG CKPT --seeds 0 1 2 3 4 --out seeds.json
    bash tools/dist_test.sh CONFIG CKPT 4
    mim test dcama_mm CONFIG --checkpoint CKPT
"""
import argparse
import copy
import json
import math
import os
import os.path as osp
import sys
from typing import Optional

from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.logging import print_log

_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isdir(osp.join(_ROOT, 'dcama_mm')) and _ROOT not in sys.path:
    sys.path.append(_ROOT)

from dcama_mm.engine import launch  # noqa: E402  (fills mmseg's registries)
from dcama_mm.engine.hooks import configure_checkpoint_loading  # noqa: E402
from dcama_mm.evaluation import (format_seed_table,  # noqa: E402
                                 summarize_seed_metrics)
from dcama_mm.evaluation.run_identity import run_identity  # noqa: E402
from dcama_mm.models.utils.precision import (  # noqa: E402
    add_amp_arguments, amp_from_args, apply_amp_to_config)
from dcama_mm.utils.output_files import (  # noqa: E402
    check_output_option, check_picture_option)


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
        'JSON file; an existing file is refused (before any episode) unless '
        '--force')
    parser.add_argument(
        '--force',
        action='store_true',
        help='overwrite the --out file when it exists, and the pictures '
        'of an earlier run in an absolute --show-dir')
    parser.add_argument(
        '--show', action='store_true', help='show the episode pictures')
    parser.add_argument(
        '--show-dir',
        help='directory where one picture per test episode is saved (a '
        'relative path is taken under work_dir/timestamp/; an absolute one '
        'that holds episode pictures is refused unless --force)')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--seeds',
        type=int,
        nargs='+',
        help='test once per seed (the test dataset\'s `seed`), loading the '
        'model once; prints each seed\'s figures, their mean, standard '
        'deviation and 95%% interval (log and --out)')
    add_amp_arguments(parser, 'test')
    args = launch.parse_tool_args(parser)
    check_args(parser, args)
    return args


def check_args(parser: argparse.ArgumentParser,
               args: argparse.Namespace) -> None:
    """Refuse bad ``--seeds`` and ``--out`` the argparse way (one line,
    exit 2), before the Runner is built.

    Every rank checks (only rank 0 writes ``--out``, at the end), so that
    a distributed test is refused as a whole, before any episode.
    """
    seeds = args.seeds
    if seeds is not None:
        if any(seed < 0 for seed in seeds) or len(set(seeds)) != len(seeds):
            parser.error('argument --seeds: expected distinct non-negative '
                         f'integers, got {" ".join(map(str, seeds))}.')
        if args.show or args.show_dir:
            parser.error(
                'argument --seeds: cannot be combined with --show / '
                '--show-dir (the pictures of one seed would overwrite those '
                'of another); draw one seed\'s episodes with --cfg-options '
                'test_dataloader.dataset.seed=N.')
    check_output_option(parser, args.out, args.force, suffix='.json')
    if args.show_dir and osp.isabs(args.show_dir):
        # used as is (a relative one is under work_dir/<timestamp>/)
        check_picture_option(parser, args.show_dir, args.force, '--show-dir')


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
    configure_checkpoint_loading(cfg, testing=True)  # refuse a misfit
    apply_amp_to_config(cfg, amp_from_args(args))
    if args.show or args.show_dir:
        trigger_visualization_hook(cfg, args)
    return cfg


def test_seeds(runner, cfg: Config, seeds: list) -> list:
    """Run the test once per seed with one model load.

    mmengine's Runner has no public way to swap its test dataloader, so the
    test loop is rebuilt from the config for each seed (``_test_dataloader``
    / ``_test_loop``, as ``Runner.test`` builds it), between one
    ``before_run`` / ``after_run`` pair.

    Args:
        runner (Runner): The built Runner.
        cfg (Config): Its config.
        seeds (list[int]): The seeds.

    Returns:
        list[dict]: The metrics of each seed's run.
    """
    per_seed = []
    runner.call_hook('before_run')
    runner.load_or_resume()
    for seed in seeds:
        dataloader = copy.deepcopy(cfg.test_dataloader)
        dataloader.dataset.seed = seed
        runner._test_dataloader = dataloader
        runner._test_loop = runner.build_test_loop(copy.deepcopy(
            cfg.test_cfg))
        print_log(f'--seeds: test episodes of seed {seed}', logger='current')
        per_seed.append(dict(runner.test_loop.run()))
    runner.call_hook('after_run')
    return per_seed


def report_seeds(seeds: list, per_seed: list) -> dict:
    """Log the per-seed figures and their statistics; return the summary."""
    summary = summarize_seed_metrics(per_seed)
    print_log(
        f'Test figures of {len(seeds)} seeds ({summary.get("num_episodes")} '
        'episodes each; +- per seed: bootstrap standard error; 95%: '
        'interval of the mean):\n' +
        format_seed_table(seeds, per_seed, summary),
        logger='current')
    return summary


def _number(value):
    """A metric as a JSON value: a float, None for NaN (one seed's std)."""
    if isinstance(value, (int, float)):
        return None if math.isnan(value) else float(value)
    return value


def write_results(path: str,
                  metrics: dict,
                  cfg: Config,
                  args: argparse.Namespace,
                  per_seed: Optional[list] = None) -> None:
    """Write the metrics and what they were computed on to a JSON file.

    With ``--seeds``, ``metrics`` is the summary over the seeds (means,
    ``_std``, ``_se``, ``_ci95``) and ``per_seed`` lists each run.
    """
    dataset_cfg = cfg.test_dataloader.get('dataset', {}).to_dict()
    dataset_cfg.pop('pipeline', None)
    if args.seeds:
        dataset_cfg['seed'] = list(args.seeds)
    record = dict(
        config=osp.abspath(args.config),
        checkpoint=osp.abspath(args.checkpoint),
        metrics={k: _number(v)
                 for k, v in metrics.items()},
        test_dataset=dataset_cfg,
        test_cfg=cfg.model.get('test_cfg', {}) and dict(cfg.model.test_cfg),
        # what collect_results.py compares between files (model, settings)
        run=run_identity(cfg, args.config, args.checkpoint),
    )
    if per_seed is not None:
        record['per_seed'] = [
            dict(seed=seed, metrics={k: _number(v)
                                     for k, v in m.items()})
            for seed, m in zip(args.seeds, per_seed)
        ]
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(record, f, indent=2, default=str)
    print_log(f'Metrics written to {osp.abspath(path)}', logger='current')


def main() -> None:
    args = parse_args()
    cfg = build_cfg(args)
    runner = launch.build_runner(cfg, args.launcher,
                                 launch.check_test_config)
    per_seed = None
    completed = False
    try:
        if args.seeds:
            per_seed = test_seeds(runner, cfg, args.seeds)
            metrics = report_seeds(args.seeds, per_seed)
        else:
            metrics = runner.test()
        if args.out is not None and is_main_process():
            write_results(args.out, metrics, cfg, args, per_seed)
        completed = True
    finally:
        launch.finish_distributed(completed)


if __name__ == '__main__':
    main()
