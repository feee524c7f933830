# Copyright (c) dcama_mm contributors. All rights reserved.
from .encoded_supports import BlockFeatures, EncodedSupports

__all__ = ['BlockFeatures', 'EncodedSupports']
