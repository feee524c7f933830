# Copyright (c) dcama_mm contributors. All rights reserved.
"""FLOP counting that also knows the CPU kernels of the fast paths.

:class:`torch.utils.flop_counter.FlopCounterMode` counts matrix products,
convolutions and the GPU attention kernels, but not the CPU flash
attention kernel nor oneDNN's fused linear (``mkldnn._linear_pointwise``),
which the fast paths of :mod:`dcama_mm.models.utils.fast_paths` run on the
CPU; :func:`count_flops` adds formulas for them, so that a model's FLOPs
are the same whichever path computes them (up to the work a path really
adds, e.g. a padded value).
"""
from typing import Callable, Dict, Sequence

import torch
from torch.utils import flop_counter


def _cpu_sdpa_flop(query_shape: Sequence[int], key_shape: Sequence[int],
                   value_shape: Sequence[int], *args, **kwargs) -> int:
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_sdpa_backward_flop(grad_out_shape: Sequence[int],
                            query_shape: Sequence[int],
                            key_shape: Sequence[int],
                            value_shape: Sequence[int], *args,
                            **kwargs) -> int:
    return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape,
                                                 key_shape, value_shape)


def _onednn_linear_flop(input_shape: Sequence[int],
                        weight_shape: Sequence[int], *args, **kwargs) -> int:
    rows = 1
    for size in input_shape[:-1]:
        rows *= size
    return 2 * rows * weight_shape[0] * weight_shape[1]


def flop_formulas() -> Dict[object, Callable[..., int]]:
    """Formulas for the kernels FlopCounterMode does not know.

    Returns:
        dict: Operator -> function of the argument shapes that returns its
        FLOPs, for ``FlopCounterMode(custom_mapping=...)``: the CPU flash
        attention (forward and backward) and oneDNN's linear, where this
        torch has them.
    """
    aten = torch.ops.aten
    formulas: Dict[object, Callable[..., int]] = {}
    if hasattr(torch.ops.mkldnn, '_linear_pointwise'):
        formulas[torch.ops.mkldnn._linear_pointwise] = _onednn_linear_flop
    for name, fn in (('_scaled_dot_product_flash_attention_for_cpu',
                      _cpu_sdpa_flop),
                     ('_scaled_dot_product_flash_attention_for_cpu_backward',
                      _cpu_sdpa_backward_flop)):
        if hasattr(aten, name):
            formulas[getattr(aten, name)] = fn
    return formulas


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn``: matrix products, convolutions and
    attention (element-wise operations are not counted).

    FlopCounterMode is thread-local: it sees the calling thread's
    operations only (dcama_mm's CPU workers,
    :func:`~dcama_mm.models.utils.cpu_workers.map_on_cpu_workers`, stay
    on the calling thread while it is active).

    Args:
        fn (callable): The work to count, called once without arguments.

    Returns:
        int: Floating-point operations (a multiply-add counts 2).
    """
    counter = flop_counter.FlopCounterMode(
        display=False, custom_mapping=flop_formulas())
    with counter:
        fn()
    return int(counter.get_total_flops())
