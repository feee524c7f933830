# Copyright (c) dcama_mm contributors. All rights reserved.
"""The command line and set-up shared by the inferencer benchmarks
(``tools/analysis_tools/benchmark_inferencer.py``: time,
``benchmark_inferencer_memory.py``: memory).

Both take a model config, ``--device``, ``--threads``, ``--cfg-options``,
``--checkpoint``, ``--num-queries``, ``--batch-size`` and ``--img-size``,
build a :class:`~dcama_mm.apis.FewShotInferencer` from them and print
their figures under the same kind of header line; each tool adds only its
own options and settings.
"""
import argparse
from typing import Sequence, Tuple

import torch
from mmengine.logging import print_log

from .cli import analysis_parser, set_threads

#: An option as ``(flag, type, default, help)``.
OptionSpec = Tuple[str, type, object, str]


def inferencer_bench_parser(description: str,
                            num_queries: int,
                            before_img_size: Sequence[OptionSpec] = (),
                            **defaults: object) -> argparse.ArgumentParser:
    """A parser with the options both inferencer benchmarks take.

    Args:
        description (str): What the tool does.
        num_queries (int): The default of ``--num-queries``.
        before_img_size (Sequence[OptionSpec]): The tool's own options
            listed between ``--batch-size`` and ``--img-size``.
            Defaults to ().
        **defaults: Further common options of :func:`analysis_parser`
            (``repeat``, ``warmup``) with their defaults; ``--device`` and
            ``--threads`` are always there (default None).

    Returns:
        argparse.ArgumentParser: The parser; add the tool's other options.
    """
    parser = analysis_parser(description, config_help='model config file',
                             device=None, **defaults, threads=None)
    options = [
        ('--checkpoint', str, None, 'checkpoint (default: random)'),
        ('--num-queries', int, num_queries, 'queries N'),
        ('--batch-size', int, 4, 'queries per batch'),
        *before_img_size,
        ('--img-size', int, None,
         'network input size (default: from the config, else 384)'),
    ]
    for flag, kind, default, text in options:
        parser.add_argument(flag, type=kind, default=default, help=text)
    return parser


def build_inferencer(opts: argparse.Namespace):
    """Set ``--threads`` and build the inferencer the options describe.

    Args:
        opts (argparse.Namespace): The parsed options of
            :func:`inferencer_bench_parser`.

    Returns:
        FewShotInferencer: The inferencer (random weights without
        ``--checkpoint``).
    """
    from ..apis import FewShotInferencer
    set_threads(opts.threads)
    return FewShotInferencer(
        opts.config,
        opts.checkpoint,
        device=opts.device,
        img_size=opts.img_size,
        cfg_options=opts.cfg_options)


def log_report(opts: argparse.Namespace,
               inferencer,
               queries: str,
               body: str,
               before: Sequence[str] = (),
               after: Sequence[str] = ()) -> str:
    """Log and return a benchmark's figures under their header line.

    The header reads ``'<config> (<checkpoint or random weights>) on
    <device>, <n> threads, <before...>, <N> queries of <queries>, batch
    size <B>, <after...>'``.

    Args:
        opts (argparse.Namespace): The parsed options.
        inferencer (FewShotInferencer): The measured inferencer.
        queries (str): What the queries are, e.g. ``'480x640'``.
        body (str): The figures (a table, a summary).
        before (Sequence[str]): Settings named before the queries.
            Defaults to ().
        after (Sequence[str]): Settings named after the batch size.
            Defaults to ().

    Returns:
        str: The header and ``body``, as logged.
    """
    weights = opts.checkpoint or 'random weights'
    header = ', '.join([
        f'{opts.config} ({weights}) on {inferencer.device}',
        f'{torch.get_num_threads()} threads', *before,
        f'{opts.num_queries} queries of {queries}',
        f'batch size {opts.batch_size}', *after
    ])
    text = header + '\n' + body
    print_log(text, logger='current')
    return text
