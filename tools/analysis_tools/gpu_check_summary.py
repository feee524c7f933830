# Copyright (c) dcama_mm contributors. All rights reserved.
"""The short text summary of ``gpu_check.json`` (see ``gpu_check.py``)."""
import statistics
from typing import Dict, List, Sequence

#: The precisions the benchmark stages measure.
PRECISIONS = ('fp32', 'bf16', 'fp16')
#: The values of a stage's ``status``.
STATUSES = ('ok', 'failed', 'timeout', 'skipped')
GiB = 1024**3
#: The issue's CPU target: bf16 at most this fraction of fp32's time.
CPU_BF16_TARGET = 0.6


def bf16_ratio(runs: Sequence[Dict[str, object]]) -> Dict[str, object]:
    """bf16 / fp32 of alternated runs: the ratio of the median latencies,
    and each round's own ratio (fp32 and bf16 of one round side by side).

    Args:
        runs: The ``cpu_bf16`` stage's runs (``precision``, ``round``,
            ``status``, ``latency_median_s``).

    Returns:
        dict: ``fp32_s``, ``bf16_s``, ``ratio``, ``round_ratios``,
        ``target`` and ``meets_target`` (None where a precision has no
        successful run).
    """
    medians: Dict[str, List[float]] = dict(fp32=[], bf16=[])
    by_round: Dict[int, Dict[str, float]] = {}
    for run in runs:
        if run['status'] == 'ok' and run['precision'] in medians:
            medians[run['precision']].append(run['latency_median_s'])
            by_round.setdefault(run['round'], {})[run['precision']] = run[
                'latency_median_s']
    if not medians['fp32'] or not medians['bf16']:
        return dict(fp32_s=None, bf16_s=None, ratio=None, round_ratios=[],
                    target=CPU_BF16_TARGET, meets_target=None)
    fp32, bf16 = (statistics.median(medians[p]) for p in ('fp32', 'bf16'))
    ratio = bf16 / fp32
    return dict(
        fp32_s=fp32, bf16_s=bf16, ratio=round(ratio, 4),
        round_ratios=[round(r['bf16'] / r['fp32'], 4)
                      for _, r in sorted(by_round.items())
                      if len(r) == 2],
        target=CPU_BF16_TARGET, meets_target=ratio <= CPU_BF16_TARGET)


def _environment_lines(env: Dict[str, object]) -> List[str]:
    gpu = env.get('gpu') or 'no GPU'
    lines = [
        f"machine    : {gpu}"
        + (f" ({env['gpu_memory_bytes'] / GiB:.0f} GiB, capability "
           f"{env['gpu_capability']})" if env.get('gpu_memory_bytes') else '')
        + f", {env.get('cpu_count')} CPU cores",
        f"CPU        : {env.get('cpu_model')} (capability "
        f"{env.get('cpu_capability')}, native bf16 "
        f"{env.get('cpu_native_bf16')})",
        f"software   : torch {env.get('torch')} (CUDA "
        f"{env.get('torch_cuda')}, cuDNN {env.get('cudnn')}), python "
        f"{env.get('python')}",
    ]
    if env.get('cuda_error'):
        lines.append(f"CUDA       : {env['cuda_error']}")
    return lines


def _run_line(run: Dict[str, object]) -> str:
    what = f"{run['model']} {run['shots']}-shot {run['precision']:>4}"
    if run['status'] != 'ok':
        return f'  {what}: {run["status"]}: {run.get("error")}'
    return (f"  {what}: {run['latency_median_s'] * 1000:8.1f} ms, "
            f"{run['episodes_per_s']:7.2f} episodes/s, "
            f"{run['max_memory_bytes'] / GiB:6.2f} GiB")


def summary_lines(report: Dict[str, object]) -> List[str]:
    """Human-readable lines of a ``gpu_check.json`` report."""
    stages = report['stages']
    lines = [f"gpu_check on {report['device']}"
             + (' (quick: tiny sizes)' if report.get('quick') else '')
             + f", {report.get('wall_s', 0):.0f} s"]
    lines += _environment_lines(report.get('environment', {}))
    if report.get('bundle'):
        lines.append(f"stack      : offline bundle {report['bundle']['path']}"
                     f" (installed in {report['bundle']['install_s']:.0f} s)")
    for name, stage in stages.items():
        status = stage['status']
        head = f"{name:<11}: {status}"
        if stage.get('seconds') is not None:
            head += f" ({stage['seconds']:.0f} s)"
        if status != 'ok' and stage.get('error'):
            head += f": {stage['error']}"
        lines.append(head)
        if name == 'tests' and stage.get('counts'):
            lines.append('  ' + ', '.join(f'{n} {k}' for k, n in
                                          stage['counts'].items()))
        if name in ('benchmark', 'train_step'):
            lines += [_run_line(run) for run in stage.get('runs', [])]
        if name == 'cpu_bf16' and stage.get('ratio') is not None:
            lines += [_run_line(run) for run in stage.get('runs', [])]
            lines.append(
                f"  bf16 / fp32 = {stage['ratio']:.3f} (rounds "
                f"{stage['round_ratios']}; target <= {stage['target']}: "
                + {True: 'met', False: 'not met', None: 'not judged, quick '
                   'run'}[stage['meets_target']] + ')')
        if name == 'max_shots' and stage.get('result'):
            res = stage['result']
            lines.append(
                f"  largest K that fits at {res['size'][0]}x{res['size'][1]}"
                f": {res['largest']} (first failing: {res['first_failing']}"
                f", stopped: {res['stopped']}, cap {res['cap']})"
                + (f": {res['error']}" if res.get('error') else ''))
        if name == 'dist_train' and stage.get('val'):
            miou = {k: v for k, v in stage['val'].items()
                    if k.endswith('mIoU')}
            lines.append(f'  after one epoch: {miou}')
    return lines
