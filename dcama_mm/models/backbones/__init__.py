# Copyright (c) dcama_mm contributors. All rights reserved.
from .block_feature_resnet import BlockFeatureResNet
from .block_feature_swin import BlockFeatureSwin

__all__ = ['BlockFeatureResNet', 'BlockFeatureSwin']
