# Copyright (c) dcama_mm contributors. All rights reserved.
"""The command line of the backbone weight converters
``tools/model_converters/{resnet,swin}2mmpretrain.py``."""
from argparse import Namespace
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

import torch

from .backbone_converters import (convert_official_swin,
                                  convert_torchvision_resnet)
from .checkpoint_io import convert_checkpoint_file, converter_arg_parser

__all__ = ['WeightConverter', 'WEIGHT_CONVERTERS', 'run_weight_converter']

StateDict = Mapping[str, torch.Tensor]


class WeightConverter(NamedTuple):
    """What a weight converter tool converts, and its ``--help``."""
    convert: Callable[[StateDict], StateDict]
    layout: str  # the backbone class the output is for
    description: str
    src_help: str


#: Tool name (``tools/model_converters/<name>.py``) -> its converter.
WEIGHT_CONVERTERS: Dict[str, WeightConverter] = dict(
    resnet2mmpretrain=WeightConverter(
        convert_torchvision_resnet, 'BlockFeatureResNet',
        'Convert torchvision / TIMM ResNet weights to the mmpretrain / '
        'BlockFeatureResNet layout.', 'torchvision / TIMM checkpoint (.pth)'),
    swin2mmpretrain=WeightConverter(
        convert_official_swin, 'BlockFeatureSwin',
        'Convert official Swin Transformer weights to the mmpretrain / '
        'BlockFeatureSwin layout.', 'official checkpoint (.pth)'))


def run_weight_converter(
        tool: str, argv: Optional[List[str]] = None
) -> Tuple[Namespace, Dict[str, torch.Tensor], StateDict]:
    """Parse ``SRC DST [--force]``, convert ``SRC`` and write ``DST``.

    The output's ``meta`` holds ``converted_from`` (the file name of
    ``SRC``), ``converter`` (``tools/model_converters/<tool>.py``) and
    ``layout``.

    Args:
        tool (str): The tool, a key of :data:`WEIGHT_CONVERTERS`.
        argv (list[str], optional): The arguments. Defaults to None
            (``sys.argv``).

    Returns:
        tuple: The parsed arguments, the source and the converted state
        dicts.

    Raises:
        SystemExit: With ``<tool>: error: <what went wrong>`` when ``SRC``
            cannot be read or converted or ``DST`` exists (nothing is
            written then).
    """
    converter = WEIGHT_CONVERTERS[tool]
    parser = converter_arg_parser(
        description=converter.description, src_help=converter.src_help)
    args = parser.parse_args(argv)
    meta = dict(
        converter=f'tools/model_converters/{tool}.py',
        layout=converter.layout)
    try:
        weights, converted = convert_checkpoint_file(
            args.src,
            args.dst,
            converter.convert,
            meta=meta,
            force=args.force)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        raise SystemExit(f'{tool}: error: {exc}')
    return args, weights, converted
