# Copyright (c) dcama_mm contributors. All rights reserved.
from .autocast_optim_wrapper import AutocastOptimWrapper, amp_optim_wrapper_cfg
from .few_shot_optim_wrapper_constructor import FewShotOptimWrapperConstructor

__all__ = [
    'AutocastOptimWrapper', 'FewShotOptimWrapperConstructor',
    'amp_optim_wrapper_cfg'
]
