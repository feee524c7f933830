# Copyright (c) dcama_mm contributors. All rights reserved.
"""Plot training curves from one or more runs' ``scalars.json`` (mmseg's
``analyze_logs.py``).

mmengine writes the logs to ``<work_dir>/<timestamp>/vis_data/
scalars.json``; training scalars (``loss``, ``loss_ce``, ``acc_seg``,
``lr``, ...) are drawn over iterations, validation metrics (``mIoU``,
``FB-IoU``) at the end of each epoch. One panel per key; every run is a
curve of each panel.

Examples::

    python tools/analysis_tools/analyze_logs.py \\
        work_dirs/dcama_synthetic_demo/*/vis_data/scalars.json \\
        --keys loss mIoU FB-IoU --out curves.png
    # two runs, per epoch, own labels
    python tools/analysis_tools/analyze_logs.py run1/scalars.json \\
        run2/scalars.json --keys mIoU --x epoch --legend lr1e-3 lr1e-4 \\
        --out miou.png
"""
import argparse
import os
import os.path as osp
from typing import Dict, Optional, Sequence

from mmengine.logging import print_log

from dcama_mm.analysis.log_curves import X_AXES, load_scalar_log, plot_curves


def parse_args(args: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Plot training curves from scalars.json logs')
    parser.add_argument(
        'json_logs', nargs='+',
        help='scalars.json files (or their <timestamp> / vis_data folders)')
    parser.add_argument(
        '--keys', nargs='+', default=['mIoU'],
        help='the scalars to plot, one panel each (default: mIoU)')
    parser.add_argument(
        '--x', choices=X_AXES, default='iter',
        help='the x axis (default: iter)')
    parser.add_argument('--title', help='the title of the figure')
    parser.add_argument(
        '--legend', nargs='+',
        help='one label per log and key (log 1\'s keys, then log 2\'s, ...);'
        ' default: the key, preceded by the run name for several logs')
    parser.add_argument(
        '--out', help='write the figure to this file (.png, .pdf, ...) '
        'instead of showing it')
    return parser.parse_args(args)


def main(args: Optional[Sequence[str]] = None) -> Dict[str, tuple]:
    """Run the tool; returns the curves, ``label -> (xs, ys)``."""
    opts = parse_args(args)
    logs = [load_scalar_log(path) for path in opts.json_logs]
    if opts.out:
        folder = osp.dirname(osp.abspath(opts.out))
        os.makedirs(folder, exist_ok=True)
    figure, series = plot_curves(
        logs, opts.keys, out=opts.out, legend=opts.legend, x=opts.x,
        title=opts.title)
    for label, (xs, ys) in series.items():
        print_log(f'{label}: {len(xs)} points, last {ys[-1]:.4g} at '
                  f'{opts.x} {xs[-1]:g}', logger='current')
    if opts.out:
        print_log(f'Curves written to {osp.abspath(opts.out)}',
                  logger='current')
    else:
        import matplotlib.pyplot as plt
        plt.show()
    return series


if __name__ == '__main__':
    main()
