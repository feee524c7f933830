# Copyright (c) dcama_mm contributors. All rights reserved.
from .few_shot_iou_metric import (AREA_KEYS, FewShotIoUMetric,
                                  accumulate_class_areas, bootstrap_std_error,
                                  few_shot_iou, intersect_and_union_fb)

__all__ = [
    'AREA_KEYS', 'FewShotIoUMetric', 'accumulate_class_areas',
    'bootstrap_std_error', 'few_shot_iou', 'intersect_and_union_fb'
]
