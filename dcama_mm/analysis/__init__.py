# Copyright (c) dcama_mm contributors. All rights reserved.
"""Measuring a few-shot segmentor: timing, memory, FLOPs, random episodes,
a training step, and the command-line pieces of ``tools/analysis_tools``."""
from .cli import (add_size_argument, analysis_parser, fast_path_setting,
                  load_analysis_config, set_threads)
from .episodes import make_episodes
from .flops import count_flops, flop_formulas
from .profiling import (cpu_model, current_rss, machine_info, matmul_gflops,
                        peak_memory, peak_rss, reset_peak_memory, synchronize,
                        time_runs)
from .training import (REFERENCE_OPTIM_WRAPPER, autocast_context,
                       benchmark_optim_wrapper, describe_optim_wrapper,
                       train_step)

__all__ = [
    'add_size_argument', 'analysis_parser', 'fast_path_setting',
    'load_analysis_config', 'set_threads', 'make_episodes', 'count_flops',
    'flop_formulas', 'cpu_model', 'current_rss', 'machine_info',
    'matmul_gflops', 'peak_memory', 'peak_rss', 'reset_peak_memory',
    'synchronize', 'time_runs', 'REFERENCE_OPTIM_WRAPPER',
    'autocast_context', 'benchmark_optim_wrapper', 'describe_optim_wrapper',
    'train_step'
]
