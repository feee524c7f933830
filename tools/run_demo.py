# Copyright (c) dcama_mm contributors. All rights reserved.
"""The demo (`make demo`): train and evaluate a tiny DCAMA on the CPU.

1. Generates a small synthetic dataset in COCO 2014's real format (images +
   ``instances_{train,val}2014.json``) if it is not there, and converts it
   with ``tools/dataset_converters/coco20i.py`` as for the real COCO.
2. Evaluates the untrained model and the trivial all-foreground prediction
   on the held-out (fold 0 test) classes, 1-shot and 5-shot.
3. Trains ``configs/dcama_synthetic_demo.py`` with mmengine's Runner.
4. Evaluates the best checkpoint 1-shot and 5-shot, writes some episode
   pictures, prints the figures side by side and where everything is.

Run again, it trains afresh: what an earlier demo left in the work dir
(checkpoints, logs, pictures, ``demo_results.json``) is first moved into
``<work dir>/previous_<time>/`` and the demo says so (nothing is
overwritten; a stale checkpoint is never reused for new code).

Usage: python tools/run_demo.py [--work-dir DIR] [--data-root DIR]
"""
import argparse
import copy
import glob
import json
import logging
import os
import os.path as osp
import sys
import time
from typing import Dict, List

_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isdir(osp.join(_ROOT, 'dcama_mm')) and _ROOT not in sys.path:
    sys.path.append(_ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import dcama_mm  # noqa: E402,F401
from dcama_mm.datasets.synthetic import make_synthetic_coco  # noqa: E402
from dcama_mm.engine.work_dirs import set_aside  # noqa: E402
from dcama_mm.evaluation.metrics.few_shot_iou_metric import (  # noqa: E402
    few_shot_iou, intersect_and_union_fb)
from mmseg.registry import DATASETS  # noqa: E402

DEMO_CONFIG = osp.join(_ROOT, 'configs', 'dcama_synthetic_demo.py')
CONVERTER = osp.join(_ROOT, 'tools', 'dataset_converters', 'coco20i.py')

#: The synthetic dataset: all 80 COCO classes (fold 0 holds out the 20
#: classes 0, 4, ..., 76), each in ~24 training and ~10 test images. Many
#: training classes matter: with a handful of them the head learns the
#: training classes' look instead of matching query and support.
DATA_SETTINGS = dict(
    num_classes=80, images_per_class=(24, 10), image_size=(64, 96), seed=0)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train and evaluate a tiny DCAMA on synthetic data '
        '(CPU, a few minutes)')
    parser.add_argument(
        '--config', default=DEMO_CONFIG, help='demo config file')
    parser.add_argument(
        '--work-dir',
        default=osp.join(_ROOT, 'work_dirs', 'dcama_synthetic_demo'),
        help='where logs, checkpoints and pictures go')
    parser.add_argument(
        '--data-root',
        default=osp.join(_ROOT, 'data', 'synthetic_coco'),
        help='the synthetic COCO root (generated when missing)')
    parser.add_argument(
        '--max-epochs',
        type=int,
        default=None,
        help='training epochs (default: the config\'s)')
    parser.add_argument(
        '--pictures',
        type=int,
        default=8,
        help='episode pictures written per evaluation')
    return parser.parse_args()


def prepare_data(data_root: str) -> None:
    """Generate and convert the synthetic dataset unless it is complete."""
    index_files = [
        osp.join(data_root, 'annotations_fss', f'{split}_class_index.json')
        for split in ('train2014', 'val2014')
    ]
    if all(osp.isfile(f) for f in index_files):
        print_log(f'Using the synthetic dataset in {data_root}',
                  logger='current')
        return
    print_log(f'Generating a synthetic COCO-format dataset in {data_root}',
              logger='current')
    make_synthetic_coco(data_root, **DATA_SETTINGS)
    import importlib.util
    spec = importlib.util.spec_from_file_location('coco20i_converter',
                                                  CONVERTER)
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)
    converter.main([data_root, '--nproc', '1', '--force'])


def demo_cfg(args: argparse.Namespace) -> Config:
    """The demo config with the data root and work dir of this run."""
    cfg = Config.fromfile(args.config)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = args.data_root
    cfg.work_dir = args.work_dir
    if args.max_epochs is not None:
        if args.max_epochs < 1:
            raise ValueError(
                f'--max-epochs must be >= 1, got {args.max_epochs}.')
        cfg.train_cfg.max_epochs = args.max_epochs
        for scheduler in cfg.param_scheduler:
            scheduler.end = args.max_epochs
    return cfg


def set_aside_earlier_run(work_dir: str) -> str:
    """Move what an earlier demo left in ``work_dir`` into ``previous_*``.

    Everything in ``work_dir`` but the ``previous_*`` folders of still
    earlier runs is moved, so that the new run's checkpoints, logs and
    pictures are alone there (and ``last_checkpoint`` names its own).

    Returns:
        str: The folder the earlier run went into; ``''`` when the work
        dir was empty or missing.
    """
    if not osp.isdir(work_dir):
        return ''
    names = sorted(
        name for name in os.listdir(work_dir)
        if not name.startswith('previous_'))
    if not names:
        return ''
    target = set_aside(work_dir, names)
    print_log(
        f'{work_dir} held an earlier demo run: moved its {len(names)} '
        f'entries (checkpoints, logs, pictures, results) into {target}/ '
        '(delete it when you no longer need it); this demo trains afresh.',
        logger='current')
    return target


def test_cfg(cfg: Config, name: str, shots: int, checkpoint,
             pictures: int) -> Config:
    """A copy of ``cfg`` that tests ``checkpoint`` on ``shots``-shot."""
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = osp.join(cfg.work_dir, name)
    cfg.load_from = checkpoint
    cfg.test_dataloader.dataset.shots = shots
    if pictures > 0:
        cfg.default_hooks.visualization.update(
            draw=True,
            show_dir=f'episodes_{shots}shot',
            interval=1,
            max_episodes=pictures)
    return cfg


def evaluate(cfg: Config, untrained: bool = False) -> Dict[str, float]:
    """Run the test loop of ``cfg``; returns the metrics."""
    runner = Runner.from_cfg(cfg)
    if untrained:
        # the initial weights training starts from (same seed)
        runner.model.init_weights()
    return runner.test()


def all_foreground(cfg: Config, shots: int) -> Dict[str, float]:
    """Metrics of predicting every query pixel as foreground."""
    init_default_scope('mmseg')
    dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    dataset_cfg.shots = shots
    dataset = DATASETS.build(dataset_cfg)
    classes: List[int] = []
    areas = []
    for i in range(len(dataset)):
        sample = dataset[i]['data_samples']
        gt = sample.gt_sem_seg.data
        areas.append(intersect_and_union_fb(torch.ones_like(gt), gt))
        classes.append(sample.class_id)
    stats = few_shot_iou(classes, np.stack(areas),
                         dataset.metainfo['episode_class_ids'])
    return {k: stats[k] for k in ('mIoU', 'FB-IoU', 'num_episodes')}


def main() -> None:
    args = parse_args()
    start = time.time()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    prepare_data(args.data_root)
    cfg = demo_cfg(args)
    earlier = set_aside_earlier_run(cfg.work_dir)
    os.makedirs(cfg.work_dir, exist_ok=True)

    results: Dict[str, Dict[int, Dict[str, float]]] = {}
    results['all-foreground'] = {
        k: all_foreground(cfg, k)
        for k in (1, 5)
    }
    results['untrained'] = {
        k: evaluate(
            test_cfg(cfg, f'untrained_{k}shot', k, None, 0), untrained=True)
        for k in (1, 5)
    }

    train_start = time.time()
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    runner.train()
    train_time = time.time() - train_start
    best = runner.message_hub.get_info('best_ckpt')
    if best is None or not osp.isfile(best):
        best = osp.join(cfg.work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
    best_score = runner.message_hub.get_info('best_score')
    del runner

    results['trained'] = {
        k: evaluate(
            test_cfg(cfg, f'test_{k}shot', k, best, args.pictures))
        for k in (1, 5)
    }
    total = time.time() - start

    dataset_cfg = cfg.test_dataloader.dataset
    lines = [
        '',
        '=' * 72,
        'DCAMA demo: synthetic COCO-20i-format data, fold '
        f'{dataset_cfg.fold} (trained on the other classes, tested on the '
        'held-out ones)',
        f'test: {results["trained"][1]["num_episodes"]} episodes, seed '
        f'{dataset_cfg.seed}, {cfg.test_dataloader.dataset.pipeline[1].scale}'
        ' input',
        '',
        f'{"":26s}{"1-shot mIoU":>12s}{"FB-IoU":>9s}'
        f'{"5-shot mIoU":>14s}{"FB-IoU":>9s}',
    ]
    for name, label in (('all-foreground', 'all-foreground prediction'),
                        ('untrained', 'untrained model'),
                        ('trained', 'trained model (best ckpt)')):
        r1, r5 = results[name][1], results[name][5]
        lines.append(f'{label:26s}{r1["mIoU"]:12.1f}{r1["FB-IoU"]:9.1f}'
                     f'{r5["mIoU"]:14.1f}{r5["FB-IoU"]:9.1f}')
    lines += [
        '',
        f'training: {train_time / 60:.1f} min; whole demo: '
        f'{total / 60:.1f} min',
        f'best checkpoint: {best}'
        + (f' (validation mIoU {best_score:.1f})'
           if best_score is not None else ''),
        f'logs and scalars: {cfg.work_dir}',
        'episode pictures: ' + ', '.join(
            sorted(
                glob.glob(
                    osp.join(cfg.work_dir, 'test_*shot', '*',
                             'episodes_*shot')))),
        f'data: {args.data_root}',
    ]
    if earlier:
        lines.append(f'the earlier demo run: {earlier}')
    lines += [
        '=' * 72,
    ]
    summary_file = osp.join(cfg.work_dir, 'demo_results.json')
    with open(summary_file, 'w') as f:
        json.dump(
            dict(
                results={
                    name: {f'{k}-shot': v
                           for k, v in r.items()}
                    for name, r in results.items()
                },
                best_checkpoint=best,
                train_minutes=train_time / 60,
                total_minutes=total / 60),
            f,
            indent=2)
    lines.insert(-1, f'figures: {summary_file}')
    print('\n'.join(lines))
    trained = results['trained'][1]['mIoU']
    baseline = max(results['untrained'][1]['mIoU'],
                   results['all-foreground'][1]['mIoU'])
    if trained <= baseline:
        print_log(
            f'The trained 1-shot mIoU ({trained:.1f}) is not above the '
            f'baselines ({baseline:.1f}).',
            logger='current',
            level=logging.WARNING)


if __name__ == '__main__':
    main()
