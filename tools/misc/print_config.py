# Copyright (c) dcama_mm contributors. All rights reserved.
"""Print the resolved config (mmseg's ``print_config.py``): ``_base_``
files merged, ``--cfg-options`` applied.

Examples::

    python tools/misc/print_config.py configs/dcama_swinb_coco_fold0.py
    python tools/misc/print_config.py CONFIG \\
        --cfg-options test_dataloader.dataset.shots=5 --out resolved.py
"""
import argparse
import os
import os.path as osp
import sys
from typing import Optional, Sequence

from mmengine.config import Config, DictAction

# Running from a source checkout without installing: make `dcama_mm`
# importable (an installed / editable package wins, it comes first).
_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isdir(osp.join(_ROOT, 'dcama_mm')) and _ROOT not in sys.path:
    sys.path.append(_ROOT)


def parse_args(args: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='Print the resolved config')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value, e.g. '
        'test_dataloader.dataset.shots=5')
    parser.add_argument(
        '--out',
        help='also write the resolved config to this .py file; an existing '
        'file is refused unless --force')
    parser.add_argument(
        '--force', action='store_true', help='overwrite the --out file')
    opts = parser.parse_args(args)
    # Imported here so that --help answers without loading torch.
    from dcama_mm.utils.output_files import check_output_option
    check_output_option(parser, opts.out, opts.force, suffix='.py')
    return opts


def main(args: Optional[Sequence[str]] = None) -> Config:
    """Run the tool; returns the resolved config."""
    opts = parse_args(args)
    if not osp.isfile(opts.config):
        raise FileNotFoundError(
            f'config: the file "{opts.config}" does not exist.')
    # Imported here so that --help answers without loading torch.
    from dcama_mm.engine.option_checks import merge_cfg_options
    cfg = merge_cfg_options(Config.fromfile(opts.config), opts.cfg_options)
    sys.stdout.write(f'Config:\n{cfg.pretty_text}\n')
    if opts.out is not None:
        os.makedirs(osp.dirname(osp.abspath(opts.out)), exist_ok=True)
        cfg.dump(opts.out)
        sys.stdout.write(f'Resolved config written to '
                         f'{osp.abspath(opts.out)}\n')
    return cfg


if __name__ == '__main__':
    main()
