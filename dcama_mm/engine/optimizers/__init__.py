# Copyright (c) dcama_mm contributors. All rights reserved.
from .few_shot_optim_wrapper_constructor import FewShotOptimWrapperConstructor

__all__ = ['FewShotOptimWrapperConstructor']
