# Copyright (c) dcama_mm contributors. All rights reserved.
"""Latency per query against an encoded support set: onnxruntime (the
graphs of pytorch2onnx.py) beside PyTorch, same machine, same threads.

Random weights and inputs (no checkpoint needed). The graphs are exported
to OUT_DIR first unless ``--onnx-dir`` names an existing export. PyTorch
runs the model as configured (its fast paths on, as by default);
onnxruntime runs the exported straightforward path.

Example::

    python tools/deployment/benchmark_onnx.py \\
        configs/_base_/models/dcama_swinb.py --shots 1 5 --threads 2 \\
        --onnx-dir work_dirs/onnx_swinb
"""
import os
import os.path as osp
import statistics
import time
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.logging import print_log

from dcama_mm.analysis import (add_size_argument, analysis_parser,
                               load_analysis_config, set_threads)
from dcama_mm.apis import init_model
from dcama_mm.deploy import ONNXFewShotSegmentor, export_onnx
from dcama_mm.deploy.onnx_export import QUERY_GRAPH, check_export_dir


def _median_seconds(fn, repeat: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(args: Optional[Sequence[str]] = None) -> List[Dict[str, float]]:
    """Run the tool; returns one row per K (seconds per query)."""
    parser = analysis_parser(
        'onnxruntime vs PyTorch latency per query (encoded supports)',
        config_help='model config file', repeat=3, warmup=1, threads=2)
    parser.add_argument('--shots', type=int, nargs='+', default=[1, 5])
    add_size_argument(parser, '--size', (384, 384), 'network size H W')
    parser.add_argument('--onnx-dir', default='work_dirs/onnx_benchmark',
                        help='export folder (exported when it has no graphs)')
    parser.add_argument('--force', action='store_true',
                        help='export into --onnx-dir even when it holds '
                        'files of an incomplete earlier export')
    opts = parser.parse_args(args)
    set_threads(opts.threads)
    exporting = not osp.isfile(osp.join(opts.onnx_dir, QUERY_GRAPH))
    if exporting:  # before the model is built, naming this tool's options
        check_export_dir(opts.onnx_dir, opts.force, '--onnx-dir')
    cfg = load_analysis_config(opts.config, opts.cfg_options)
    model = init_model(cfg, None, device='cpu')
    if exporting:
        os.makedirs(opts.onnx_dir, exist_ok=True)
        start = time.perf_counter()
        export_onnx(model, opts.onnx_dir, tuple(opts.size), force=opts.force)
        print_log(f'export: {time.perf_counter() - start:.1f} s',
                  logger='current')
    runtime = ONNXFewShotSegmentor(opts.onnx_dir, threads=opts.threads)
    h, w = opts.size
    gen = torch.Generator().manual_seed(0)
    rows = []
    for shots in opts.shots:
        supports = torch.randn(shots, 3, h, w, generator=gen)
        masks = (torch.rand(shots, h, w, generator=gen) > 0.5).float()
        query = torch.randn(1, 3, h, w, generator=gen)
        with torch.no_grad():
            encoded = model.encode_supports(supports, masks)
            torch_s = _median_seconds(
                lambda: model.predict_logits(query, supports=encoded),
                opts.repeat, opts.warmup)
        onnx_encoded = runtime.encode_supports(supports, masks)
        ort_s = _median_seconds(
            lambda: runtime.predict_logits(query, onnx_encoded), opts.repeat,
            opts.warmup)
        rows.append(dict(shots=shots, pytorch_s=torch_s, onnxruntime_s=ort_s))
        print_log(
            f'{shots}-shot, {h}x{w}, {opts.threads} threads: PyTorch '
            f'{torch_s:.3f} s/query, onnxruntime {ort_s:.3f} s/query',
            logger='current')
    return rows


if __name__ == '__main__':
    main()
