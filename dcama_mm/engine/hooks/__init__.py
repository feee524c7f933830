# Copyright (c) dcama_mm contributors. All rights reserved.
from .checkpoint_fit_hook import (CheckpointFitHook,
                                  configure_checkpoint_loading)
from .few_shot_visualization_hook import FewShotVisualizationHook
from .random_state_hook import RandomStateHook

__all__ = [
    'CheckpointFitHook', 'FewShotVisualizationHook', 'RandomStateHook',
    'configure_checkpoint_loading'
]
