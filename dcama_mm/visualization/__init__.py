# Copyright (c) dcama_mm contributors. All rights reserved.
from .few_shot_local_visualizer import FewShotLocalVisualizer, episode_iou

__all__ = ['FewShotLocalVisualizer', 'episode_iou']
