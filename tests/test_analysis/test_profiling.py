"""dcama_mm.analysis.profiling: timing, memory and machine figures."""
import torch

from dcama_mm.analysis import (current_rss, machine_info, matmul_gflops,
                               peak_memory, peak_rss, reset_peak_memory,
                               time_runs)


def test_time_runs_calls_warmup_then_timed_runs():
    calls = []
    times = time_runs(
        lambda: calls.append(1), repeat=3, warmup=2, device='cpu')
    assert len(calls) == 5
    assert len(times) == 3 and all(t >= 0 for t in times)


def test_matmul_gflops_is_a_positive_rate():
    assert matmul_gflops('cpu', n=128, repeat=2) > 0.01


def test_memory_figures_of_the_cpu():
    held = torch.ones(16, 1024, 1024)  # 64 MiB, touched
    now = current_rss()
    assert now > held.numel() * 4
    # Linux updates the peak (ru_maxrss) lazily: allow it to lag 4 MiB
    slack = 4 * 1024**2
    assert peak_rss() >= now - slack
    reset_peak_memory('cpu')  # nothing to reset on the CPU
    peak, kind = peak_memory(torch.device('cpu'))
    assert kind == 'process peak RSS' and peak >= now - slack


def test_machine_info_of_the_cpu():
    info = machine_info('cpu')
    assert info['device'] == 'cpu' and 'gpu' not in info
    assert info['threads'] == torch.get_num_threads()
    assert info['torch'] == torch.__version__
    assert isinstance(info['cpu'], str) and info['cpu_count'] >= 1
