# Copyright (c) dcama_mm contributors. All rights reserved.
from .few_shot_local_visualizer import FewShotLocalVisualizer
from .vis_utils import build_drawing_visualizer, episode_iou

__all__ = ['FewShotLocalVisualizer', 'build_drawing_visualizer', 'episode_iou']
