import threading

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from dcama_mm.models.utils.cpu_workers import map_on_cpu_workers


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_results_in_order_on_worker_threads(two_threads):
    seen = []

    def work(x):
        seen.append((threading.current_thread().name,
                     torch.get_num_threads(), torch.is_grad_enabled()))
        return x * 2

    items = [torch.full((3, ), float(i)) for i in range(5)]
    with torch.no_grad():
        out = map_on_cpu_workers(work, items, workers=2)
    assert [o[0].item() for o in out] == [0, 2, 4, 6, 8]
    # the caller and one pool thread, each with half of the intra-op
    # threads and the caller's grad mode
    names = {name for name, _, _ in seen}
    assert len(names) == 2 and threading.current_thread().name in names
    assert all(threads == 1 and not grad for _, threads, grad in seen)
    assert torch.get_num_threads() == 2
    assert torch.is_grad_enabled()


def test_autocast_carried_to_workers(two_threads):
    weight = torch.randn(8, 8)
    items = [torch.randn(4, 8) for _ in range(3)]
    with torch.autocast('cpu', dtype=torch.bfloat16):
        outs = map_on_cpu_workers(lambda x: x @ weight, items, workers=2)
        expected = [x @ weight for x in items]
    assert all(o.dtype == torch.bfloat16 for o in outs)
    for out, ref in zip(outs, expected):
        torch.testing.assert_close(out, ref)
    assert not torch.is_autocast_enabled('cpu')


def test_gradients_flow_through_workers(two_threads):
    weight = torch.ones(3, requires_grad=True)
    outs = map_on_cpu_workers(lambda x: (x * weight).sum(),
                              [torch.ones(3), 2 * torch.ones(3)], 2)
    sum(outs).backward()
    torch.testing.assert_close(weight.grad, torch.full((3, ), 3.))


def test_loops_when_one_worker_would_do():
    names = []

    def work(x):
        names.append(threading.current_thread().name)
        return x

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert map_on_cpu_workers(work, [1, 2], workers=2) == [1, 2]
    finally:
        torch.set_num_threads(before)
    assert map_on_cpu_workers(work, [3], workers=4) == [3]
    assert map_on_cpu_workers(work, [4, 5], workers=1) == [4, 5]
    assert names == [threading.current_thread().name] * 5


def test_loops_under_a_dispatch_mode(two_threads):
    """Dispatch modes are thread-local: under one, everything runs in the
    calling thread so that the mode sees it (FLOPs counted in full)."""
    names = []
    weight = torch.randn(8, 8)

    def work(x):
        names.append(threading.current_thread().name)
        return x @ weight

    items = [torch.randn(4, 8) for _ in range(4)]
    counter = FlopCounterMode(display=False)
    with counter:
        map_on_cpu_workers(work, items, workers=2)
    assert names == [threading.current_thread().name] * 4
    assert counter.get_total_flops() == 4 * 2 * 4 * 8 * 8


def test_errors_reach_the_caller(two_threads):

    def work(x):
        if x == 1:
            raise ValueError('bad item 1')
        return x

    with pytest.raises(ValueError, match='bad item 1'):
        map_on_cpu_workers(work, [0, 1, 2], workers=2)  # item 1: pool
    with pytest.raises(ValueError, match='bad item 1'):
        map_on_cpu_workers(work, [1, 0, 2], workers=2)  # item 1: caller
    assert torch.get_num_threads() == 2
