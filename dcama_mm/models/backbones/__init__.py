# Copyright (c) dcama_mm contributors. All rights reserved.
from .block_feature_resnet import BlockFeatureResNet
from .block_feature_swin import BlockFeatureSwin
from .frozen_backbone_mixin import FrozenBackboneMixin

__all__ = ['BlockFeatureResNet', 'BlockFeatureSwin', 'FrozenBackboneMixin']
