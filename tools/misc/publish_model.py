# Copyright (c) dcama_mm contributors. All rights reserved.
"""Prepare a checkpoint for release (mmseg's ``publish_model.py``).

Keeps the weights (``state_dict``) and ``meta`` (epoch, iteration, seed,
dataset metainfo, ...), drops the optimizer and the rest of the training
state (parameter schedulers, message hub, the random states that
``RandomStateHook`` keeps in ``meta`` for resuming), saves the result and
appends the first 8 hex digits of the file's sha256 to its name:
``OUT = dcama_r50_fold0.pth`` gives ``dcama_r50_fold0-<sha256[:8]>.pth``.

Example::

    python tools/misc/publish_model.py \\
        work_dirs/dcama_r50_coco_fold0/best_mIoU_epoch_40.pth \\
        release/dcama_r50_coco_fold0.pth
"""
import argparse
import hashlib
import os
import os.path as osp
from typing import Optional, Sequence

import torch
from mmengine.logging import print_log

#: What a published checkpoint keeps.
KEPT_KEYS = ('state_dict', 'meta')
#: Training state kept in ``meta`` that a published checkpoint drops.
DROPPED_META_KEYS = ('random_states', )


def parse_args(args: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Drop the training state from a checkpoint and name it '
        'by its sha256')
    parser.add_argument('in_file', help='input checkpoint')
    parser.add_argument(
        'out_file', help='output checkpoint (.pth); "-<sha256[:8]>" is '
        'appended to its name')
    return parser.parse_args(args)


def sha256_of(path: str) -> str:
    """The sha256 of a file, in hex."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def save_named_by_sha256(checkpoint: dict, out_file: str) -> str:
    """Save ``checkpoint`` as ``<out_file stem>-<sha256[:8]>.pth``.

    It is written to a temporary file beside ``out_file`` first, so that
    no existing file is touched on the way: neither a file at ``out_file``
    nor the input checkpoint when ``out_file`` names it.

    Returns:
        str: The final file name.
    """
    folder = osp.dirname(osp.abspath(out_file))
    os.makedirs(folder, exist_ok=True)
    # a name of this process (not tempfile's: its 0600 mode would stay
    # with the published file)
    tmp_file = osp.join(folder,
                        f'.{osp.basename(out_file)}.{os.getpid()}.tmp')
    try:
        torch.save(checkpoint, tmp_file)
        final_file = (f'{out_file[:-len(".pth")]}-'
                      f'{sha256_of(tmp_file)[:8]}.pth')
        os.replace(tmp_file, final_file)
    finally:
        if osp.lexists(tmp_file):
            os.remove(tmp_file)
    return final_file


def process_checkpoint(in_file: str, out_file: str) -> str:
    """Write the published checkpoint; returns its final file name.

    Raises:
        FileNotFoundError: ``in_file`` does not exist.
        ValueError: ``in_file`` has no ``state_dict`` (not an mmengine
            checkpoint) or ``out_file`` is not a ``.pth`` name.
    """
    if not osp.isfile(in_file):
        raise FileNotFoundError(
            f'in_file: the checkpoint "{in_file}" does not exist.')
    if not out_file.endswith('.pth'):
        raise ValueError(f'out_file: "{out_file}" must end with .pth.')
    # an mmengine checkpoint holds more than tensors (meta, message hub)
    checkpoint = torch.load(in_file, map_location='cpu', weights_only=False)
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        raise ValueError(
            f'in_file: "{in_file}" has no "state_dict": pass a checkpoint '
            'written by mmengine\'s Runner (tools/train.py) or by '
            'tools/model_converters/dcama2mmseg.py.')
    dropped = sorted(set(checkpoint) - set(KEPT_KEYS))
    published = {k: checkpoint[k] for k in KEPT_KEYS if k in checkpoint}
    meta = published.get('meta')
    if isinstance(meta, dict):
        dropped += [f'meta.{k}' for k in DROPPED_META_KEYS if k in meta]
        published['meta'] = {
            k: v
            for k, v in meta.items() if k not in DROPPED_META_KEYS
        }
    final_file = save_named_by_sha256(published, out_file)
    print_log(
        f'Published {in_file} as {final_file} (dropped: '
        f'{", ".join(dropped) or "nothing"})', logger='current')
    return final_file


def main(args: Optional[Sequence[str]] = None) -> str:
    """Run the tool; returns the published file."""
    opts = parse_args(args)
    return process_checkpoint(opts.in_file, opts.out_file)


if __name__ == '__main__':
    main()
