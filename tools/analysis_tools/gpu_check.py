# Copyright (c) dcama_mm contributors. All rights reserved.
"""One prepared check of the GPU path, within a time budget (10 minutes).

Stages, each in its own process with its own timeout (one failing or
timing out does not stop the others; a stage that would start after the
budget is skipped):

1. ``environment``: torch, ``torch.version.cuda``, the GPU, the stack.
   With ``--device cuda`` and no usable CUDA it stops here (exit 2).
2. ``tests``: the CUDA cases of the device-parametrised tests
   (``pytest -m cuda``).
3. ``benchmark``: ``tools/analysis_tools/benchmark.py`` for Swin-B 1-shot,
   Swin-B 5-shot and ResNet-50 1-shot at 384x384, in fp32, bf16 and fp16:
   latency, episodes per second, ``torch.cuda.max_memory_allocated``.
4. ``train_step``: the same tool's ``--train`` (Swin-B 1-shot).
5. ``max_shots``: the largest K that fits at 384x384 (Swin-B, fp32
   inference): doubling, then bisection, catching
   ``torch.cuda.OutOfMemoryError`` (and cuBLAS / cuDNN allocation errors),
   up to ``--max-shots-cap``; another error ends the search, keeping the
   tries, and fails the stage.
6. ``dist_train``: ``tools/dist_train.sh`` of the demo config on 1 GPU for
   one epoch, on the demo's synthetic data (generated as
   ``tools/run_demo.py`` does).
7. ``cpu_bf16``: on the host CPU, if it has native bf16 (AVX-512 BF16 /
   AMX), Swin-B 1-shot at 384x384 with 2 threads in fp32 and bf16,
   alternated processes (fp32, bf16, fp32, bf16): the bf16 / fp32 ratio
   of the medians, against the target 0.6. Skipped, with the reason, on a
   CPU that emulates bf16 (``--cpu-bf16 always`` measures it anyway).

Writes ``gpu_check.json`` (every figure, per stage ``status``: ok /
failed / timeout / skipped, and ``error``), ``gpu_check.txt`` (a short
summary) and ``logs/`` under ``--out-dir``.

``--quick`` (any device) runs every stage at tiny sizes, to check the
script itself, e.g. on the CPU:
``python tools/analysis_tools/gpu_check.py --device cpu --quick``.
"""
import argparse
import datetime
import json
import os
import os.path as osp
import re
import socket
import sys
import time
from typing import Dict, Optional, Sequence

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, HERE)

from gpu_check_benchmarks import (DEMO, SWINB, _amp_flags,  # noqa: E402,F401
                                  _amp_interface, _figures, stage_benchmark,
                                  stage_cpu_bf16, stage_train_step)
from gpu_check_runner import ROOT, Runner, stage_env  # noqa: E402,F401
from gpu_check_summary import summary_lines  # noqa: E402

SCHEMA = 'dcama_mm.gpu_check/1'
TEST_PATHS = ('tests/test_models',
              'tests/test_apis/test_few_shot_inferencer.py')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--out-dir', default=os.environ.get('OUT') or osp.join(
            'work_dirs', 'gpu_check'),
        help='where the JSON, the summary and the logs go (default: $OUT '
        'if set, else work_dirs/gpu_check)')
    parser.add_argument('--device', default='cuda', help='cuda or cpu')
    parser.add_argument('--python', default=sys.executable,
                        help='the interpreter of the stages')
    parser.add_argument('--budget', type=float, default=540.0,
                        help='seconds for all stages together')
    parser.add_argument('--stages', nargs='+', default=None,
                        help='run only these stages')
    parser.add_argument('--quick', action='store_true',
                        help='tiny sizes: check the script itself')
    parser.add_argument('--max-shots-cap', type=int, default=None,
                        help='largest K tried (default 2048; 4 with --quick)')
    parser.add_argument(
        '--cpu-bf16', choices=('auto', 'always', 'never'), default='auto',
        help='the cpu_bf16 stage: auto measures only on a CPU with native '
        'bf16 (AVX-512 BF16 / AMX), always also where it is emulated')
    parser.add_argument('--pytest-args', nargs=argparse.REMAINDER,
                        default=None, help='instead of -m cuda TEST_PATHS')
    return parser.parse_args(argv)


def stage_environment(r: Runner) -> Dict[str, object]:
    record = r.worker('environment', ['environment', '--device',
                                      r.args.device], 120)
    result = record.get('result', {})
    if result.get('cuda_error'):
        record.update(status='failed', error=result['cuda_error'])
    return record


def stage_tests(r: Runner) -> Dict[str, object]:
    args = r.args.pytest_args or ['-m', 'cuda', *TEST_PATHS]
    record = r.run('tests', [r.args.python, '-m', 'pytest', '-q', '-rs',
                             '-p', 'no:cacheprovider', *args], 180)
    text = record.pop('output', '')
    counts = {
        kind: int(n)
        for n, kind in re.findall(
            r'(\d+) (passed|failed|skipped|errors?|deselected)', text)
    }
    record['counts'] = counts
    if record['status'] == 'failed':
        failed = re.findall(r'^(?:FAILED|ERROR) (\S+)', text, re.M)
        record['failed_tests'] = failed[:50]
    return record


def stage_max_shots(r: Runner) -> Dict[str, object]:
    quick = r.args.quick
    cap = r.args.max_shots_cap or (4 if quick else 2048)
    limit = 30 if quick else 75
    config, size = (DEMO, ['64', '64']) if quick else (SWINB, ['384', '384'])
    return judge_max_shots(r.worker('max_shots', [
        'max-shots', '--config', config, '--device', r.args.device,
        '--size', *size, '--cap', str(cap), '--time-limit', str(limit)
    ], limit + 60))


def judge_max_shots(record: Dict[str, object]) -> Dict[str, object]:
    """The ``max_shots`` stage fails when its search was ended by an error
    that is not out of memory (``stopped: error``): the worker still
    reports the tries, but such an error is a fault of the GPU path."""
    result = record.get('result') or {}
    if record.get('status') == 'ok' and result.get('stopped') == 'error':
        record = dict(
            record, status='failed',
            error=f"the search stopped at K={result.get('first_failing')} "
            'on an error that is not out of memory: '
            f"{result.get('error')}")
    return record


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def stage_dist_train(r: Runner) -> Dict[str, object]:
    data_root = osp.abspath(osp.join(r.args.out_dir, 'demo_data'))
    per_class = ['3', '2'] if r.args.quick else ['24', '10']
    data = r.worker('demo_data', ['demo-data', '--data-root', data_root,
                                  '--images-per-class', *per_class], 150)
    if data['status'] != 'ok':
        return dict(data, error=f'demo data: {data.get("error")}')
    work_dir = osp.abspath(osp.join(r.args.out_dir, 'dist_train'))
    options = ['train_cfg.max_epochs=1'] + [
        f'{loader}.dataset.data_root={data_root}'
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader')
    ]
    if r.args.quick:
        options += ['train_dataloader.dataset.num_episodes=16',
                    'val_dataloader.dataset.num_episodes=8']
    record = r.run('dist_train', [
        'bash', osp.join(ROOT, 'tools', 'dist_train.sh'), DEMO, '1',
        '--work-dir', work_dir, '--cfg-options', *options
    ], 240, env=dict(PYTHON=r.args.python, PORT=str(_free_port())))
    record.pop('output', None)
    record['data'] = data.get('result')
    checkpoint = osp.join(work_dir, 'epoch_1.pth')
    record['checkpoint'] = checkpoint if osp.isfile(checkpoint) else None
    record['val'] = _last_metrics(work_dir)
    if record['status'] == 'ok' and not record['checkpoint']:
        record.update(status='failed', error=f'no {checkpoint} written')
    return record


def _last_metrics(work_dir: str) -> Optional[Dict[str, object]]:
    """The last logged metrics with an mIoU (mmengine's scalars.json)."""
    found = None
    for root, _, files in sorted(os.walk(work_dir)):
        if 'scalars.json' in files:
            with open(osp.join(root, 'scalars.json')) as f:
                for line in f:
                    entry = json.loads(line)
                    if any(key.endswith('mIoU') for key in entry):
                        found = entry
    return found


STAGES = dict(environment=stage_environment, tests=stage_tests,
              benchmark=stage_benchmark, train_step=stage_train_step,
              max_shots=stage_max_shots, dist_train=stage_dist_train,
              cpu_bf16=stage_cpu_bf16)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    unknown = set(args.stages or ()) - set(STAGES)
    if unknown:
        raise SystemExit(f'--stages: unknown {sorted(unknown)}; the stages '
                         f'are {list(STAGES)}.')
    os.makedirs(args.out_dir, exist_ok=True)
    runner = Runner(args)
    started = time.time()
    report: Dict[str, object] = dict(
        schema=SCHEMA, device=args.device, quick=args.quick,
        budget_s=args.budget, command=[sys.executable, *sys.argv],
        started=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        stages={})
    if os.environ.get('DCAMA_MM_BUNDLE'):  # set by gpu_check.sh --bundle
        report['bundle'] = dict(
            path=os.environ['DCAMA_MM_BUNDLE'],
            install_s=float(os.environ.get('DCAMA_MM_BUNDLE_INSTALL_S', 0)))
    stages = report['stages']
    code = 0
    for name, stage in STAGES.items():
        if args.stages and name not in args.stages and name != 'environment':
            continue
        print(f'[gpu_check] {name} ({runner.left():.0f} s left) ...',
              flush=True)
        try:
            stages[name] = stage(runner)
        except Exception as exc:  # a broken stage must not stop the others
            stages[name] = dict(status='failed',
                                error=f'{type(exc).__name__}: {exc}')
        print(f'[gpu_check] {name}: {stages[name]["status"]}'
              + (f' ({stages[name].get("error")})'
                 if stages[name]['status'] != 'ok' else ''), flush=True)
        if name == 'environment':
            report['environment'] = stages[name].get('result', {})
            runner.environment = report['environment']
            if report['environment'].get('cuda_error'):
                code = 2
                break
    report['wall_s'] = round(time.time() - started, 2)
    report['finished'] = datetime.datetime.now(
        datetime.timezone.utc).isoformat()
    # a stage that does not apply here (cpu_bf16 on an emulating CPU) is
    # skipped with its reason, not failed
    if code == 0 and any(s['status'] != 'ok' and s.get('applicable', True)
                         for s in stages.values()):
        code = 1
    report['exit_code'] = code
    path = osp.join(args.out_dir, 'gpu_check.json')
    with open(path, 'w') as f:
        json.dump(report, f, indent=2)
    text = '\n'.join(summary_lines(report))
    with open(osp.join(args.out_dir, 'gpu_check.txt'), 'w') as f:
        f.write(text + '\n')
    print(text)
    print(f'[gpu_check] wrote {path}')
    return code


if __name__ == '__main__':
    sys.exit(main())
