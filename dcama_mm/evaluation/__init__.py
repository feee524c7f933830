# Copyright (c) dcama_mm contributors. All rights reserved.
from .metrics import (FewShotIoUMetric, accumulate_class_areas, few_shot_iou,
                      intersect_and_union_fb)

__all__ = [
    'FewShotIoUMetric', 'accumulate_class_areas', 'few_shot_iou',
    'intersect_and_union_fb'
]
