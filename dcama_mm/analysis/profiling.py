# Copyright (c) dcama_mm contributors. All rights reserved.
"""Timing, memory and machine figures for the analysis tools.

Each function measures one thing and returns plain numbers, so that tools
can combine and print them and tests can check them one by one.
"""
import os
import platform
import time
from typing import Callable, Dict, List, Tuple, Union

import torch

DeviceLike = Union[str, torch.device]


def cpu_model() -> str:
    """str: The CPU's model name (``/proc/cpuinfo``; else what
    :mod:`platform` knows)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: DeviceLike) -> Dict[str, object]:
    """Describe the machine that figures come from.

    Args:
        device (str | torch.device): The device that runs the model.

    Returns:
        dict: ``cpu`` (model name), ``cpu_count``, ``threads`` (torch's
        intra-op threads), ``torch`` (version), ``device`` and, on a GPU,
        ``gpu`` (its name).
    """
    device = torch.device(device)
    info: Dict[str, object] = dict(
        cpu=cpu_model(),
        cpu_count=os.cpu_count(),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        device=str(device))
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
    return info


def synchronize(device: DeviceLike) -> None:
    """Wait for the queued work of ``device`` (a no-op but on a GPU)."""
    device = torch.device(device)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_runs(fn: Callable[[], object], repeat: int, warmup: int,
              device: DeviceLike) -> List[float]:
    """Seconds of ``repeat`` calls of ``fn`` after ``warmup`` calls.

    Args:
        fn (callable): The work to time, called without arguments.
        repeat (int): Timed calls.
        warmup (int): Untimed calls before them.
        device (str | torch.device): Synchronised after each call, so that
            a GPU's queued work is timed too.

    Returns:
        list[float]: The time of each timed call, in seconds.
    """
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def matmul_gflops(device: DeviceLike, n: int = 2048, repeat: int = 3) -> float:
    """Rate of an ``n^3`` fp32 matrix product on ``device`` (best of runs).

    A yardstick of what the device computes at best, to compare a model's
    achieved rate with.

    Args:
        device (str | torch.device): Where to multiply.
        n (int): Matrix size. Defaults to 2048.
        repeat (int): Timed products (after one untimed). Defaults to 3.

    Returns:
        float: GFLOP/s (``2 n^3`` FLOPs per product).
    """
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device)
    b = torch.randn(n, n, generator=gen).to(device)
    best = min(time_runs(lambda: a @ b, repeat, 1, device))
    return 2 * n**3 / best / 1e9


def current_rss() -> int:
    """int: Resident set size of this process now, in bytes (0 where
    ``/proc`` is missing)."""
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError, IndexError):
        return 0


def peak_rss() -> int:
    """int: Peak resident set size of this process so far, in bytes (0
    where :mod:`resource` is missing)."""
    try:
        import resource
    except ImportError:  # not on Unix
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # kilobytes on Linux, bytes on macOS
    return int(peak) if platform.system() == 'Darwin' else int(peak) * 1024


def reset_peak_memory(device: DeviceLike) -> None:
    """Start a new peak for :func:`peak_memory` where one can (a GPU; a
    process' peak RSS cannot be reset)."""
    device = torch.device(device)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: DeviceLike) -> Tuple[int, str]:
    """The peak memory of the work on ``device``.

    On a GPU, what torch allocated at most since
    :func:`reset_peak_memory`; on the CPU, the peak RSS of the whole
    process (run one configuration per process when it matters).

    Args:
        device (str | torch.device): The device.

    Returns:
        tuple[int, str]: Bytes and what they are:
        ``'torch.cuda.max_memory_allocated'`` or ``'process peak RSS'``.
    """
    device = torch.device(device)
    if device.type == 'cuda':
        return (torch.cuda.max_memory_allocated(device),
                'torch.cuda.max_memory_allocated')
    return peak_rss(), 'process peak RSS'
