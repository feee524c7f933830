# Copyright (c) dcama_mm contributors. All rights reserved.
"""Export a DCAMA checkpoint to ONNX: a support-encoder graph and a query
graph (see :mod:`dcama_mm.deploy.onnx_export`), checked on onnxruntime.

Writes to OUT_DIR ``support_encoder.onnx``, ``query_segmentor.onnx``,
``deploy.json`` (opset, size, tensor names) and ``config.py`` (the resolved
config, whose test pipeline ``ONNXFewShotPredictor`` uses). Unless
``--no-verify``, it runs the graphs on onnxruntime for a random episode of
``--shots`` supports and compares the logits with PyTorch's.

An OUT_DIR that already holds any of these files (an earlier export) is
refused before the model is built, naming them; ``--force`` overwrites
them.

Examples::

    python tools/deployment/pytorch2onnx.py \\
        configs/dcama_swinb_coco_fold0.py dcama_swinb_fold0.pth \\
        deploy/dcama_swinb --size 384 384 --shots 1
"""
import argparse
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmengine.logging import print_log

from dcama_mm.analysis import (add_size_argument, analysis_parser,
                               load_analysis_config)
from dcama_mm.apis import init_model
from dcama_mm.deploy import OPSET, ONNXFewShotSegmentor, export_onnx
from dcama_mm.deploy.onnx_export import check_export_dir
from dcama_mm.models.utils.checkpoint_checks import load_fitting_checkpoint


def parse_args(args: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = analysis_parser(
        'Export a few-shot segmentor to ONNX (support encoder + query '
        'graph)', config_help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('out_dir', help='folder for the graphs')
    parser.add_argument(
        '--shots', type=int, default=1,
        help='K of the random episode the graphs are checked with on '
        'onnxruntime; the graphs take any K (default: 1)')
    add_size_argument(parser, '--size', (384, 384),
                      'network size H W, multiples of 32')
    parser.add_argument('--opset', type=int, default=OPSET,
                        help=f'ONNX opset (default: {OPSET})')
    parser.add_argument('--no-verify', action='store_true',
                        help='do not compare onnxruntime with PyTorch')
    parser.add_argument('--force', action='store_true',
                        help='overwrite the files of an earlier export in '
                        'OUT_DIR')
    return parser.parse_args(args)


def main(args: Optional[Sequence[str]] = None) -> Dict[str, object]:
    """Run the tool; returns the written files and the largest logit
    difference (``max_abs_diff``, None with ``--no-verify``)."""
    opts = parse_args(args)
    if opts.shots < 1:
        raise ValueError(f'--shots must be >= 1, got {opts.shots}.')
    # before the model is built: never lose an earlier export (export_onnx
    # checks the same way, naming force=True; this names --force)
    check_export_dir(opts.out_dir, opts.force)
    cfg = load_analysis_config(opts.config, opts.cfg_options)
    if 'model' not in cfg:
        raise ValueError(f'config: {opts.config} has no model.')
    model = init_model(cfg, None, device='cpu')
    # every weight, with its shape: a deployed model is never half-loaded
    checkpoint = load_fitting_checkpoint(model, opts.checkpoint, opts.config)
    files = export_onnx(
        model, opts.out_dir, size=tuple(opts.size), opset=opts.opset,
        dataset_meta=checkpoint.get('meta', {}).get('dataset_meta'),
        force=opts.force)
    result: Dict[str, object] = dict(files=files, max_abs_diff=None)
    if opts.no_verify:
        return result
    gen = torch.Generator().manual_seed(1)
    h, w = opts.size
    supports = torch.randn(opts.shots, 3, h, w, generator=gen)
    masks = (torch.rand(opts.shots, h, w, generator=gen) > 0.5).float()
    query = torch.randn(2, 3, h, w, generator=gen)
    with torch.no_grad():
        expected = model.predict_logits(
            query, supports=model.encode_supports(supports, masks))
    runtime = ONNXFewShotSegmentor(opts.out_dir)
    got = runtime.predict_logits(query,
                                 runtime.encode_supports(supports, masks))
    diff = float((got - expected).abs().max())
    result['max_abs_diff'] = diff
    close = np.allclose(got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)
    print_log(
        f'onnxruntime vs PyTorch, {opts.shots}-shot, 2 queries: largest '
        f'logit difference {diff:.2e} ' +
        ('(within 1e-4)' if close else '(MORE than 1e-4)'),
        logger='current')
    if not close:
        raise RuntimeError(
            f'The ONNX graphs in {opts.out_dir} differ from PyTorch by '
            f'{diff:.2e}; please report this with the config.')
    return result


if __name__ == '__main__':
    main()
