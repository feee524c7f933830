"""The devices the model tests run on: the CPU always, CUDA when present.

A test that takes the ``device`` fixture (:mod:`tests.conftest`) runs once
per device: ``[cpu]`` everywhere, ``[cuda]`` where
``torch.cuda.is_available()``; elsewhere the CUDA case is skipped with the
reason (``CUDA not available: ...``), so that one ``pytest`` on a GPU
machine exercises every CUDA path and ``pytest -m cuda`` runs only those.

Precision on CUDA: the fixture turns TF32 off (matrix products and cuDNN
convolutions), so a CUDA float32 result is a float32 result (TF32 keeps 10
mantissa bits: ~1e-3 relative error, far above the tolerances of the
equality tests). What remains is the order of the sums and cuDNN's choice
of algorithm (implicit GEMM, Winograd, FFT), whose round-off is up to an
order of magnitude larger than one CPU ordering's; :func:`tolerances`
therefore widens a test's CPU tolerances by :data:`CUDA_TOLERANCE_FACTOR`
on CUDA. A wrong computation differs by 1e-2 or more in these tests, so
they still tell right from wrong. On the CPU the tolerances are unchanged.
"""
import contextlib
from typing import Any, Dict, Iterator, List, Optional

import pytest
import torch

#: What the skip reason of a CUDA case starts with.
CUDA_SKIP_PREFIX = 'CUDA not available: '
#: CUDA tolerances are the CPU ones times this (see the module docstring).
CUDA_TOLERANCE_FACTOR = 10.0


def cuda_unavailable_reason() -> Optional[str]:
    """Why the CUDA cases cannot run here, or None when they can."""
    if torch.version.cuda is None:
        return (f'{CUDA_SKIP_PREFIX}this PyTorch build (torch '
                f'{torch.__version__}) has no CUDA support')
    if not torch.cuda.is_available():
        return (f'{CUDA_SKIP_PREFIX}torch {torch.__version__} (CUDA '
                f'{torch.version.cuda}) finds no usable GPU '
                '(torch.cuda.is_available() is False)')
    return None


def device_params() -> List[Any]:
    """``pytest.param`` of each device: ``cpu``, and ``cuda`` marked
    ``cuda`` and skipped with the reason where CUDA is unavailable."""
    reason = cuda_unavailable_reason()
    return [
        pytest.param('cpu', id='cpu'),
        pytest.param(
            'cuda',
            id='cuda',
            marks=[
                pytest.mark.cuda,
                pytest.mark.skipif(reason is not None, reason=reason or '')
            ])
    ]


@contextlib.contextmanager
def strict_fp32(device: torch.device) -> Iterator[None]:
    """On CUDA, float32 matrix products and convolutions without TF32
    (restored after); nothing to do on the CPU."""
    if device.type != 'cuda':
        yield
        return
    saved = (torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        (torch.backends.cuda.matmul.allow_tf32,
         torch.backends.cudnn.allow_tf32) = saved


def tolerances(device: torch.device, rtol: float,
               atol: float) -> Dict[str, float]:
    """``dict(rtol=..., atol=...)`` for ``torch.testing.assert_close``:
    the CPU values, widened by :data:`CUDA_TOLERANCE_FACTOR` on CUDA."""
    factor = CUDA_TOLERANCE_FACTOR if torch.device(
        device).type == 'cuda' else 1.0
    return dict(rtol=rtol * factor, atol=atol * factor)


def to_device(obj: Any, device: torch.device) -> Any:
    """``obj`` with every tensor (also inside tuples, lists and dicts)
    moved to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, (tuple, list)):
        return type(obj)(to_device(item, device) for item in obj)
    if isinstance(obj, dict):
        return {key: to_device(value, device) for key, value in obj.items()}
    return obj


def on_cpu(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` on the CPU (for numpy and for comparisons with CPU
    results)."""
    return tensor.detach().cpu()
