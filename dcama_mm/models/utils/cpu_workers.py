# Copyright (c) dcama_mm contributors. All rights reserved.
"""Run independent pieces of CPU work side by side, sharing the cores.

PyTorch parallelises each operation over its intra-op threads. For many
small operations (a Swin Transformer's window attention, layer norms,
window partitions) that split is inefficient; running independent images
on separate threads, each with its share of the intra-op threads, keeps the
cores busier (the README has the figures; ResNet-50 gains nothing). The
operations release the GIL, so Python threads suffice.
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Callable, Dict, List, Sequence, Tuple, TypeVar

import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode

T = TypeVar('T')
R = TypeVar('R')

_executors: Dict[Tuple[int, int], ThreadPoolExecutor] = {}
_lock = threading.Lock()


def _executor(workers: int) -> ThreadPoolExecutor:
    # keyed by process: a forked child (e.g. a DataLoader worker) gets its
    # own pool instead of the parent's threads, which do not survive a fork
    key = (os.getpid(), workers)
    with _lock:
        if key not in _executors:
            _executors[key] = ThreadPoolExecutor(
                workers, thread_name_prefix='dcama_mm_cpu')
        return _executors[key]


def map_on_cpu_workers(fn: Callable[[T], R], items: Sequence[T],
                       workers: int) -> List[R]:
    """``[fn(item) for item in items]``, on up to ``workers`` threads.

    The calling thread takes one share of the items and ``workers - 1``
    pool threads the others; each runs with ``torch.get_num_threads() //
    workers`` intra-op threads and the caller's grad mode and CPU autocast
    state (both thread-local), and the caller's thread settings are
    restored afterwards. With fewer than 2 effective workers (1 item,
    ``workers`` 1, or a single intra-op thread) it simply loops; so it does
    while a ``TorchDispatchMode`` (e.g. ``FlopCounterMode``) is active,
    since such modes are thread-local and would not see the workers'
    operations.

    Args:
        fn (callable): The work for one item. It must not depend on
            thread-local state other than the grad mode and CPU autocast.
        items (Sequence): The items, in order.
        workers (int): The most threads to use at once.

    Returns:
        list: The results, in the order of ``items``.
    """
    total = torch.get_num_threads()
    workers = min(workers, len(items), total)
    if workers < 2 or _get_current_dispatch_mode() is not None:
        return [fn(item) for item in items]
    per_worker = total // workers
    grad_enabled = torch.is_grad_enabled()
    autocast = torch.is_autocast_enabled('cpu')
    autocast_dtype = torch.get_autocast_dtype('cpu')

    def task(item: T) -> R:
        torch.set_num_threads(per_worker)
        with torch.set_grad_enabled(grad_enabled), torch.autocast(
                'cpu', dtype=autocast_dtype, enabled=autocast):
            return fn(item)

    # The caller is one of the workers: every thread that allocates keeps
    # its own malloc arena, so one thread fewer is less memory held.
    shares = [items[i::workers] for i in range(workers)]
    try:
        futures = [
            _executor(workers - 1).submit(lambda s=share: [task(x) for x in s])
            for share in shares[1:]
        ]
        try:
            results = [[task(x) for x in shares[0]]]
        finally:
            wait(futures)  # never leave work running behind an error
        results += [future.result() for future in futures]
    finally:
        # torch.set_num_threads also changes process-wide settings (MKL,
        # the default of new threads): give the caller's back
        torch.set_num_threads(total)
    ordered: List[R] = [None] * len(items)  # type: ignore
    for i, share in enumerate(results):
        ordered[i::workers] = share
    return ordered
