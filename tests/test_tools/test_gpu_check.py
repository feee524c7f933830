"""tools/analysis_tools/gpu_check.{sh,py}: what can be checked on the CPU.

The search for the largest K, the benchmark-flag interface, the summary,
a real ``--device cpu --quick`` run of some stages (its JSON schema), the
clear stop without CUDA, and the shell wrapper.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools', 'analysis_tools')
sys.path.insert(0, TOOLS)

import gpu_check  # noqa: E402
from gpu_check_summary import STATUSES, summary_lines  # noqa: E402
from gpu_check_workers import largest_fitting  # noqa: E402


def _env():
    return dict(os.environ, PYTHONPATH=ROOT + os.pathsep +
                os.environ.get('PYTHONPATH', ''))


def _search(fits_up_to, cap, deadline=None):
    calls = []

    def fits(k):
        calls.append(k)
        return k <= fits_up_to

    return largest_fitting(fits, cap, deadline), calls


def test_largest_fitting_doubles_then_bisects():
    result, calls = _search(37, cap=1000)
    assert result == dict(largest=37, first_failing=38, stopped='bisected')
    assert calls == [1, 2, 4, 8, 16, 32, 64, 48, 40, 36, 38, 37]


@pytest.mark.parametrize('fits_up_to,cap,expected,calls', [
    (10**6, 10, dict(largest=10, first_failing=None, stopped='cap'),
     [1, 2, 4, 8, 10]),
    (0, 8, dict(largest=0, first_failing=1, stopped='bisected'), [1]),
    (4, 4, dict(largest=4, first_failing=None, stopped='cap'), [1, 2, 4]),
    (5, 6, dict(largest=5, first_failing=6, stopped='bisected'),
     [1, 2, 4, 6, 5]),
])
def test_largest_fitting_cap_and_edges(fits_up_to, cap, expected, calls):
    assert _search(fits_up_to, cap) == (expected, calls)


def test_largest_fitting_stops_at_the_deadline():
    result, calls = _search(100, cap=1000, deadline=0.0)
    assert result == dict(largest=0, first_failing=None,
                          stopped='time limit')
    assert calls == []
    with pytest.raises(ValueError, match='cap must be >= 1'):
        largest_fitting(lambda k: True, 0)


def test_largest_fitting_keeps_what_it_found_when_stopped():
    import gpu_check_workers as workers
    calls = []

    def fits(k):
        calls.append(k)
        if k >= 8:
            raise workers.SearchStopped('RuntimeError: CUDA error: invalid '
                                        'configuration argument')
        return True

    assert workers.largest_fitting(fits, cap=100) == dict(
        largest=4, first_failing=8, stopped='error')
    assert calls == [1, 2, 4, 8]


def test_out_of_memory_is_told_from_other_errors():
    from gpu_check_workers import is_out_of_memory
    assert is_out_of_memory(torch.cuda.OutOfMemoryError(
        'CUDA out of memory. Tried to allocate 2.00 GiB'))
    # libraries whose own allocation fails say so in a RuntimeError
    assert is_out_of_memory(RuntimeError(
        'CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling '
        '`cublasCreate(handle)`'))
    assert is_out_of_memory(
        RuntimeError('cuDNN error: CUDNN_STATUS_NOT_ENOUGH_MEMORY'))
    assert not is_out_of_memory(
        RuntimeError('CUDA error: invalid configuration argument'))
    assert not is_out_of_memory(ValueError('out of memory'))


def test_amp_flags_of_both_benchmark_interfaces():
    assert gpu_check._amp_flags('amp-dtype', 'fp32') == []
    assert gpu_check._amp_flags('amp-dtype', 'bf16') == [
        '--amp', '--amp-dtype', 'bfloat16']
    assert gpu_check._amp_flags('amp-dtype', 'fp16') == [
        '--amp', '--amp-dtype', 'float16']
    assert gpu_check._amp_flags('amp-choice', 'fp16') == ['--amp', 'fp16']
    with pytest.raises(ValueError, match='no --amp option'):
        gpu_check._amp_flags('none', 'bf16')


def test_stages_find_a_stack_that_only_pythonpath_holds(tmp_path,
                                                        monkeypatch):
    """As on a machine whose stack comes from an offline bundle: an
    interpreter without our packages, which it finds only through
    PYTHONPATH. The benchmark's options are read through it (they were
    read with PYTHONPATH replaced: 'none', so bf16/fp16 went unmeasured)."""
    import sysconfig
    bare = tmp_path / 'bare'
    subprocess.run([sys._base_executable, '-m', 'venv', '--without-pip',
                    str(bare)], check=True)
    python = str(bare / 'bin' / 'python')
    assert subprocess.run([python, '-c', 'import torch'],
                          capture_output=True).returncode == 1
    # where this interpreter finds torch and the stack: its site-packages
    # and whatever PYTHONPATH gave it
    found = os.pathsep.join(
        [os.environ.get('PYTHONPATH', ''), sysconfig.get_paths()['purelib']])
    monkeypatch.setenv('PYTHONPATH', found.lstrip(os.pathsep))
    runner = gpu_check.Runner(gpu_check.parse_args(
        ['--python', python, '--out-dir', str(tmp_path / 'out')]))
    assert gpu_check._amp_interface(runner) == 'amp-dtype'
    assert gpu_check.stage_env(dict(X='1'))['PYTHONPATH'] == (
        ROOT + os.pathsep + found.lstrip(os.pathsep))


def test_benchmark_figures_and_a_changed_output(tmp_path):
    good = dict(latency_median=0.5, latency_min=0.4, episodes_per_s=2.0,
                peak_memory=3 * 1024**3, memory_kind='m', fast_paths={})
    path = tmp_path / 'b.json'
    path.write_text(json.dumps(good))
    figures = gpu_check._figures(str(path))
    assert figures['latency_median_s'] == 0.5
    assert figures['max_memory_bytes'] == 3 * 1024**3
    assert 'status' not in figures
    del good['episodes_per_s']
    path.write_text(json.dumps(good))
    figures = gpu_check._figures(str(path))
    assert figures['status'] == 'failed'
    assert "lacks ['episodes_per_s']" in figures['error']


def test_summary_lines_of_ok_and_failed_runs():
    run = dict(model='swin-b', shots=1, precision='bf16', status='ok',
               latency_median_s=0.0123, episodes_per_s=81.3,
               max_memory_bytes=2 * 1024**3)
    report = dict(device='cuda', wall_s=300.0, environment=dict(
        gpu='NVIDIA H200', gpu_memory_bytes=140 * 1024**3,
        gpu_capability='9.0', cpu_count=16, torch='2.x', torch_cuda='13.0',
        cudnn=1, python='3.11', cpu_model='Intel Xeon',
        cpu_capability='AVX512', cpu_native_bf16=True), stages=dict(
            benchmark=dict(status='failed', seconds=10, error='1 of 2',
                           runs=[run, dict(run, precision='fp16',
                                           status='timeout',
                                           error='stopped')]),
            max_shots=dict(status='ok', seconds=5, result=dict(
                size=[384, 384], largest=300, first_failing=301,
                stopped='bisected', cap=2048)),
            cpu_bf16=dict(status='ok', seconds=60, runs=[
                dict(run, precision='fp32', latency_median_s=1.5),
                dict(run, latency_median_s=1.2)], ratio=0.8,
                round_ratios=[0.8], target=0.6, meets_target=False)))
    text = '\n'.join(summary_lines(report))
    assert 'NVIDIA H200 (140 GiB, capability 9.0)' in text
    assert 'swin-b 1-shot bf16:     12.3 ms,   81.30 episodes/s,   2.00 GiB' \
        in text
    assert 'swin-b 1-shot fp16: timeout: stopped' in text
    assert 'largest K that fits at 384x384: 300 (first failing: 301' in text
    assert 'CPU        : Intel Xeon (capability AVX512, native bf16 True)' \
        in text
    assert 'swin-b 1-shot fp32:   1500.0 ms' in text
    assert ('bf16 / fp32 = 0.800 (rounds [0.8]; target <= 0.6: not met)'
            in text)


def _run_driver(*args):
    return subprocess.run(
        [sys.executable, osp.join(TOOLS, 'gpu_check.py'), *args], cwd=ROOT,
        env=_env(), capture_output=True, text=True, timeout=600)


def test_quick_cpu_run_writes_the_report(tmp_path):
    """A real run of three stages at tiny sizes: the JSON's schema and
    figures, and the summary."""
    out = tmp_path / 'out'
    proc = _run_driver('--device', 'cpu', '--quick', '--out-dir', str(out),
                       '--stages', 'tests', 'max_shots', '--pytest-args',
                       'tests/test_models/test_cuda_fallback.py', '-k',
                       'recorder')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / 'gpu_check.json').read_text())
    assert report['schema'] == gpu_check.SCHEMA
    assert report['device'] == 'cpu' and report['exit_code'] == 0
    assert list(report['stages']) == ['environment', 'tests', 'max_shots']
    for stage in report['stages'].values():
        assert stage['status'] in STATUSES
        assert stage['status'] == 'ok', stage
        assert osp.isfile(stage['log'])
    env = report['environment']
    assert env['torch'] == torch.__version__
    assert env['torch_cuda'] == torch.version.cuda
    assert env['cuda_available'] is torch.cuda.is_available()
    assert env['packages']['dcama_mm'] != '' and all(
        not str(v).startswith('import failed')
        for v in env['packages'].values())
    assert report['stages']['tests']['counts'] == dict(passed=1,
                                                       deselected=17)
    shots = report['stages']['max_shots']['result']
    assert (shots['largest'], shots['stopped'], shots['cap']) == (4, 'cap', 4)
    assert [t['shots'] for t in shots['tries']] == [1, 2, 4]
    assert all(t['fits'] and t['max_memory_bytes'] > 0
               for t in shots['tries'])
    summary = (out / 'gpu_check.txt').read_text()
    assert 'largest K that fits at 64x64: 4' in summary
    assert '1 passed' in summary


@pytest.mark.skipif(torch.cuda.is_available(), reason='CUDA is available')
def test_cuda_without_a_gpu_stops_with_the_reason(tmp_path):
    proc = _run_driver('--device', 'cuda', '--out-dir', str(tmp_path))
    assert proc.returncode == 2
    report = json.loads((tmp_path / 'gpu_check.json').read_text())
    assert list(report['stages']) == ['environment']
    error = report['stages']['environment']['error']
    assert error.startswith('CUDA is not available: torch ')
    assert '--device cpu' in error
    assert 'CUDA is not available' in (tmp_path / 'gpu_check.txt').read_text()


def test_shell_wrapper(tmp_path):
    script = osp.join(TOOLS, 'gpu_check.sh')
    assert subprocess.run(['bash', '-n', script]).returncode == 0
    proc = subprocess.run(['bash', script], capture_output=True, text=True,
                          env=dict(os.environ, PYTHON='/nonexistent/python'))
    assert proc.returncode == 2
    assert '/nonexistent/python cannot import torch' in proc.stderr


def test_bf16_ratio_of_alternated_runs():
    from gpu_check_summary import bf16_ratio

    def run(precision, round_, latency, status='ok'):
        return dict(precision=precision, round=round_, status=status,
                    latency_median_s=latency)

    result = bf16_ratio([run('fp32', 0, 2.0), run('bf16', 0, 1.0),
                         run('fp32', 1, 2.4), run('bf16', 1, 1.8)])
    # medians of the two rounds: fp32 2.2, bf16 1.4
    assert result['fp32_s'] == pytest.approx(2.2)
    assert result['bf16_s'] == pytest.approx(1.4)
    assert result['ratio'] == pytest.approx(1.4 / 2.2, abs=1e-4)
    assert result['round_ratios'] == [0.5, 0.75]
    assert result['target'] == 0.6 and result['meets_target'] is False
    # a round with a failed run gives no round ratio; no bf16 at all, none
    result = bf16_ratio([run('fp32', 0, 2.0), run('bf16', 0, 1.0),
                         run('fp32', 1, 2.0), run('bf16', 1, 0, 'timeout')])
    assert result['round_ratios'] == [0.5] and result['meets_target']
    assert bf16_ratio([run('fp32', 0, 2.0)])['ratio'] is None


def test_cpu_bf16_stage_measures_alternated_or_says_why_not(tmp_path):
    """A real quick run: ``always`` measures fp32, bf16, fp32, bf16 on the
    CPU with 2 threads; ``auto`` skips a CPU without native bf16, with the
    reason, and the check still exits 0."""
    from dcama_mm.models.utils.precision import native_bf16_cpu
    out = tmp_path / 'always'
    proc = _run_driver('--device', 'cpu', '--quick', '--out-dir', str(out),
                       '--stages', 'cpu_bf16', '--cpu-bf16', 'always')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / 'gpu_check.json').read_text())
    assert report['environment']['cpu_native_bf16'] is native_bf16_cpu()
    stage = report['stages']['cpu_bf16']
    assert stage['status'] == 'ok', stage
    assert [(r['precision'], r['round']) for r in stage['runs']] == [
        ('fp32', 0), ('bf16', 0), ('fp32', 1), ('bf16', 1)]
    for run in stage['runs']:
        assert run['threads'] == 2 and run['size'] == [64, 64]
        assert run['command'][run['command'].index('--device') + 1] == 'cpu'
        assert ('--amp' in run['command']) is (run['precision'] == 'bf16')
    fp32 = sorted(r['latency_median_s'] for r in stage['runs']
                  if r['precision'] == 'fp32')
    bf16 = sorted(r['latency_median_s'] for r in stage['runs']
                  if r['precision'] == 'bf16')
    assert stage['ratio'] == pytest.approx(
        (sum(bf16) / 2) / (sum(fp32) / 2), abs=1e-4)
    assert len(stage['round_ratios']) == 2
    assert 'bf16 / fp32 = ' in (out / 'gpu_check.txt').read_text()

    out = tmp_path / 'auto'
    proc = _run_driver('--device', 'cpu', '--quick', '--out-dir', str(out),
                       '--stages', 'cpu_bf16')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stage = json.loads(
        (out / 'gpu_check.json').read_text())['stages']['cpu_bf16']
    if native_bf16_cpu():
        assert stage['status'] == 'ok' and stage['ratio'] is not None
    else:
        assert stage['status'] == 'skipped' and not stage['applicable']
        assert 'has no native bf16' in stage['error']
        assert '--cpu-bf16 always' in stage['error']


def test_max_shots_stopped_by_an_error_fails_the_stage():
    """A search that another error than running out of memory ended (a
    CUDA error of the attention, say) keeps its tries but is a failed
    stage, so the check exits 1; it was 'ok' and the exit code 0."""
    import gpu_check_workers as workers

    def fits(k):
        if k >= 4:
            raise workers.SearchStopped('RuntimeError: CUDA error: an '
                                        'illegal memory access')
        return True

    result = workers.largest_fitting(fits, cap=64)
    result['error'] = 'RuntimeError: CUDA error: an illegal memory access'
    stage = gpu_check.judge_max_shots(dict(status='ok', result=result))
    assert stage['status'] == 'failed'
    assert stage['error'] == ('the search stopped at K=4 on an error that '
                              'is not out of memory: RuntimeError: CUDA '
                              'error: an illegal memory access')
    assert stage['result']['largest'] == 2  # the tries are kept
    # out of memory, the cap or the time limit: the stage is ok
    for stopped in ('bisected', 'cap', 'time limit'):
        ok = dict(status='ok', result=dict(result, stopped=stopped))
        assert gpu_check.judge_max_shots(ok)['status'] == 'ok'
    failed = dict(status='timeout', error='stopped after 135 s')
    assert gpu_check.judge_max_shots(failed) == failed
