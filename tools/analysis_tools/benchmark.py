# Copyright (c) dcama_mm contributors. All rights reserved.
"""Speed, memory and FLOPs of a few-shot segmentor, per episode.

Builds the model of a config with random weights (no checkpoint and no
dataset are read), feeds it random normalised episodes and prints:

- the speed policy (``DCAMA_MM_FAST_PATHS`` and ``model.fast_paths``) and
  the fast paths the model's modules take for these inputs;
- the per-episode latency (min / median over ``--repeat`` runs after
  ``--warmup`` runs) and the episodes per second, of inference
  (``predict_logits`` under :func:`torch.no_grad`, eval mode) or, with
  ``--train``, of a training step (forward, cross-entropy, backward,
  optimizer step through the config's ``optim_wrapper``, or the reference
  SGD for a model-only config; see
  :func:`dcama_mm.analysis.benchmark_optim_wrapper`);
- the time of the backbone and of the head, measured separately;
- the peak memory: the peak RSS of this process on the CPU (the process
  builds only this one configuration, and the peak is read right after the
  timed runs), ``torch.cuda.max_memory_allocated`` on a GPU;
- the FLOPs per episode (backbone and head, counted with
  :func:`dcama_mm.analysis.count_flops`: matrix products, convolutions and
  attention; element-wise operations are not counted), the achieved
  GFLOP/s, and the rate of a 2048^3 fp32 matrix product on the same
  device, so that the distance to the hardware limit is visible;
- the machine (CPU model or GPU, threads, torch version).

Example::

    python tools/analysis_tools/benchmark.py \\
        configs/_base_/models/dcama_swinb.py --shots 1 --repeat 3
    # the straightforward computation (every fast path off)
    python tools/analysis_tools/benchmark.py \\
        configs/_base_/models/dcama_swinb.py --train \\
        --cfg-options model.fast_paths=False

Run one configuration per invocation so that the peak RSS is that
configuration's. ``--out FILE.json`` also writes the figures.
"""
import argparse
import functools
import json
import os
import statistics
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log

from dcama_mm.analysis import (
    add_size_argument, analysis_parser, autocast_context,
    benchmark_optim_wrapper, count_flops, current_rss, describe_optim_wrapper,
    fast_path_setting, load_analysis_config, machine_info, make_episodes,
    matmul_gflops, peak_memory, reset_peak_memory, set_threads, time_runs,
    train_step)
from dcama_mm.apis import init_model
from dcama_mm.models.utils.fast_paths import ENV_VAR, fast_path_report
from dcama_mm.models.utils.precision import (AmpSetting, add_amp_arguments,
                                             amp_from_args, dtype_name,
                                             resolve_amp_dtype, set_amp)

GiB = 1024**3


def parse_args(args: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = analysis_parser(
        'Latency, throughput, peak memory and FLOPs of a few-shot '
        'segmentor per episode (random weights and inputs).',
        config_help='model config file',
        device='cpu',
        repeat=3,
        warmup=1,
        threads=None)
    parser.add_argument(
        '--shots', type=int, default=1, help='support images K per episode')
    parser.add_argument(
        '--batch', type=int, default=1, help='episodes per forward pass')
    add_size_argument(parser, '--size', (384, 384), 'network input size')
    parser.add_argument(
        '--train',
        action='store_true',
        help='time a training step instead of inference')
    add_amp_arguments(parser, 'time the model')
    parser.add_argument(
        '--channels-last',
        action='store_true',
        help='channels-last memory format for the model and the images')
    parser.add_argument(
        '--no-flops',
        action='store_true',
        help='skip counting the FLOPs (and the matmul rate)')
    parser.add_argument(
        '--matmul-size',
        type=int,
        default=2048,
        help='n of the n^3 fp32 matmul that measures the device rate')
    parser.add_argument(
        '--out', default=None, help='also write the figures to this JSON')
    return parser.parse_args(args)


def build_model(cfg: Config, device: torch.device) -> nn.Module:
    """Build ``cfg.model`` with random weights on ``device`` (eval mode).

    By :func:`dcama_mm.apis.init_model` without a checkpoint: nothing is
    read (only a Runner would load the backbone's ``init_cfg``) and ``cfg``
    is not modified.
    """
    if 'model' not in cfg:
        raise ValueError(
            f'The config {cfg.filename!r} has no `model`; pass a model '
            'config such as configs/_base_/models/dcama_swinb.py.')
    model = init_model(cfg, device=str(device))
    if not all(
            hasattr(model, name)
            for name in ('predict_logits', '_encode_episodes')):
        raise ValueError(
            f'benchmark.py times few-shot segmentors with predict_logits '
            f'(e.g. FewShotSegmentor), got {type(model).__name__} from '
            f'{cfg.filename!r}.')
    return model


def _check_arguments(shots: int, batch: int, size: Sequence[int], repeat: int,
                     warmup: int, device: str) -> torch.device:
    if shots < 1 or batch < 1 or repeat < 1 or warmup < 0:
        raise ValueError('--shots, --batch and --repeat must be >= 1 and '
                         f'--warmup >= 0, got shots={shots}, batch={batch}, '
                         f'repeat={repeat}, warmup={warmup}.')
    if len(size) != 2 or min(size) < 32:
        raise ValueError(f'--size must be H W (>= 32 each), got {size}.')
    dev = torch.device(device)
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'--device {device}: CUDA is not available here; '
                         'use --device cpu.')
    return dev


def run_benchmark(cfg: Config,
                  shots: int = 1,
                  batch: int = 1,
                  size: Sequence[int] = (384, 384),
                  device: str = 'cpu',
                  train: bool = False,
                  repeat: int = 3,
                  warmup: int = 1,
                  amp: AmpSetting = None,
                  channels_last: bool = False,
                  flops: bool = True,
                  matmul_size: int = 2048) -> Dict[str, object]:
    """Time, measure and count one configuration.

    Call it once per process when the peak RSS matters: the CPU figure is
    the peak of the whole process, read right after the timed runs.

    Args:
        cfg (Config): Config with a few-shot segmentor ``model`` (not
            modified).
        shots (int): Supports K per episode. Defaults to 1.
        batch (int): Episodes per forward pass. Defaults to 1.
        size (Sequence[int]): Input ``(H, W)``. Defaults to (384, 384).
        device (str): ``'cpu'`` or ``'cuda[:N]'``. Defaults to ``'cpu'``.
        train (bool): Time a training step instead of inference.
            Defaults to False.
        repeat (int): Timed runs. Defaults to 3.
        warmup (int): Untimed runs before. Defaults to 1.
        amp (bool | str, optional): Mixed precision, as ``--amp
            --amp-dtype``: False/None (fp32), True/``'auto'`` (bfloat16 on
            the CPU, float16 on CUDA), ``'bfloat16'`` or ``'float16'``; set
            as the model's ``test_cfg.amp`` (inference) or through the
            optimizer wrapper (``--train``). Defaults to None (fp32).
        channels_last (bool): Channels-last model and images. Defaults to
            False.
        flops (bool): Count FLOPs and measure the matmul rate. Defaults to
            True.
        matmul_size (int): Size n of the ``n^3`` fp32 matrix product that
            measures the device's rate. Defaults to 2048.

    Returns:
        dict: All figures (times in seconds, memory in bytes, FLOPs per
        episode); see :func:`format_report`.
    """
    dev = _check_arguments(shots, batch, size, repeat, warmup, device)
    amp_dtype = resolve_amp_dtype(amp, dev, '--amp-dtype')
    torch.manual_seed(0)
    model = build_model(cfg, dev)
    set_amp(model, amp or False)
    episodes = make_episodes(batch, shots, size, dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        episodes['query_imgs'] = episodes['query_imgs'].contiguous(
            memory_format=torch.channels_last)
    setting = fast_path_setting(cfg)
    report = fast_path_report(model, dev, amp_dtype or torch.float32, train)
    query, sup_imgs, sup_masks, samples = (episodes['query_imgs'],
                                           episodes['support_imgs'],
                                           episodes['support_masks'],
                                           episodes['data_samples'])
    head = model.decode_head

    autocast = functools.partial(autocast_context, dev, amp)

    def inference(fn):

        def run():
            with torch.no_grad(), autocast():
                return fn()

        return run

    if train:
        model.train()
        optim_wrapper = benchmark_optim_wrapper(cfg, model, amp)

        def step_on(loss_fn):
            return lambda: train_step(model, optim_wrapper, loss_fn, autocast)

        episode = step_on(lambda: model.loss(query, samples))
    else:
        episode = inference(
            lambda: model.predict_logits(query, sup_imgs, sup_masks))

    print_log(
        f'timing {repeat} runs after {warmup} warm-up ...', logger='current')
    reset_peak_memory(dev)
    rss_built = current_rss()
    times = time_runs(episode, repeat, warmup, dev)
    peak, memory_kind = peak_memory(dev)

    # backbone and head separately (after the peak was read)
    backbone = inference(lambda: model._encode_episodes(query, sup_imgs))
    head_inputs = (*backbone(), sup_masks)
    if train:
        head_run = step_on(
            lambda: head.loss_by_feat(head(head_inputs), samples))
    else:
        head_run = inference(lambda: head(head_inputs))
    backbone_times = time_runs(backbone, repeat, min(warmup, 1), dev)
    head_times = time_runs(head_run, repeat, min(warmup, 1), dev)

    median = statistics.median(times)
    results: Dict[str, object] = dict(
        config=cfg.filename,
        model=f'{type(model).__name__}({type(model.backbone).__name__} + '
        f'{type(head).__name__})',
        fast_paths_enabled=setting['enabled'],
        fast_paths=report,
        options={
            k: v
            for k, v in setting.items() if k != 'enabled'
        },
        mode='train' if train else 'inference',
        shots=shots,
        batch=batch,
        size=list(size),
        precision=dtype_name(amp_dtype),
        channels_last=channels_last,
        repeat=repeat,
        warmup=warmup,
        machine=machine_info(dev),
        times=times,
        latency_min=min(times) / batch,
        latency_median=median / batch,
        episodes_per_s=batch / median,
        backbone_median=statistics.median(backbone_times) / batch,
        head_median=statistics.median(head_times) / batch,
        memory_kind=memory_kind,
        peak_memory=peak,
        rss_after_build=rss_built)
    if train:
        results['optimizer'] = describe_optim_wrapper(cfg, optim_wrapper)
    if flops:
        print_log('counting FLOPs ...', logger='current')
        backbone_flops = count_flops(backbone)
        head_flops = count_flops(head_run)
        total = backbone_flops + head_flops
        results.update(
            flops_backbone=backbone_flops / batch,
            flops_head=head_flops / batch,
            flops=total / batch,
            gflops_per_s=total / median / 1e9,
            matmul_size=matmul_size,
            matmul_gflops_per_s=matmul_gflops(dev, matmul_size))
    return results


def _fast_path_lines(r: Dict[str, object]) -> List[str]:
    """The policy line and one line per fast path taken."""
    env = r['options'][ENV_VAR]
    lines = [
        f"fast paths : {'on' if r['fast_paths_enabled'] else 'off'} "
        f"({ENV_VAR}={'unset' if env is None else env}, "
        f"model.fast_paths={r['options']['model.fast_paths']})"
    ]
    for path, count in r['fast_paths'].items():
        lines.append(f'             {path} (x{count})')
    if r['fast_paths_enabled'] and not r['fast_paths']:
        lines.append('             (none applies to these inputs)')
    return lines


def format_report(r: Dict[str, object]) -> str:
    """Human-readable lines of the figures of :func:`run_benchmark`.

    Args:
        r (dict): The figures.

    Returns:
        str: The report.
    """
    m = r['machine']
    where = (f"GPU {m['gpu']}"
             if 'gpu' in m else f"CPU {m['cpu']} ({m['cpu_count']} cores)")
    what = (f"training step (forward + CE + backward + {r['optimizer']} "
            'step)'
            if r['mode'] == 'train' else 'inference (predict_logits, no_grad)')
    lines = [
        f"machine    : {where}, {m['threads']} torch threads, torch "
        f"{m['torch']}, device {m['device']}",
        f"model      : {r['model']} from {r['config']}",
        *_fast_path_lines(r),
        f"episode    : batch {r['batch']}, {r['shots']}-shot, "
        f"{r['size'][0]}x{r['size'][1]}, {r['precision']}"
        f"{', channels-last' if r['channels_last'] else ''}, {what}",
        f"latency    : min {r['latency_min']:.3f} s, median "
        f"{r['latency_median']:.3f} s per episode ({r['repeat']} runs after "
        f"{r['warmup']} warm-up)",
        f"throughput : {r['episodes_per_s']:.3f} episodes/s",
        f"breakdown  : backbone {r['backbone_median']:.3f} s, head "
        f"{r['head_median']:.3f} s per episode (medians, timed apart)",
        f"memory     : {r['peak_memory'] / GiB:.2f} GiB "
        f"({r['memory_kind']})" +
        (f", RSS after building the model {r['rss_after_build'] / GiB:.2f} "
         'GiB' if r['memory_kind'] == 'process peak RSS' else ''),
    ]
    if 'flops' in r:
        lines += [
            f"FLOPs      : {r['flops'] / 1e9:.1f} GFLOP per episode "
            f"(backbone {r['flops_backbone'] / 1e9:.1f}, head "
            f"{r['flops_head'] / 1e9:.1f})",
            f"achieved   : {r['gflops_per_s']:.1f} GFLOP/s; fp32 "
            f"{r['matmul_size']}^3 "
            f"matmul on this device: {r['matmul_gflops_per_s']:.1f} GFLOP/s "
            f"({r['gflops_per_s'] / r['matmul_gflops_per_s']:.0%} of it)",
        ]
    return '\n'.join(lines)


def main(args: Optional[Sequence[str]] = None) -> Dict[str, object]:
    """Run the tool; returns the figures it printed."""
    opts = parse_args(args)
    cfg = load_analysis_config(
        opts.config,
        opts.cfg_options,
        expected='a model config such as '
        'configs/_base_/models/dcama_swinb.py')
    set_threads(opts.threads)
    results = run_benchmark(
        cfg,
        shots=opts.shots,
        batch=opts.batch,
        size=tuple(opts.size),
        device=opts.device,
        train=opts.train,
        repeat=opts.repeat,
        warmup=opts.warmup,
        amp=amp_from_args(opts),
        channels_last=opts.channels_last,
        flops=not opts.no_flops,
        matmul_size=opts.matmul_size)
    for line in format_report(results).splitlines():
        print_log(line, logger='current')
    if opts.out:
        os.makedirs(os.path.dirname(os.path.abspath(opts.out)), exist_ok=True)
        with open(opts.out, 'w') as f:
            json.dump(results, f, indent=2)
        print_log(f'Figures written to {opts.out}', logger='current')
    return results


if __name__ == '__main__':
    main()
