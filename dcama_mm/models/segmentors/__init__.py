# Copyright (c) dcama_mm contributors. All rights reserved.
from .few_shot_segmentor import FewShotSegmentor

__all__ = ['FewShotSegmentor']
