"""N-way few-shot segmentation measured on a test split.

Builds N-way episodes from a config's test dataset: a query image that
holds at least N of the split's classes, N of them drawn with the seed, and
for each class K supports (other images of that class). The query's ground
truth is a label map (0 background, n = the n-th class of the episode).
``FewShotInferencer`` segments it with the N support sets at once
(``support_sets``) and, for comparison, each class alone (1-way, its binary
mask against that class's ground truth); the all-foreground prediction of
each class is the trivial baseline. Prints per-class IoU (accumulated over
the episodes, per class) and their mean for the three, and writes them with
``--out``.

Example::

    python tools/analysis_tools/eval_n_way.py \\
        configs/dcama_synthetic_demo.py \\
        work_dirs/dcama_synthetic_demo/best_mIoU_epoch_14.pth --ways 2
"""
import argparse
import json
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from PIL import Image


def device_type(value: str) -> str:
    """``--device``: refused by argparse (with the reason) when it is not
    usable here, e.g. ``cuda`` on a machine without a GPU."""
    from dcama_mm.utils.device import device_argument
    return device_argument(value)


def parse_args(args: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Per-class IoU of N-way few-shot segmentation, beside '
        '1-way and the all-foreground prediction.')
    parser.add_argument('config', help='config with a test_dataloader')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--ways', type=int, default=2, help='classes N')
    parser.add_argument('--shots', type=int, default=1, help='supports K')
    parser.add_argument(
        '--episodes', type=int, default=200, help='episodes at most')
    parser.add_argument('--seed', type=int, default=0, help='episode seed')
    parser.add_argument('--device', default='cpu', type=device_type)
    parser.add_argument(
        '--out', default=None,
        help='JSON of the figures; an existing file is refused unless '
        '--force')
    parser.add_argument(
        '--force', action='store_true', help='overwrite the --out file')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='key=value')
    opts = parser.parse_args(args)
    for option in ('ways', 'shots', 'episodes'):
        if getattr(opts, option) < 1:
            parser.error(f'argument --{option}: must be >= 1, got '
                         f'{getattr(opts, option)}.')
    from dcama_mm.utils.output_files import check_output_option
    check_output_option(parser, opts.out, opts.force, suffix='.json')
    return opts


def n_way_episodes(records: List[dict], class_ids: Sequence[int], ways: int,
                   shots: int, num: int, seed: int) -> List[dict]:
    """Draw N-way episodes from the records of a split.

    Args:
        records (list[dict]): ``img_path``, ``seg_map_path``, ``class_id``
            per (image, class) record.
        class_ids (Sequence[int]): The split's classes.
        ways (int): Classes per episode N.
        shots (int): Supports per class K.
        num (int): Episodes at most (one per query image that has N
            classes with K other images each, in image order).
        seed (int): Seed of the class and support draws.

    Returns:
        list[dict]: ``query`` (img_path), ``classes`` (N class ids),
        ``query_masks`` (N seg_map_paths) and ``supports`` (N lists of K
        records).
    """
    by_image: Dict[str, Dict[int, dict]] = defaultdict(dict)
    by_class: Dict[int, List[dict]] = defaultdict(list)
    for record in records:
        if record['class_id'] in class_ids:
            by_image[record['img_path']][record['class_id']] = record
            by_class[record['class_id']].append(record)
    episodes = []
    rng = np.random.default_rng(seed)
    for img_path in sorted(by_image):
        present = [c for c in sorted(by_image[img_path])
                   if sum(r['img_path'] != img_path
                          for r in by_class[c]) >= shots]
        if len(present) < ways:
            continue
        classes = [int(c) for c in rng.choice(present, ways, replace=False)]
        supports = []
        for c in classes:
            others = [r for r in by_class[c] if r['img_path'] != img_path]
            picks = rng.choice(len(others), shots, replace=False)
            supports.append([others[i] for i in picks])
        episodes.append(
            dict(query=img_path, classes=classes,
                 query_masks=[by_image[img_path][c]['seg_map_path']
                              for c in classes],
                 supports=supports))
        if len(episodes) == num:
            break
    return episodes


def _class_mask(path: str, lut: np.ndarray) -> np.ndarray:
    """A label PNG through a class's lookup table (0/1/255)."""
    return lut[np.asarray(Image.open(path))]


def main(args: Optional[Sequence[str]] = None) -> dict:
    """Run the tool; returns the figures."""
    opts = parse_args(args)
    import dcama_mm  # noqa: F401  (registers the modules)
    from dcama_mm.apis import FewShotInferencer
    from mmseg.registry import DATASETS
    from dcama_mm.engine.option_checks import merge_cfg_options
    cfg = merge_cfg_options(Config.fromfile(opts.config), opts.cfg_options)
    ds_cfg = cfg.test_dataloader.dataset.copy()
    ds_cfg.pipeline = []
    dataset = DATASETS.build(ds_cfg)
    dataset.full_init()
    records = [dataset.get_data_info(i) for i in range(dataset.num_records)]
    class_ids = dataset.metainfo['episode_class_ids']
    names = dataset.metainfo['classes']
    episodes = n_way_episodes(records, class_ids, opts.ways, opts.shots,
                              opts.episodes, opts.seed)
    if not episodes:
        raise ValueError(
            f'No query image of {opts.config!r} holds {opts.ways} of the '
            'test classes with enough other images: lower --ways or '
            '--shots.')
    inferencer = FewShotInferencer(opts.config, opts.checkpoint,
                                   device=opts.device,
                                   cfg_options=opts.cfg_options)
    areas = {k: defaultdict(lambda: np.zeros(2))
             for k in ('n_way', 'one_way', 'all_fg')}
    for episode in episodes:
        gts = [_class_mask(p, np.asarray(dataset.get_seg_lut(c), np.uint8))
               for p, c in zip(episode['query_masks'], episode['classes'])]
        ignore = np.any([g == 255 for g in gts], axis=0)
        sets = {
            names[c]: ([r['img_path'] for r in sup],
                       [_class_mask(r['seg_map_path'],
                                    np.asarray(dataset.get_seg_lut(c),
                                               np.uint8)) == 1
                        for r in sup])
            for c, sup in zip(episode['classes'], episode['supports'])
        }
        labels = inferencer(episode['query'],
                            support_sets=sets)['predictions']['label_map']
        for n, (c, gt) in enumerate(zip(episode['classes'], gts)):
            fg, valid = gt == 1, ~ignore
            one = inferencer(episode['query'], support_imgs=sets[names[c]][0],
                             support_masks=sets[names[c]][1])['predictions']
            for key, pred in (('n_way', labels == n + 1), ('one_way',
                                                           one == 1),
                              ('all_fg', np.ones_like(fg))):
                areas[key][c] += ((pred & fg & valid).sum(),
                                  ((pred | fg) & valid).sum())
    figures = {}
    for key, per_class in areas.items():
        ious = {names[c]: 100 * i / max(u, 1)
                for c, (i, u) in sorted(per_class.items())}
        figures[key] = dict(per_class=ious, mIoU=float(np.mean(
            list(ious.values()))))
    figures.update(episodes=len(episodes), ways=opts.ways, shots=opts.shots,
                   seed=opts.seed, config=opts.config,
                   checkpoint=opts.checkpoint)
    print_log(
        f'{len(episodes)} {opts.ways}-way {opts.shots}-shot episodes; mIoU '
        f"N-way {figures['n_way']['mIoU']:.1f}, 1-way "
        f"{figures['one_way']['mIoU']:.1f}, all-foreground "
        f"{figures['all_fg']['mIoU']:.1f}", logger='current')
    for name in figures['n_way']['per_class']:
        print_log(
            f"  {name:>16}: N-way {figures['n_way']['per_class'][name]:5.1f}"
            f"  1-way {figures['one_way']['per_class'][name]:5.1f}"
            f"  all-fg {figures['all_fg']['per_class'][name]:5.1f}",
            logger='current')
    if opts.out:
        from dcama_mm.utils.output_files import open_output_file
        with open_output_file(opts.out) as f:
            json.dump(figures, f, indent=2)
        print_log(f'Figures written to {osp.abspath(opts.out)}',
                  logger='current')
    return figures


if __name__ == '__main__':
    main()
