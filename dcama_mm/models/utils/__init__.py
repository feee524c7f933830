# Copyright (c) dcama_mm contributors. All rights reserved.
from .backbone_converters import (convert_official_swin,
                                  convert_torchvision_resnet,
                                  detect_backbone_layout)
from .checkpoint_io import (check_output_path, convert_checkpoint_file,
                            converter_arg_parser, load_state_dict_file,
                            save_checkpoint_file)
from .dcama_converter import (convert_dcama_checkpoint,
                              inspect_dcama_checkpoint)

__all__ = [
    'convert_official_swin', 'convert_torchvision_resnet',
    'detect_backbone_layout', 'convert_dcama_checkpoint',
    'inspect_dcama_checkpoint', 'converter_arg_parser',
    'load_state_dict_file', 'check_output_path', 'save_checkpoint_file',
    'convert_checkpoint_file'
]
