# Copyright (c) dcama_mm contributors. All rights reserved.
from . import backbones, decode_heads, layers, segmentors, utils  # noqa: F401
from .backbones import *  # noqa: F401,F403
from .data_preprocessor import FewShotDataPreProcessor
from .decode_heads import DCAMAHead
from .segmentors import FewShotSegmentor

__all__ = ['FewShotDataPreProcessor', 'DCAMAHead', 'FewShotSegmentor']
__all__ += backbones.__all__
