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
import json
import os
import os.path as osp
import statistics
import time
from typing import Any, Dict, List, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.logging import print_log

from dcama_mm.analysis import (add_size_argument, analysis_parser,
                               load_analysis_config, set_threads)
from dcama_mm.apis import init_model
from dcama_mm.deploy import ONNXFewShotSegmentor, export_onnx
from dcama_mm.deploy.onnx_export import (CONFIG_FILE, META_FILE,
                                         QUERY_GRAPH, check_export_dir)


def _first_difference(exported: Any, ours: Any, path: str) -> Optional[str]:
    """Where two config values first differ (None: they are equal)."""
    if isinstance(exported, dict) and isinstance(ours, dict):
        for key in sorted(set(exported) | set(ours), key=str):
            if key not in exported or key not in ours:
                side = 'in the export' if key in exported else 'here'
                return f'{path}.{key} is set only {side}'
            found = _first_difference(exported[key], ours[key],
                                      f'{path}.{key}')
            if found:
                return found
        return None
    if isinstance(exported, (list, tuple)) and isinstance(ours,
                                                          (list, tuple)):
        if len(exported) != len(ours):
            return (f'{path} has {len(exported)} items in the export, '
                    f'{len(ours)} here')
        for i, (a, b) in enumerate(zip(exported, ours)):
            found = _first_difference(a, b, f'{path}[{i}]')
            if found:
                return found
        return None
    if exported != ours:
        return f'{path} is {exported!r} in the export, {ours!r} here'
    return None


def _reuse_problem(onnx_dir: str, cfg: Config,
                   size: Sequence[int]) -> Optional[str]:
    """Why the export in ``onnx_dir`` is not of this model at ``size``
    (its size, then the architecture: the backbone, head and data
    preprocessor of its ``config.py``); None when it is."""
    meta_file = osp.join(onnx_dir, META_FILE)
    if not osp.isfile(meta_file):
        return f'it has no {META_FILE}'
    with open(meta_file) as f:
        exported_size = list(json.load(f).get('size') or [])
    if len(exported_size) != 2:
        return f'its {META_FILE} gives no network size'
    if exported_size != list(size):
        return (f'it was exported at {exported_size[0]}x{exported_size[1]},'
                f' not {size[0]}x{size[1]} (--size)')
    config_file = osp.join(onnx_dir, CONFIG_FILE)
    if not osp.isfile(config_file):
        return f'it has no {CONFIG_FILE} to compare the model with'
    exported = Config.fromfile(config_file).get('model', {})
    for part in ('backbone', 'decode_head', 'data_preprocessor'):
        found = _first_difference(
            _plain(exported.get(part)), _plain(cfg.model.get(part)),
            f'model.{part}')
        if found:
            return found
    return None


def _plain(value: Any) -> Any:
    """A config value as plain dicts / lists (ConfigDict -> dict)."""
    return value.to_dict() if hasattr(value, 'to_dict') else value


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
                        'an earlier export (incomplete, or of another model '
                        'or size)')
    opts = parser.parse_args(args)
    set_threads(opts.threads)
    exporting = opts.force or not osp.isfile(
        osp.join(opts.onnx_dir, QUERY_GRAPH))
    if exporting:  # before the model is built, naming this tool's options
        check_export_dir(opts.onnx_dir, opts.force, '--onnx-dir')
    cfg = load_analysis_config(opts.config, opts.cfg_options)
    model = init_model(cfg, None, device='cpu')
    if not exporting:
        problem = _reuse_problem(opts.onnx_dir, model.cfg, opts.size)
        if problem:
            raise ValueError(
                f'--onnx-dir {opts.onnx_dir} holds an export that does not '
                f'fit {opts.config}: {problem}. Its figures would be those '
                'of another model: give another --onnx-dir, or --force to '
                'export this model there.')
    else:
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
