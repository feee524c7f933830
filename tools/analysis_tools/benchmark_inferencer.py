"""Time FewShotInferencer with and without reusing the support features.

``FewShotInferencer`` encodes a support set once and reuses its backbone
features for every query; without the reuse, every batch runs the backbone
over its queries *and* a copy of the supports per query (plain
``predict_logits``). This tool segments the same N queries both ways, checks
that the masks are identical, and prints the times::

    python tools/analysis_tools/benchmark_inferencer.py \\
        configs/_base_/models/dcama_r50.py --num-queries 16 --shots 1 5

Without a checkpoint the model has random weights, which does not change
the timing. Images are random arrays of ``--query-size``; nothing is read
or written.
"""
import argparse
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from dcama_mm.analysis import add_size_argument, synchronize
from dcama_mm.analysis.inferencer_bench import (build_inferencer,
                                                inferencer_bench_parser,
                                                log_report)


def parse_args(args: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = inferencer_bench_parser(
        'Time few-shot inference of N queries with and without reusing the '
        'encoded supports (the best of --repeat runs counts).',
        num_queries=16,
        repeat=1)
    parser.add_argument(
        '--shots',
        type=int,
        nargs='+',
        default=[1, 5],
        help='numbers of supports K to time')
    add_size_argument(parser, '--query-size', (480, 640),
                      'size of the random query and support images')
    return parser.parse_args(args)


def benchmark(inferencer,
              num_queries: int,
              shots: int,
              batch_size: int = 4,
              query_size: Sequence[int] = (480, 640),
              repeat: int = 1,
              seed: int = 0) -> Dict[str, float]:
    """Segment N random queries with and without support reuse.

    Args:
        inferencer (FewShotInferencer): The inferencer to time.
        num_queries (int): Number of queries N.
        shots (int): Number of supports K.
        batch_size (int): Queries per batch. Defaults to 4.
        query_size (Sequence[int]): (h, w) of the random images.
            Defaults to (480, 640).
        repeat (int): Timed runs of each variant; the fastest counts.
            Defaults to 1.
        seed (int): Seed of the random images. Defaults to 0.

    Returns:
        dict: ``reuse_s`` (support encoding included), ``no_reuse_s``,
        ``saving`` (fraction of the time saved) and ``max_prob_diff``
        (largest foreground-probability difference between the two), plus
        ``masks_equal`` (1.0 when all masks are identical, else 0.0).
    """
    rng = np.random.default_rng(seed)
    h, w = query_size
    queries = [
        rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        for _ in range(num_queries)
    ]
    support_imgs = [
        rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(shots)
    ]
    support_masks = []
    for _ in range(shots):
        mask = np.zeros((h, w), np.uint8)
        mask[h // 4:3 * h // 4, w // 4:3 * w // 4] = 1
        support_masks.append(mask)
    device = inferencer.device

    # warm-up (allocator, kernels)
    inferencer(
        queries[:1], support_imgs=support_imgs, support_masks=support_masks)

    reuse_times: List[float] = []
    no_reuse_times: List[float] = []
    for _ in range(max(repeat, 1)):
        synchronize(device)
        start = time.perf_counter()
        reused = inferencer(
            queries,
            support_imgs=support_imgs,
            support_masks=support_masks,
            batch_size=batch_size,
            return_probs=True)
        synchronize(device)
        reuse_times.append(time.perf_counter() - start)

        start = time.perf_counter()
        recomputed = inferencer(
            queries,
            batch_size=batch_size,
            return_probs=True,
            reuse_supports=False)
        synchronize(device)
        no_reuse_times.append(time.perf_counter() - start)

    masks_equal = all(
        np.array_equal(a['sem_seg'], b['sem_seg'])
        for a, b in zip(reused['predictions'], recomputed['predictions']))
    max_diff = max(
        float(np.abs(a['fg_prob'] - b['fg_prob']).max())
        for a, b in zip(reused['predictions'], recomputed['predictions']))
    reuse_s, no_reuse_s = min(reuse_times), min(no_reuse_times)
    return dict(
        reuse_s=reuse_s,
        no_reuse_s=no_reuse_s,
        saving=1 - reuse_s / no_reuse_s,
        max_prob_diff=max_diff,
        masks_equal=float(masks_equal))


def format_table(rows: List[Dict[str, float]], num_queries: int) -> str:
    """Format the results of :func:`benchmark` as a text table.

    Args:
        rows (list[dict]): Results with an extra ``shots`` key.
        num_queries (int): Number of queries N.

    Returns:
        str: The table.
    """
    lines = [
        '| K | N | with reuse (s) | without reuse (s) | per query with / '
        'without (s) | time saved | speed-up | masks identical |',
        '|---|---|---|---|---|---|---|---|'
    ]
    for row in rows:
        lines.append(
            f"| {int(row['shots'])} | {num_queries} | {row['reuse_s']:.2f} | "
            f"{row['no_reuse_s']:.2f} | "
            f"{row['reuse_s'] / num_queries:.3f} / "
            f"{row['no_reuse_s'] / num_queries:.3f} | "
            f"{100 * row['saving']:.0f}% | "
            f"{row['no_reuse_s'] / row['reuse_s']:.2f}x | "
            f"{'yes' if row['masks_equal'] else 'NO'} "
            f"(max prob diff {row['max_prob_diff']:.1e}) |")
    return '\n'.join(lines)


def main(args: Optional[Sequence[str]] = None) -> str:
    """Run the benchmark and log its table.

    Args:
        args (Sequence[str], optional): Arguments (without the program
            name). Defaults to None: ``sys.argv[1:]``.

    Returns:
        str: The printed table.
    """
    opts = parse_args(args)
    if opts.num_queries < 1 or opts.batch_size < 1 or min(opts.shots) < 1:
        raise ValueError('--num-queries, --batch-size and --shots must be '
                         '>= 1.')
    inferencer = build_inferencer(opts)
    rows = []
    for shots in opts.shots:
        row = benchmark(
            inferencer,
            opts.num_queries,
            shots,
            batch_size=opts.batch_size,
            query_size=opts.query_size,
            repeat=opts.repeat)
        row['shots'] = shots
        rows.append(row)
    return log_report(
        opts, inferencer,
        f'{opts.query_size[0]}x{opts.query_size[1]}',
        format_table(rows, opts.num_queries),
        before=[f'network size {inferencer.img_size[0]}x'
                f'{inferencer.img_size[1]}'],
        after=[f'best of {opts.repeat}'])


if __name__ == '__main__':
    main()
