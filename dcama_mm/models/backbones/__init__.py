from .block_feature_resnet import BlockFeatureResNet
from .block_feature_swin import BlockFeatureSwin

__all__ = ['BlockFeatureResNet', 'BlockFeatureSwin']
