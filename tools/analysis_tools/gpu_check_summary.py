# Copyright (c) dcama_mm contributors. All rights reserved.
"""The short text summary of ``gpu_check.json`` (see ``gpu_check.py``)."""
from typing import Dict, List

#: The precisions the benchmark stages measure.
PRECISIONS = ('fp32', 'bf16', 'fp16')
#: The values of a stage's ``status``.
STATUSES = ('ok', 'failed', 'timeout', 'skipped')
GiB = 1024**3


def _environment_lines(env: Dict[str, object]) -> List[str]:
    gpu = env.get('gpu') or 'no GPU'
    lines = [
        f"machine    : {gpu}"
        + (f" ({env['gpu_memory_bytes'] / GiB:.0f} GiB, capability "
           f"{env['gpu_capability']})" if env.get('gpu_memory_bytes') else '')
        + f", {env.get('cpu_count')} CPU cores",
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
        if name == 'max_shots' and stage.get('result'):
            res = stage['result']
            lines.append(
                f"  largest K that fits at {res['size'][0]}x{res['size'][1]}"
                f": {res['largest']} (first failing: {res['first_failing']}"
                f", stopped: {res['stopped']}, cap {res['cap']})")
        if name == 'dist_train' and stage.get('val'):
            miou = {k: v for k, v in stage['val'].items()
                    if k.endswith('mIoU')}
            lines.append(f'  after one epoch: {miou}')
    return lines
