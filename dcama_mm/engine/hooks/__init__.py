# Copyright (c) dcama_mm contributors. All rights reserved.
from .few_shot_visualization_hook import FewShotVisualizationHook

__all__ = ['FewShotVisualizationHook']
