# Copyright (c) dcama_mm contributors. All rights reserved.
from .backbone_converters import (convert_official_swin,
                                  convert_torchvision_resnet,
                                  detect_backbone_layout)
from .dcama_converter import (convert_dcama_checkpoint,
                              inspect_dcama_checkpoint)

__all__ = [
    'convert_official_swin', 'convert_torchvision_resnet',
    'detect_backbone_layout', 'convert_dcama_checkpoint',
    'inspect_dcama_checkpoint'
]
