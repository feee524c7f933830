# Copyright (c) dcama_mm contributors. All rights reserved.
from .episode_sampler import EpisodeSampler

__all__ = ['EpisodeSampler']
