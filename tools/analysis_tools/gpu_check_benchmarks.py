# Copyright (c) dcama_mm contributors. All rights reserved.
"""The benchmark stages of ``gpu_check.py``: ``benchmark``, ``train_step``
and ``cpu_bf16``, each a set of ``tools/analysis_tools/benchmark.py``
processes."""
import json
import os.path as osp
import subprocess
import time
from typing import Dict, List, Sequence

from gpu_check_runner import ROOT, Runner, stage_env
from gpu_check_summary import PRECISIONS, bf16_ratio

HERE = osp.dirname(osp.abspath(__file__))
BENCHMARK = osp.join(HERE, 'benchmark.py')
SWINB = osp.join(ROOT, 'configs', '_base_', 'models', 'dcama_swinb.py')
R50 = osp.join(ROOT, 'configs', '_base_', 'models', 'dcama_r50.py')
DEMO = osp.join(ROOT, 'configs', 'dcama_synthetic_demo.py')
# amp's benchmark flags: new interface (--amp --amp-dtype) and older one
AMP_DTYPE_NAMES = {'bf16': 'bfloat16', 'fp16': 'float16'}
#: The CPU bf16 stage: the issue's setting (2 threads) and its rounds.
CPU_BF16_THREADS = 2
CPU_BF16_ROUNDS = 2


def _amp_interface(r: Runner) -> str:
    """'amp-dtype' (--amp --amp-dtype NAME), 'amp-choice' (--amp bf16) or
    'none', from the benchmark's --help."""
    help_text = subprocess.run([r.args.python, BENCHMARK, '--help'],
                               cwd=ROOT, capture_output=True, text=True,
                               env=stage_env(),
                               timeout=120).stdout
    if '--amp-dtype' in help_text:
        return 'amp-dtype'
    return 'amp-choice' if '--amp' in help_text else 'none'


def _amp_flags(interface: str, precision: str) -> List[str]:
    if precision == 'fp32':
        return []
    if interface == 'amp-dtype':
        return ['--amp', '--amp-dtype', AMP_DTYPE_NAMES[precision]]
    if interface == 'amp-choice':
        return ['--amp', precision]
    raise ValueError(f'benchmark.py has no --amp option: {precision} '
                     'cannot be measured')


def _benchmark_run(r: Runner, tag: str, run: Dict[str, object],
                   config: str, flags: List[str], timeout: float,
                   extra: Sequence[str] = (),
                   repeat: int = 10) -> Dict[str, object]:
    """One ``benchmark.py`` process: ``run`` (what it measures) with its
    status and figures (``repeat`` timed runs after ``repeat // 3``
    warm-up ones; 1 and 0 with ``--quick``)."""
    repeat, warmup = (1, 0) if r.args.quick else (repeat, repeat // 3)
    timing = ['--repeat', str(repeat), '--warmup', str(warmup)]
    out = osp.join(r.logs, f'{tag}.json')
    cmd = [r.args.python, BENCHMARK, config, '--shots', str(run['shots']),
           '--size', *map(str, run['size']), *timing, '--no-flops', '--out',
           out, *flags, *extra]
    if '--device' not in extra:
        cmd += ['--device', r.args.device]
    if run.get('mode') == 'train':
        cmd.append('--train')
    record = r.run(tag, cmd, timeout)
    record.pop('output', None)
    run = dict(run, **record)
    if record['status'] == 'ok':
        run.update(_figures(out))
    return run


def _interface(r: Runner) -> str:
    try:
        return _amp_interface(r)
    except (OSError, subprocess.SubprocessError) as exc:
        return f'unknown ({exc})'


def _runs_record(runs: List[Dict[str, object]], start: float,
                 **extra) -> Dict[str, object]:
    bad = sum(run['status'] != 'ok' for run in runs)
    return dict(status='failed' if bad else 'ok', runs=runs,
                seconds=round(time.perf_counter() - start, 2),
                error=f'{bad} of {len(runs)} runs did not succeed'
                if bad else None, **extra)


def _benchmark_runs(r: Runner, name: str, cases: List[tuple],
                    train: bool) -> Dict[str, object]:
    size = [64, 64] if r.args.quick else [384, 384]
    interface = _interface(r)
    runs, start = [], time.perf_counter()
    for model, config, shots in cases:
        for precision in PRECISIONS:
            tag = f'{name}_{model}_{shots}shot_{precision}'
            run = dict(model=model, config=osp.relpath(config, ROOT),
                       shots=shots, precision=precision, mode='train'
                       if train else 'inference', size=size)
            try:
                flags = _amp_flags(interface, precision)
            except ValueError as exc:
                runs.append(dict(run, status='failed', error=str(exc)))
                continue
            runs.append(_benchmark_run(r, tag, run, config, flags,
                                       60 if train else 45))
    return _runs_record(runs, start, amp_interface=interface)


def stage_cpu_bf16(r: Runner) -> Dict[str, object]:
    """bf16 against fp32 on the host CPU, 2 threads, alternated processes
    (fp32, bf16, fp32, bf16): Swin-B 1-shot at 384x384, batch 1. Measured
    only where the CPU has oneDNN's bf16 kernels (``--cpu-bf16 always``
    measures an emulating CPU too)."""
    env = r.environment
    native = env.get('cpu_native_bf16')
    if r.args.cpu_bf16 == 'never' or (r.args.cpu_bf16 == 'auto'
                                      and not native):
        why = ('--cpu-bf16 never' if r.args.cpu_bf16 == 'never' else
               f"this CPU ({env.get('cpu_model')}, capability "
               f"{env.get('cpu_capability')}) has no native bf16 "
               '(oneDNN: no AVX-512 BF16 / AMX), where bf16 is emulated '
               'and several times slower than fp32; --cpu-bf16 always '
               'measures it anyway')
        return dict(status='skipped', error=why, native_bf16=native,
                    applicable=False)
    model, config = ('demo-r50w16', DEMO) if r.args.quick else (
        'swin-b', SWINB)
    size = [64, 64] if r.args.quick else [384, 384]
    interface = _interface(r)
    runs, start = [], time.perf_counter()
    for round_ in range(CPU_BF16_ROUNDS):
        for precision in ('fp32', 'bf16'):
            run = dict(model=model, config=osp.relpath(config, ROOT),
                       shots=1, precision=precision, mode='inference',
                       size=size, round=round_, threads=CPU_BF16_THREADS)
            try:
                flags = _amp_flags(interface, precision)
            except ValueError as exc:
                runs.append(dict(run, status='failed', error=str(exc)))
                continue
            runs.append(_benchmark_run(
                r, f'cpu_bf16_{precision}_{round_}', run, config, flags,
                60 if r.args.quick else 150,
                ['--device', 'cpu', '--threads', str(CPU_BF16_THREADS)],
                repeat=3))
    record = _runs_record(runs, start, amp_interface=interface,
                          native_bf16=native)
    record.update(bf16_ratio(runs))
    if r.args.quick:  # no warm-up, tiny model: not the target's setting
        record['meets_target'] = None
    return record


def _figures(path: str) -> Dict[str, object]:
    """The figures of one benchmark JSON (a failed run if one is
    missing: the benchmark's output may have changed)."""
    keys = dict(latency_median_s='latency_median',
                latency_min_s='latency_min', episodes_per_s='episodes_per_s',
                max_memory_bytes='peak_memory', memory_kind='memory_kind',
                fast_paths='fast_paths')
    try:
        with open(path) as f:
            figures = json.load(f)
    except (OSError, ValueError) as exc:
        return dict(status='failed', error=f'{path}: {exc}')
    missing = sorted(v for v in keys.values() if v not in figures)
    found = {k: figures[v] for k, v in keys.items() if v in figures}
    if missing:
        found.update(status='failed',
                     error=f'{path} lacks {missing} (benchmark.py changed?)')
    return found


def stage_benchmark(r: Runner) -> Dict[str, object]:
    if r.args.quick:
        return _benchmark_runs(r, 'benchmark', [('demo-r50w16', DEMO, 1)],
                               False)
    return _benchmark_runs(r, 'benchmark', [('swin-b', SWINB, 1),
                                            ('swin-b', SWINB, 5),
                                            ('r50', R50, 1)], False)


def stage_train_step(r: Runner) -> Dict[str, object]:
    case = ('demo-r50w16', DEMO, 1) if r.args.quick else ('swin-b', SWINB, 1)
    return _benchmark_runs(r, 'train_step', [case], True)
