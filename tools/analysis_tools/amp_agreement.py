# Copyright (c) dcama_mm contributors. All rights reserved.
"""Does mixed precision keep DCAMA's answers? fp32 against autocast.

With a checkpoint: the config's test episodes (its test dataloader and
evaluator, as ``tools/test.py``), each predicted in fp32 and under
``--amp-dtype``; prints both mIoU / FB-IoU, the per-pixel agreement of the
predictions, the lowest agreement of one episode and the largest logit
difference. Without one (``--random``): a model config with random
weights on random normalised episodes, the argmax agreement.

Examples::

    python tools/analysis_tools/amp_agreement.py \\
        configs/dcama_synthetic_demo.py work_dirs/demo/best.pth --shots 5
    python tools/analysis_tools/amp_agreement.py \\
        configs/_base_/models/dcama_swinb.py --random 2 --size 384 384
"""
import argparse
import json
import os
import sys
from typing import Dict, Optional, Sequence

from mmengine.logging import print_log

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
if os.path.isdir(os.path.join(_ROOT, 'dcama_mm')) and _ROOT not in sys.path:
    sys.path.append(_ROOT)

from dcama_mm.analysis import (add_size_argument, analysis_parser,  # noqa
                               load_analysis_config, set_threads)
from dcama_mm.analysis.amp_agreement import (  # noqa: E402
    agreement_on_random_episodes, agreement_on_test_set)
from dcama_mm.apis import init_model  # noqa: E402
from dcama_mm.models.utils.precision import AMP_DTYPE_CHOICES  # noqa: E402
from dcama_mm.utils.output_files import (  # noqa: E402
    check_output_option, open_output_file)


def parse_args(args: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = analysis_parser(
        'fp32 against mixed precision on the same episodes: mIoU both, '
        'per-pixel agreement of the predictions.',
        device='cpu',
        threads=None)
    parser.add_argument(
        'checkpoint', nargs='?', help='checkpoint (omit with --random)')
    parser.add_argument(
        '--amp-dtype',
        choices=AMP_DTYPE_CHOICES,
        default='auto',
        help='autocast dtype (auto: bfloat16 on the CPU, float16 on CUDA)')
    parser.add_argument(
        '--shots', type=int, default=None,
        help='supports per episode (default: the config\'s)')
    parser.add_argument(
        '--max-batches', type=int, default=None,
        help='stop after this many test batches (default: all)')
    parser.add_argument(
        '--random', type=int, default=None, metavar='N',
        help='random weights (model config) on N random episodes')
    add_size_argument(parser, '--size', (384, 384),
                      'input size of --random episodes')
    parser.add_argument(
        '--out',
        help='also write the figures to this JSON; an existing file is '
        'refused unless --force')
    parser.add_argument(
        '--force', action='store_true', help='overwrite the --out file')
    opts = parser.parse_args(args)
    check_output_option(parser, opts.out, opts.force, suffix='.json')
    if (opts.checkpoint is None) == (opts.random is None):
        parser.error('give a checkpoint (test episodes) or --random N '
                     '(random weights), not both or neither')
    return opts


def format_figures(r: Dict[str, object]) -> str:
    """The printed lines."""
    lines = [
        f"precision  : fp32 against {r['dtype']} autocast, "
        f"{r['episodes']} episodes, {r['pixels']} pixels",
        f"agreement  : {r['pixel_agreement']:.5f} of the pixels "
        f"(lowest episode {r['min_episode_agreement']:.5f}); largest "
        f"|logit difference| {r['max_logit_diff']:.4f}",
    ]
    if 'metrics_fp32' in r:
        for key in ('mIoU', 'FB-IoU'):
            ref, amp = r['metrics_fp32'][key], r['metrics_amp'][key]
            lines.append(f'{key:<11}: fp32 {ref:.4f}, {r["dtype"]} '
                         f'{amp:.4f}, difference {amp - ref:+.4f}')
    return '\n'.join(lines)


def main(args: Optional[Sequence[str]] = None) -> Dict[str, object]:
    """Run the tool; returns the figures it printed."""
    opts = parse_args(args)
    cfg = load_analysis_config(opts.config, opts.cfg_options)
    set_threads(opts.threads)
    if opts.shots is not None:
        cfg.test_dataloader.dataset.shots = opts.shots
    model = init_model(cfg, opts.checkpoint, device=opts.device)
    if opts.random is not None:
        figures = agreement_on_random_episodes(
            model, opts.amp_dtype, opts.random, opts.shots or 1,
            tuple(opts.size))
    else:
        figures = agreement_on_test_set(model, cfg, opts.amp_dtype,
                                        opts.max_batches)
    figures.update(config=opts.config, checkpoint=opts.checkpoint)
    for line in format_figures(figures).splitlines():
        print_log(line, logger='current')
    if opts.out:
        with open_output_file(opts.out) as f:
            json.dump(figures, f, indent=2, default=str)
    return figures


if __name__ == '__main__':
    main()
