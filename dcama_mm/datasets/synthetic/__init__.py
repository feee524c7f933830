# Copyright (c) dcama_mm contributors. All rights reserved.
"""Generators of small synthetic datasets in the benchmarks' real formats
(tests and the demo)."""
from .coco import make_synthetic_coco
from .common import class_appearance, class_texture
from .folders import make_synthetic_class_folders
from .fss import make_synthetic_fss1000
from .voc import make_synthetic_pascal5i

__all__ = [
    'make_synthetic_coco', 'make_synthetic_fss1000', 'make_synthetic_pascal5i',
    'make_synthetic_class_folders', 'class_appearance', 'class_texture'
]
