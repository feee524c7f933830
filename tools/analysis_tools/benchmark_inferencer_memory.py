"""Memory of FewShotInferencer over many queries of mixed sizes.

Writes N query images of random sizes (each side in ``--min-size`` ..
``--max-size``; every tenth at ``--max-size`` x ``--max-size``, every
seventh a PNG, the others JPEGs) into a temporary folder, segments the
folder as ``tools/infer.py`` does (masks and overlays written to a
temporary output folder, ``return_predictions=False``), samples the
process's resident memory (VmRSS) after every batch, and prints the
curve's start, peak and end and the number of masks written::

    python tools/analysis_tools/benchmark_inferencer_memory.py \\
        configs/dcama_synthetic_demo.py --num-queries 500 --batch-size 4

Without a checkpoint the model has random weights, which does not change
the memory. ``--keep-predictions`` keeps every prediction for the returned
dict (the API's default), to see what that costs. Everything written is
deleted at the end.
"""
import argparse
import os
import os.path as osp
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from dcama_mm.analysis.inferencer_bench import (build_inferencer,
                                                inferencer_bench_parser,
                                                log_report)
from dcama_mm.apis import FewShotInferencer


def rss_mib() -> float:
    """The resident memory of this process (``/proc/self/status`` VmRSS),
    in MiB; the peak so far (``getrusage``) where /proc is missing."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_queries(folder: str, num: int, min_size: int, max_size: int,
                  seed: int = 0) -> List[Sequence[int]]:
    """Write ``num`` smooth random images of mixed sizes; their (h, w)."""
    rng = np.random.default_rng(seed)
    sizes = []
    for i in range(num):
        h, w = ((max_size, max_size) if i % 10 == 9 else
                rng.integers(min_size, max_size + 1, 2).tolist())
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        ext = '.png' if i % 7 == 6 else '.jpg'
        cv2.imwrite(osp.join(folder, f'q{i:04d}{ext}'), img)
        sizes.append((h, w))
    return sizes


def measure(inferencer: FewShotInferencer, query_dir: str, out_dir: str,
            support: str, mask: str, batch_size: int,
            keep_predictions: bool = False,
            overlays: bool = True) -> Dict[str, object]:
    """Segment the folder, sampling VmRSS after each batch.

    Returns:
        dict: ``rss`` (MiB after each batch), ``before`` (MiB before the
        call), ``masks`` (mask files written), ``failed``, ``seconds``.
    """
    curve: List[float] = []
    preprocess = inferencer.preprocess

    def sampled(*args, **kwargs):
        for batch in preprocess(*args, **kwargs):
            yield batch
            # the batch has been predicted and written
            curve.append(rss_mib())

    inferencer.preprocess = sampled
    before = rss_mib()
    start = time.perf_counter()
    try:
        result = inferencer(
            query_dir,
            support_imgs=[support],
            support_masks=[mask],
            batch_size=batch_size,
            out_dir=out_dir,
            img_out_dir='vis' if overlays else '',
            return_predictions=keep_predictions)
    finally:
        inferencer.preprocess = preprocess
    seconds = time.perf_counter() - start
    return dict(
        rss=curve,
        before=before,
        masks=len(os.listdir(osp.join(out_dir, 'pred'))),
        failed=len(result['failed']),
        seconds=seconds)


def summary(run: Dict[str, object], num_queries: int) -> str:
    """The curve's figures as text."""
    rss = np.asarray(run['rss'])
    first = max(1, len(rss) // 10)
    tenths = ', '.join(f'{v:.0f}' for v in rss[np.linspace(
        0, len(rss) - 1, 11).astype(int)])
    return '\n'.join([
        f'batches {len(rss)}, masks written {run["masks"]} of '
        f'{num_queries}, failed {run["failed"]}, {run["seconds"]:.0f} s',
        f'RSS (MiB): before {run["before"]:.0f}, after batch 1 '
        f'{rss[0]:.0f}, peak {rss.max():.0f} (batch '
        f'{int(rss.argmax()) + 1}), end {rss[-1]:.0f}',
        f'after the first {first} batches: max {rss[:first].max():.0f}; '
        f'later: max {rss[first:].max() if len(rss) > first else 0:.0f}, '
        f'end - max of the first = {rss[-1] - rss[:first].max():+.0f}',
        f'curve at 0%, 10%, ..., 100% of the batches: {tenths}',
    ])


def parse_args(args: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = inferencer_bench_parser(
        'Resident memory of FewShotInferencer over N queries of mixed '
        'sizes written to a folder.',
        num_queries=500,
        before_img_size=[('--min-size', int, 200, 'smallest query side'),
                         ('--max-size', int, 4000, 'largest query side')])
    parser.add_argument('--keep-predictions', action='store_true',
                        help='keep every prediction (the API default)')
    parser.add_argument('--no-overlay', action='store_true',
                        help='write only the masks')
    return parser.parse_args(args)


def main(args: Optional[Sequence[str]] = None) -> str:
    """Run the measurement and log its figures; return them."""
    opts = parse_args(args)
    if min(opts.num_queries, opts.batch_size, opts.min_size) < 1 or \
            opts.max_size < opts.min_size:
        raise ValueError('--num-queries, --batch-size and --min-size must be '
                         '>= 1 and --max-size >= --min-size.')
    inferencer = build_inferencer(opts)
    with tempfile.TemporaryDirectory() as tmp:
        query_dir = osp.join(tmp, 'queries')
        os.makedirs(query_dir)
        write_queries(query_dir, opts.num_queries, opts.min_size,
                      opts.max_size)
        support, mask = osp.join(tmp, 'support.jpg'), osp.join(
            tmp, 'mask.png')
        write_queries(tmp, 1, 480, 480)
        os.rename(osp.join(tmp, 'q0000.jpg'), support)
        square = np.zeros((480, 480), np.uint8)
        square[120:360, 120:360] = 255
        cv2.imwrite(mask, square)
        run = measure(inferencer, query_dir, osp.join(tmp, 'out'), support,
                      mask, opts.batch_size, opts.keep_predictions,
                      not opts.no_overlay)
    return log_report(
        opts, inferencer, f'{opts.min_size}..{opts.max_size} px',
        summary(run, opts.num_queries),
        after=[f'predictions '
               f'{"kept" if opts.keep_predictions else "not kept"}',
               f'overlays {"no" if opts.no_overlay else "yes"}'])


if __name__ == '__main__':
    main()
