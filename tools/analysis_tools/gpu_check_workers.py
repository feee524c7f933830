# Copyright (c) dcama_mm contributors. All rights reserved.
"""The in-process parts of ``gpu_check.py``, each run in its own process.

- ``environment``: torch, CUDA, the GPU and the OpenMMLab stack;
- ``max-shots``: the largest K (support images) whose inference episode
  fits on the device: K doubled until it fails (a
  ``torch.cuda.OutOfMemoryError``, or a cuBLAS / cuDNN allocation error)
  or reaches the cap, then bisected; another error ends the search;
- ``demo-data``: the synthetic COCO-format data of ``tools/run_demo.py``,
  converted by ``tools/dataset_converters/coco20i.py``.

Each prints one line ``GPU_CHECK_RESULT <json>`` that the driver reads.

Usage: python tools/analysis_tools/gpu_check_workers.py WORKER [options]
"""
import argparse
import gc
import importlib.util
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

RESULT_PREFIX = 'GPU_CHECK_RESULT '


def emit(result: Dict[str, object]) -> None:
    """Print the worker's result line for the driver."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def _cpu_facts() -> Dict[str, object]:
    """The CPU's model name and whether it has oneDNN bf16, by dcama_mm's
    own functions (None where dcama_mm does not import: ``packages`` says
    why)."""
    try:
        from dcama_mm.analysis import cpu_model
        from dcama_mm.models.utils.precision import native_bf16_cpu
    except Exception:  # noqa: BLE001 (reported under packages)
        return dict(cpu_model=None, cpu_native_bf16=None)
    return dict(cpu_model=cpu_model(), cpu_native_bf16=native_bf16_cpu())


def environment(device: str) -> Dict[str, object]:
    """What the figures come from; ``cuda_error`` says why CUDA cannot run.

    Args:
        device (str): The device the check is for (``cuda`` or ``cpu``).

    Returns:
        dict: Versions, the GPU and the stack's import errors.
    """
    import torch
    info: Dict[str, object] = dict(
        python=sys.version.split()[0],
        python_executable=sys.executable,
        platform=platform.platform(),
        cpu_count=os.cpu_count(),
        torch=torch.__version__,
        torch_cuda=torch.version.cuda,
        cudnn=(torch.backends.cudnn.version()
               if torch.backends.cudnn.is_available() else None),
        cuda_available=torch.cuda.is_available(),
        # PyTorch's defaults, which the benchmarks' fp32 runs keep
        tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
        tf32_cudnn=torch.backends.cudnn.allow_tf32,
        device=device,
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
        # cpu_native_bf16: oneDNN's bf16 kernels (AVX-512 BF16 / AMX), which
        # the cpu_bf16 stage needs
        **_cpu_facts())
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            gpu=torch.cuda.get_device_name(0),
            gpu_count=torch.cuda.device_count(),
            gpu_capability='.'.join(map(str, (props.major, props.minor))),
            gpu_memory_bytes=props.total_memory,
            bf16_supported=torch.cuda.is_bf16_supported())
    elif device.startswith('cuda'):
        info['cuda_error'] = (
            f'CUDA is not available: torch {torch.__version__} '
            + ('is a CPU-only build' if torch.version.cuda is None else
               f'(CUDA {torch.version.cuda}) finds no usable GPU') +
            '; install a CUDA build of torch / check the driver '
            '(nvidia-smi), or run with --device cpu.')
    try:
        info['nvidia_smi'] = subprocess.run(
            ['nvidia-smi', '--query-gpu=name,driver_version,memory.total',
             '--format=csv,noheader'],
            capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        info['nvidia_smi'] = None
    stack = {}
    for name in ('mmengine', 'mmcv', 'mmseg', 'mmpretrain', 'dcama_mm'):
        try:
            stack[name] = getattr(__import__(name), '__version__', 'found')
        except Exception as exc:  # report, do not stop
            stack[name] = f'import failed: {type(exc).__name__}: {exc}'
    info['packages'] = stack
    return info


class SearchStopped(Exception):
    """Raised by ``fits`` to end :func:`largest_fitting`'s search (an error
    that is not the device running out of memory): the ``k`` it was raised
    for counts as failing."""


#: What the RuntimeError of a library whose own allocation failed says
#: (cuBLAS, cuDNN: not always torch's OutOfMemoryError).
_MEMORY_MESSAGES = ('out of memory', 'ALLOC_FAILED', 'NOT_ENOUGH_MEMORY')


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says that the device ran out of memory."""
    import torch
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(
        text in str(exc) for text in _MEMORY_MESSAGES)


def largest_fitting(fits: Callable[[int], bool],
                    cap: int,
                    deadline: Optional[float] = None) -> Dict[str, object]:
    """The largest ``k`` in ``1..cap`` with ``fits(k)``, assuming that
    what fits for ``k`` fits for every smaller ``k``.

    ``k`` is doubled (1, 2, 4, ..., then ``cap``) until ``fits`` fails,
    then the last success and the first failure are bisected.

    Args:
        fits (callable): ``k -> bool``; it may raise
            :class:`SearchStopped` to end the search.
        cap (int): The largest ``k`` tried.
        deadline (float, optional): ``time.monotonic()`` after which no
            new ``k`` is tried. Defaults to None.

    Returns:
        dict: ``largest`` (0 when even 1 fails), ``first_failing`` (None
        when none failed), ``stopped`` (``'bisected'``, ``'cap'``,
        ``'time limit'`` or ``'error'``).
    """
    if cap < 1:
        raise ValueError(f'cap must be >= 1, got {cap}.')
    low, high = 0, None

    def result(stopped: str) -> Dict[str, object]:
        return dict(largest=low, first_failing=high, stopped=stopped)

    def tried(k: int) -> bool:
        nonlocal high
        try:
            return fits(k)
        except SearchStopped:
            high = k
            raise

    try:
        k = 1
        while high is None:
            if deadline is not None and time.monotonic() > deadline:
                return result('time limit')
            if tried(k):
                low = k
                if k == cap:
                    return result('cap')
                k = min(2 * k, cap)
            else:
                high = k
        while high - low > 1:
            if deadline is not None and time.monotonic() > deadline:
                return result('time limit')
            mid = (low + high) // 2
            if tried(mid):
                low = mid
            else:
                high = mid
    except SearchStopped:
        return result('error')
    return result('bisected')


def max_shots(config: str, device: str, size: Sequence[int], cap: int,
              time_limit: float) -> Dict[str, object]:
    """Largest K whose 1-query inference episode fits on ``device``.

    Args:
        config (str): A model config.
        device (str): ``cuda`` (or ``cpu``: use a small cap). A try that
            runs out of memory (:func:`is_out_of_memory`) does not fit; any
            other ``RuntimeError`` ends the search (``stopped='error'``,
            ``error``), keeping what was found.
        size (Sequence[int]): ``(H, W)``.
        cap (int): The largest K tried.
        time_limit (float): Seconds after which no new K is tried.

    Returns:
        dict: :func:`largest_fitting`'s result and every try (K, fits,
        seconds, peak memory, error).
    """
    import torch
    from dcama_mm.analysis import (load_analysis_config, make_episodes,
                                   peak_memory, reset_peak_memory,
                                   synchronize)
    from dcama_mm.apis import init_model
    deadline = time.monotonic() + time_limit
    cfg = load_analysis_config(config)
    dev = torch.device(device)
    torch.manual_seed(0)
    model = init_model(cfg, device=str(dev))
    tries: List[Dict[str, object]] = []

    def run(k: int) -> None:
        episode = make_episodes(1, k, size, dev)
        with torch.no_grad():
            model.predict_logits(episode['query_imgs'],
                                 episode['support_imgs'],
                                 episode['support_masks'])
        synchronize(dev)

    def fits(k: int) -> bool:
        start = time.perf_counter()
        reset_peak_memory(dev)
        error, memory = None, False
        try:
            run(k)
        except RuntimeError as exc:  # torch.cuda.OutOfMemoryError is one
            first_line = (str(exc).splitlines() or [''])[0]
            error = f'{type(exc).__name__}: {first_line}'
            memory = is_out_of_memory(exc)
        if error is not None:  # the failed episode's tensors went with it
            gc.collect()
            if dev.type == 'cuda':
                torch.cuda.empty_cache()
        tries.append(
            dict(shots=k, fits=error is None,
                 seconds=time.perf_counter() - start,
                 max_memory_bytes=peak_memory(dev)[0], error=error))
        if error is not None and not memory:
            # not a matter of memory: stop, keeping what was found
            raise SearchStopped(error)
        return error is None

    result = largest_fitting(fits, cap, deadline)
    if result['stopped'] == 'error':
        result['error'] = tries[-1]['error']
    result.update(config=config, device=device, size=list(size), cap=cap,
                  precision='fp32', tries=tries,
                  memory_kind=peak_memory(dev)[1])
    return result


def demo_data(data_root: str, images_per_class: Sequence[int]) -> Dict:
    """Write and convert the demo's synthetic COCO data (once).

    Args:
        data_root (str): Where.
        images_per_class (Sequence[int]): ``(train, val)`` images per
            class; ``tools/run_demo.py`` uses its ``DATA_SETTINGS``.

    Returns:
        dict: The root, the settings and the seconds taken.
    """
    from dcama_mm.datasets.synthetic import make_synthetic_coco
    spec = importlib.util.spec_from_file_location(
        'run_demo', osp.join(ROOT, 'tools', 'run_demo.py'))
    run_demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_demo)
    settings = dict(run_demo.DATA_SETTINGS,
                    images_per_class=tuple(images_per_class))
    start = time.perf_counter()
    index = osp.join(data_root, 'annotations_fss', 'val2014_class_index.json')
    if not osp.isfile(index):
        make_synthetic_coco(data_root, **settings)
        spec = importlib.util.spec_from_file_location(
            'coco20i', run_demo.CONVERTER)
        converter = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(converter)
        converter.main([data_root, '--nproc', '1', '--force'])
    return dict(data_root=data_root, settings=settings,
                seconds=time.perf_counter() - start)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('worker',
                        choices=('environment', 'max-shots', 'demo-data'))
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--config')
    parser.add_argument('--size', type=int, nargs=2, default=(384, 384))
    parser.add_argument('--cap', type=int, default=2048)
    parser.add_argument('--time-limit', type=float, default=60.0)
    parser.add_argument('--data-root')
    parser.add_argument('--images-per-class', type=int, nargs=2,
                        default=(24, 10))
    args = parser.parse_args(argv)
    if args.worker == 'environment':
        emit(environment(args.device))
    elif args.worker == 'max-shots':
        emit(max_shots(args.config, args.device, args.size, args.cap,
                       args.time_limit))
    else:
        emit(demo_data(args.data_root, args.images_per_class))


if __name__ == '__main__':
    main()
