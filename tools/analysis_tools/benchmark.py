# Copyright (c) dcama_mm contributors. All rights reserved.
"""Speed, memory and FLOPs of a few-shot segmentor, per episode.

Builds the model of a config with random weights (no checkpoint and no
dataset are read: the backbone's ``init_cfg`` is dropped), feeds it random
normalised episodes and prints:

- the per-episode latency (min / median over ``--repeat`` runs after
  ``--warmup`` runs) and the episodes per second, of inference
  (``predict_logits`` under :func:`torch.no_grad`, eval mode) or, with
  ``--train``, of a training step (forward, cross-entropy, backward through
  the head, SGD step);
- the time of the frozen backbone and of the head, measured separately;
- the peak memory: the peak RSS of this process on the CPU (the process
  builds only this one configuration, and the peak is read right after the
  timed runs), ``torch.cuda.max_memory_allocated`` on a GPU;
- the FLOPs per episode (backbone and head, counted with
  :class:`torch.utils.flop_counter.FlopCounterMode`: matrix products,
  convolutions and attention; element-wise operations are not counted),
  the achieved GFLOP/s, and the rate of a 2048^3 fp32 matrix product on
  the same device, so that the distance to the hardware limit is visible;
- the machine (CPU model or GPU, threads, torch version).

Example::

    python tools/analysis_tools/benchmark.py \\
        configs/_base_/models/dcama_swinb.py --shots 1 --repeat 3
    python tools/analysis_tools/benchmark.py \\
        configs/_base_/models/dcama_swinb.py --train \\
        --cfg-options model.decode_head.attn_impl=naive

Run one configuration per invocation so that the peak RSS is that
configuration's. ``--out FILE.json`` also writes the figures.
"""
import argparse
import contextlib
import copy
import json
import os
import platform
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from torch import Tensor
from torch.utils import flop_counter

GiB = 1024**3
_AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def parse_args(args: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Latency, throughput, peak memory and FLOPs of a '
        'few-shot segmentor per episode (random weights and inputs).')
    parser.add_argument('config', help='model config file')
    parser.add_argument(
        '--shots', type=int, default=1, help='support images K per episode')
    parser.add_argument(
        '--batch', type=int, default=1, help='episodes per forward pass')
    parser.add_argument(
        '--size',
        type=int,
        nargs=2,
        default=[384, 384],
        metavar=('H', 'W'),
        help='network input size')
    parser.add_argument(
        '--device', default='cpu', help='cpu or cuda (or cuda:N)')
    parser.add_argument(
        '--train',
        action='store_true',
        help='time a training step instead of inference')
    parser.add_argument(
        '--repeat', type=int, default=3, help='timed runs')
    parser.add_argument(
        '--warmup', type=int, default=1, help='runs before the timed ones')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch CPU threads (default: torch\'s default)')
    parser.add_argument(
        '--amp',
        choices=tuple(_AMP_DTYPES),
        default=None,
        help='autocast to this dtype (default: fp32)')
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
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value, e.g. '
        'model.decode_head.attn_impl=naive')
    return parser.parse_args(args)


# ----------------------------------------------------------------------
# machine
# ----------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> Dict[str, object]:
    """Describe the machine the figures come from.

    Args:
        device (torch.device): The device that runs the model.

    Returns:
        dict: ``cpu``, ``cpu_count``, ``threads``, ``torch``, ``device`` and,
        on a GPU, ``gpu``.
    """
    info: Dict[str, object] = dict(
        cpu=_cpu_model(),
        cpu_count=os.cpu_count(),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        device=str(device))
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
    return info


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_runs(fn: Callable[[], object], repeat: int, warmup: int,
              device: torch.device) -> List[float]:
    """Seconds of ``repeat`` calls of ``fn`` after ``warmup`` calls.

    Args:
        fn (callable): The work to time.
        repeat (int): Timed calls.
        warmup (int): Untimed calls before.
        device (torch.device): Synchronised around each call (GPU).

    Returns:
        list[float]: The time of each timed call, in seconds.
    """
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def matmul_gflops(device: torch.device,
                  n: int = 2048,
                  repeat: int = 3) -> float:
    """Rate of an ``n^3`` fp32 matrix product on ``device`` (best of runs).

    Args:
        device (torch.device): Where to multiply.
        n (int): Matrix size. Defaults to 2048.
        repeat (int): Timed products. Defaults to 3.

    Returns:
        float: GFLOP/s (``2 n^3`` FLOPs per product).
    """
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device)
    b = torch.randn(n, n, generator=gen).to(device)
    best = min(time_runs(lambda: a @ b, repeat, 1, device))
    return 2 * n**3 / best / 1e9


# ----------------------------------------------------------------------
# memory
# ----------------------------------------------------------------------
def current_rss() -> int:
    """Resident set size of this process now, in bytes (0 if unknown)."""
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError, IndexError):
        return 0


def peak_rss() -> int:
    """Peak resident set size of this process so far, in bytes."""
    try:
        import resource
    except ImportError:  # not on Unix
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # kilobytes on Linux, bytes on macOS
    return int(peak) if platform.system() == 'Darwin' else int(peak) * 1024


# ----------------------------------------------------------------------
# FLOPs
# ----------------------------------------------------------------------
def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args,
                   out_shape=None, **kwargs) -> int:
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_sdpa_backward_flop(grad_out_shape, query_shape, key_shape,
                            value_shape, *args, out_shape=None,
                            **kwargs) -> int:
    return flop_counter.sdpa_backward_flop_count(grad_out_shape,
                                                 query_shape, key_shape,
                                                 value_shape)


def _onednn_linear_flop(input_shape,
                        weight_shape,
                        *args,
                        out_shape=None,
                        **kwargs) -> int:
    rows = 1
    for size in input_shape[:-1]:
        rows *= size
    return 2 * rows * weight_shape[0] * weight_shape[1]


def _flop_formulas() -> Dict[object, Callable]:
    """Formulas for kernels FlopCounterMode does not know (CPU attention,
    oneDNN linear)."""
    aten = torch.ops.aten
    formulas = {}
    if hasattr(torch.ops.mkldnn, '_linear_pointwise'):
        formulas[torch.ops.mkldnn._linear_pointwise] = \
            _onednn_linear_flop
    for name, fn in (('_scaled_dot_product_flash_attention_for_cpu',
                      _cpu_sdpa_flop),
                     ('_scaled_dot_product_flash_attention_for_cpu_backward',
                      _cpu_sdpa_backward_flop)):
        if hasattr(aten, name):
            formulas[getattr(aten, name)] = fn
    return formulas


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn`` (matmuls, convolutions, attention).

    Args:
        fn (callable): The work to count.

    Returns:
        int: Floating-point operations (a multiply-add counts 2).
    """
    counter = flop_counter.FlopCounterMode(
        display=False, custom_mapping=_flop_formulas())
    with counter:
        fn()
    return int(counter.get_total_flops())


# ----------------------------------------------------------------------
# model and episodes
# ----------------------------------------------------------------------
def build_model(cfg: Config, device: torch.device) -> nn.Module:
    """Build ``cfg.model`` with random weights on ``device``.

    The backbone's ``init_cfg`` (a pretrained file) is dropped, so nothing
    is read from disk.

    Args:
        cfg (Config): A config with a ``model`` (a few-shot segmentor).
        device (torch.device): Where to put the model.

    Returns:
        nn.Module: The model (eval mode).
    """
    from mmseg.registry import MODELS
    if 'model' not in cfg:
        raise ValueError(
            f'The config {cfg.filename!r} has no `model`; pass a model '
            'config such as configs/_base_/models/dcama_swinb.py.')
    model_cfg = copy.deepcopy(cfg.model)  # the config is not changed
    if 'backbone' in model_cfg:
        model_cfg.backbone.init_cfg = None
    model = MODELS.build(model_cfg)
    if not hasattr(model, 'predict_logits'):
        raise ValueError(
            f'benchmark.py times few-shot segmentors with predict_logits '
            f'(e.g. FewShotSegmentor), got {type(model).__name__} from '
            f'{cfg.filename!r}.')
    return model.to(device).eval()


def make_episodes(batch: int, shots: int, size: Sequence[int],
                  device: torch.device,
                  seed: int = 0) -> Dict[str, Tensor]:
    """Random normalised episodes with blob-like masks.

    Args:
        batch (int): Episodes B.
        shots (int): Supports K per episode.
        size (Sequence[int]): ``(H, W)``.
        device (torch.device): Device of the tensors.
        seed (int): Random seed. Defaults to 0.

    Returns:
        dict: ``query_imgs`` ``[B, 3, H, W]``, ``support_imgs``
        ``[B, K, 3, H, W]``, ``support_masks`` ``[B, K, H, W]`` (0/1 float)
        and ``query_masks`` ``[B, H, W]`` (long).
    """
    h, w = size
    gen = torch.Generator().manual_seed(seed)
    query = torch.randn(batch, 3, h, w, generator=gen)
    supports = torch.randn(batch, shots, 3, h, w, generator=gen)
    # masks: a random rectangle per image (~1/4 of the area on average)
    masks = torch.zeros(batch, shots + 1, h, w)
    corners = torch.rand(batch, shots + 1, 2, generator=gen)
    for b in range(batch):
        for k in range(shots + 1):
            y0, x0 = int(corners[b, k, 0] * h / 2), int(corners[b, k, 1] * w /
                                                        2)
            masks[b, k, y0:y0 + h // 2, x0:x0 + w // 2] = 1
    return dict(
        query_imgs=query.to(device),
        support_imgs=supports.to(device),
        support_masks=masks[:, 1:].contiguous().to(device),
        query_masks=masks[:, 0].long().to(device))


def _data_samples(episodes: Dict[str, Tensor]) -> list:
    from mmseg.structures import SegDataSample
    samples = []
    for i in range(episodes['query_imgs'].shape[0]):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=episodes['query_masks'][i][None])
        sample.set_data(
            dict(
                support_imgs=episodes['support_imgs'][i],
                support_masks=episodes['support_masks'][i]))
        samples.append(sample)
    return samples


def _split_features(feats, batch: int, shots: int):
    """Backbone features of ``cat(queries, supports)`` -> query, support."""
    query = tuple([f[:batch] for f in stage] for stage in feats)
    support = tuple([
        f[batch:].reshape(batch, shots, *f.shape[1:]) for f in stage
    ] for stage in feats)
    return query, support


def speed_options(model: nn.Module) -> Dict[str, object]:
    """The speed switches of a built segmentor, as they are in effect.

    Args:
        model (nn.Module): The segmentor.

    Returns:
        dict: e.g. ``{'cpu_backbone_batch_size': 1, 'backbone.attn_impl':
        'sdpa', ..., 'decode_head.attn_impl': 'fused'}``.
    """
    options = {}
    for name in ('cpu_backbone_batch_size', 'cpu_backbone_workers'):
        if hasattr(model, name):
            options[name] = getattr(model, name)
    for name in ('attn_impl', 'linear_impl', 'channels_last'):
        if hasattr(model.backbone, name):
            options[f'backbone.{name}'] = getattr(model.backbone, name)
    head = model.decode_head
    attentions = getattr(head, 'attentions', None)
    if attentions:
        for name in ('attn_impl', 'linear_impl', 'fast_dropout'):
            if hasattr(attentions[0], name):
                options[f'decode_head.{name}'] = getattr(attentions[0], name)
    if hasattr(head, 'mixer_impl'):
        options['decode_head.mixer_impl'] = head.mixer_impl
    return options


# ----------------------------------------------------------------------
# the benchmark
# ----------------------------------------------------------------------
def run_benchmark(cfg: Config,
                  shots: int = 1,
                  batch: int = 1,
                  size: Sequence[int] = (384, 384),
                  device: str = 'cpu',
                  train: bool = False,
                  repeat: int = 3,
                  warmup: int = 1,
                  amp: Optional[str] = None,
                  channels_last: bool = False,
                  flops: bool = True,
                  matmul_size: int = 2048) -> Dict[str, object]:
    """Time, measure and count one configuration.

    Call it once per process when the peak RSS matters: the CPU figure is
    the peak of the whole process, read right after the timed runs.

    Args:
        cfg (Config): Config with a few-shot segmentor ``model``.
        shots (int): Supports K per episode. Defaults to 1.
        batch (int): Episodes per forward pass. Defaults to 1.
        size (Sequence[int]): Input ``(H, W)``. Defaults to (384, 384).
        device (str): ``'cpu'`` or ``'cuda[:N]'``. Defaults to ``'cpu'``.
        train (bool): Time a training step instead of inference.
            Defaults to False.
        repeat (int): Timed runs. Defaults to 3.
        warmup (int): Untimed runs before. Defaults to 1.
        amp (str, optional): ``'bf16'`` or ``'fp16'`` autocast. Defaults to
            None (fp32).
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
    if shots < 1 or batch < 1 or repeat < 1 or warmup < 0:
        raise ValueError('--shots, --batch and --repeat must be >= 1 and '
                         f'--warmup >= 0, got shots={shots}, batch={batch}, '
                         f'repeat={repeat}, warmup={warmup}.')
    if len(size) != 2 or min(size) < 32:
        raise ValueError(f'--size must be H W (>= 32 each), got {size}.')
    if amp is not None and amp not in _AMP_DTYPES:
        raise ValueError(f'--amp must be one of {tuple(_AMP_DTYPES)}, got '
                         f'{amp!r}.')
    dev = torch.device(device)
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'--device {device}: CUDA is not available here; '
                         'use --device cpu.')
    torch.manual_seed(0)
    model = build_model(cfg, dev)
    episodes = make_episodes(batch, shots, size, dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        episodes['query_imgs'] = episodes['query_imgs'].contiguous(
            memory_format=torch.channels_last)

    def autocast():
        if amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=dev.type, dtype=_AMP_DTYPES[amp])

    query, sup_imgs, sup_masks = (episodes['query_imgs'],
                                  episodes['support_imgs'],
                                  episodes['support_masks'])
    all_imgs = torch.cat((query, sup_imgs.flatten(0, 1)))
    head = model.decode_head
    scaler = None
    if train:
        model.train()
        samples = _data_samples(episodes)
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError('--train: the model has no trainable '
                             'parameters.')
        optimizer = torch.optim.SGD(
            params, lr=1e-3, momentum=0.9, nesterov=True, weight_decay=1e-4)
        if amp == 'fp16':
            scaler = torch.amp.GradScaler(dev.type)

        def step_on(loss_fn: Callable[[], Dict[str, Tensor]]) -> None:
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                losses = loss_fn()
            loss = sum(v for k, v in losses.items() if 'loss' in k)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()

        def episode() -> None:
            step_on(lambda: model.loss(query, samples))
    else:

        def episode() -> None:
            with torch.no_grad(), autocast():
                model.predict_logits(query, sup_imgs, sup_masks)

    if dev.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(dev)
    rss_built = current_rss()
    times = time_runs(episode, repeat, warmup, dev)
    if dev.type == 'cuda':
        peak = torch.cuda.max_memory_allocated(dev)
        memory_kind = 'torch.cuda.max_memory_allocated'
    else:
        peak = peak_rss()
        memory_kind = 'process peak RSS'

    # backbone and head separately (after the peak was read)
    def backbone() -> tuple:
        with torch.no_grad(), autocast():
            return model.extract_feat(all_imgs)

    q_feats, s_feats = _split_features(backbone(), batch, shots)
    head_inputs = (q_feats, s_feats, sup_masks)
    if train:

        def head_run() -> None:
            step_on(lambda: head.loss_by_feat(head(head_inputs), samples))
    else:

        def head_run() -> None:
            with torch.no_grad(), autocast():
                head(head_inputs)

    backbone_times = time_runs(backbone, repeat, min(warmup, 1), dev)
    head_times = time_runs(head_run, repeat, min(warmup, 1), dev)

    results: Dict[str, object] = dict(
        config=cfg.filename,
        model=f'{type(model).__name__}({type(model.backbone).__name__} + '
        f'{type(head).__name__})',
        options={k: repr(v)
                 for k, v in speed_options(model).items()},
        mode='train' if train else 'inference',
        shots=shots,
        batch=batch,
        size=list(size),
        precision=amp or 'fp32',
        channels_last=channels_last,
        repeat=repeat,
        warmup=warmup,
        machine=machine_info(dev),
        times=times,
        latency_min=min(times) / batch,
        latency_median=statistics.median(times) / batch,
        episodes_per_s=batch / statistics.median(times),
        backbone_median=statistics.median(backbone_times) / batch,
        head_median=statistics.median(head_times) / batch,
        memory_kind=memory_kind,
        peak_memory=peak,
        rss_after_build=rss_built)
    if flops:
        backbone_flops = count_flops(backbone)
        head_flops = count_flops(head_run)
        total = backbone_flops + head_flops
        results.update(
            flops_backbone=backbone_flops / batch,
            flops_head=head_flops / batch,
            flops=total / batch,
            gflops_per_s=total / statistics.median(times) / 1e9,
            matmul_size=matmul_size,
            matmul_gflops_per_s=matmul_gflops(dev, matmul_size))
    return results


def format_report(r: Dict[str, object]) -> str:
    """Human-readable lines of the figures of :func:`run_benchmark`.

    Args:
        r (dict): The figures.

    Returns:
        str: The report.
    """
    m = r['machine']
    where = (f"GPU {m['gpu']}" if 'gpu' in m else
             f"CPU {m['cpu']} ({m['cpu_count']} cores)")
    options = ', '.join(f'{k}={v}'
                        for k, v in r['options'].items()) or 'defaults'
    what = ('training step (forward + CE + backward through the head + '
            'SGD step)' if r['mode'] == 'train' else
            'inference (predict_logits, no_grad)')
    lines = [
        f"machine    : {where}, {m['threads']} torch threads, torch "
        f"{m['torch']}, device {m['device']}",
        f"model      : {r['model']} from {r['config']}",
        f'options    : {options}',
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
    if not os.path.isfile(opts.config):
        raise FileNotFoundError(
            f'Config file {opts.config!r} not found; pass a model config '
            'such as configs/_base_/models/dcama_swinb.py.')
    if opts.threads is not None:
        if opts.threads < 1:
            raise ValueError(f'--threads must be >= 1, got {opts.threads}.')
        torch.set_num_threads(opts.threads)
    cfg = Config.fromfile(opts.config)
    if opts.cfg_options:
        cfg.merge_from_dict(opts.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import dcama_mm  # noqa: F401  (registers the models)
    results = run_benchmark(
        cfg,
        shots=opts.shots,
        batch=opts.batch,
        size=tuple(opts.size),
        device=opts.device,
        train=opts.train,
        repeat=opts.repeat,
        warmup=opts.warmup,
        amp=opts.amp,
        channels_last=opts.channels_last,
        flops=not opts.no_flops,
        matmul_size=opts.matmul_size)
    for line in format_report(results).splitlines():
        print_log(line, logger='current')
    if opts.out:
        out_dir = os.path.dirname(os.path.abspath(opts.out))
        os.makedirs(out_dir, exist_ok=True)
        with open(opts.out, 'w') as f:
            json.dump(results, f, indent=2)
        print_log(f'Figures written to {opts.out}', logger='current')
    return results


if __name__ == '__main__':
    main()
