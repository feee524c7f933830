# Copyright (c) dcama_mm contributors. All rights reserved.
from .few_shot_visualization_hook import FewShotVisualizationHook
from .random_state_hook import RandomStateHook

__all__ = ['FewShotVisualizationHook', 'RandomStateHook']
