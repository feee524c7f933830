# Copyright (c) dcama_mm contributors. All rights reserved.
from .base_few_shot_dataset import BaseFewShotDataset
from .coco20i import COCO20iDataset
from .few_shot_folder import FewShotFolderDataset
from .fss1000 import FSS1000Dataset
from .pascal5i import PascalVOC5iDataset
from .samplers import EpisodeSampler
from .transforms import LoadEpisode, PackFewShotInputs, ResizeEpisode

__all__ = [
    'BaseFewShotDataset', 'COCO20iDataset', 'PascalVOC5iDataset',
    'FSS1000Dataset', 'FewShotFolderDataset', 'EpisodeSampler',
    'LoadEpisode', 'ResizeEpisode', 'PackFewShotInputs'
]
