# Copyright (c) dcama_mm contributors. All rights reserved.
from .metrics import (FewShotIoUMetric, accumulate_class_areas,
                      bootstrap_std_error, few_shot_iou,
                      intersect_and_union_fb)
from .seed_statistics import (format_seed_table, summarize_seed_metrics,
                              summarize_seeds)

__all__ = [
    'FewShotIoUMetric', 'accumulate_class_areas', 'bootstrap_std_error',
    'few_shot_iou', 'intersect_and_union_fb', 'summarize_seeds',
    'summarize_seed_metrics', 'format_seed_table'
]
