# Copyright (c) dcama_mm contributors. All rights reserved.
from .load_episode import LoadEpisode
from .pack_few_shot_inputs import PackFewShotInputs
from .resize_episode import ResizeEpisode

__all__ = ['LoadEpisode', 'ResizeEpisode', 'PackFewShotInputs']
