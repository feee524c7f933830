# Copyright (c) dcama_mm contributors. All rights reserved.
"""The command line of the backbone weight converters
``tools/model_converters/{resnet,swin}2mmpretrain.py``.

Each converter detects the architecture of the weights from their keys
(ResNet depth from the blocks per stage and the block type, Swin size from
the embedding width, blocks and heads), prints it, records it in the
output's ``meta`` and refuses a mismatch with the architecture the user
names (``--depth`` / ``--arch``), so that, e.g., ResNet-18 weights are not
converted for a ResNet-50 config.
"""
from argparse import Namespace
from typing import (Any, Callable, Dict, List, Mapping, NamedTuple, Optional,
                    Tuple)

import torch

from .backbone_converters import (SWIN_ARCHS, convert_official_swin,
                                  convert_torchvision_resnet,
                                  describe_official_swin, describe_resnet)
from .checkpoint_io import convert_checkpoint_file, converter_arg_parser

__all__ = ['WeightConverter', 'WEIGHT_CONVERTERS', 'run_weight_converter']

StateDict = Mapping[str, torch.Tensor]
#: BlockFeatureResNet's depths (bottleneck ResNets).
BOTTLENECK_DEPTHS = (50, 101, 152)


class WeightConverter(NamedTuple):
    """What a weight converter tool converts, and its ``--help``."""
    convert: Callable[[StateDict], StateDict]
    layout: str  # the backbone class the output is for
    description: str
    src_help: str
    describe: Callable[[StateDict], dict]  # the architecture, from the keys
    target: str  # the option naming the expected architecture
    target_key: str  # its entry in ``describe``'s dict
    target_kwargs: Dict[str, Any]  # its argparse arguments


def _check_resnet(info: dict, depth: Optional[int]) -> None:
    """Refuse non-bottleneck ResNets and a depth other than ``--depth``."""
    if info['block'] != 'Bottleneck':
        depths = ', '.join(map(str, BOTTLENECK_DEPTHS))
        raise ValueError(
            f'these are {info["name"]} weights ({info["block"]}s, blocks per '
            f'stage {info["num_blocks"]}): BlockFeatureResNet takes '
            f'bottleneck ResNets (depth {depths}); use the weights of one of '
            'those.')
    if depth is not None and info['depth'] != depth:
        raise ValueError(
            f'--depth {depth} was asked for but these are {info["name"]} '
            f'weights (blocks per stage {info["num_blocks"]}); convert '
            f'ResNet-{depth} weights, or set depth={info["depth"]} in the '
            'backbone config.')


def _check_swin(info: dict, arch: Optional[str]) -> None:
    """Refuse a Swin size other than ``--arch``."""
    if arch is not None and info['arch'] != arch:
        dims, depths, heads = SWIN_ARCHS[arch]
        raise ValueError(
            f'--arch {arch} (embed_dims {dims}, depths {depths}, num_heads '
            f'{heads}) was asked for but these are {info["name"]} weights '
            f'(num_heads {info["num_heads"]}); convert Swin-'
            f'{arch[0].upper()} weights, or set the backbone\'s arch to '
            'match.')


#: Tool name (``tools/model_converters/<name>.py``) -> its converter.
WEIGHT_CONVERTERS: Dict[str, WeightConverter] = dict(
    resnet2mmpretrain=WeightConverter(
        convert_torchvision_resnet, 'BlockFeatureResNet',
        'Convert torchvision / TIMM ResNet weights to the mmpretrain / '
        'BlockFeatureResNet layout.', 'torchvision / TIMM checkpoint (.pth)',
        describe_resnet, '--depth', 'depth',
        dict(
            type=int,
            choices=BOTTLENECK_DEPTHS,
            help='the depth of the backbone the weights are for (the '
            'config\'s model.backbone.depth): refuse weights of another '
            'depth')),
    swin2mmpretrain=WeightConverter(
        convert_official_swin, 'BlockFeatureSwin',
        'Convert official Swin Transformer weights to the mmpretrain / '
        'BlockFeatureSwin layout.', 'official checkpoint (.pth)',
        describe_official_swin, '--arch', 'arch',
        dict(
            choices=sorted(SWIN_ARCHS),
            help='the Swin size the weights are for (the config\'s '
            'model.backbone.arch): refuse weights of another size')))

_CHECKS = dict(resnet2mmpretrain=_check_resnet, swin2mmpretrain=_check_swin)


def _meta_value(value: Any) -> Any:
    """A tuple as a list, so that the output loads with weights_only."""
    return list(value) if isinstance(value, tuple) else value


def run_weight_converter(
    tool: str,
    argv: Optional[List[str]] = None
) -> Tuple[Namespace, Dict[str, torch.Tensor], StateDict, dict]:
    """Parse ``SRC DST [--force] [--depth/--arch]``, convert and write.

    The architecture of ``SRC`` is detected from its keys and printed; a
    mismatch with ``--depth`` / ``--arch`` (and, for ResNets, a
    non-bottleneck network) stops the tool before anything is written. The
    output's ``meta`` holds ``converted_from`` (the file name of ``SRC``),
    ``converter`` (``tools/model_converters/<tool>.py``), ``layout`` and the
    detected architecture (``depth``/``num_blocks``/``block`` or
    ``arch``/``embed_dims``/``depths``/``num_heads``/``window_size``).

    Args:
        tool (str): The tool, a key of :data:`WEIGHT_CONVERTERS`.
        argv (list[str], optional): The arguments. Defaults to None
            (``sys.argv``).

    Returns:
        tuple: The parsed arguments, the source and the converted state
        dicts, and the detected architecture.

    Raises:
        SystemExit: With ``<tool>: error: <what went wrong>`` when ``SRC``
            cannot be read or converted, is of another architecture than
            asked for, or ``DST`` exists (nothing is written then).
    """
    converter = WEIGHT_CONVERTERS[tool]
    parser = converter_arg_parser(
        description=converter.description, src_help=converter.src_help)
    parser.add_argument(converter.target, **converter.target_kwargs)
    args = parser.parse_args(argv)
    expected = getattr(args, converter.target_key)
    found: dict = {}

    def inspect(weights: StateDict) -> dict:
        found.update(converter.describe(weights))
        print(f'Detected {found["name"]} weights.')
        _CHECKS[tool](found, expected)
        return {
            k: _meta_value(v)
            for k, v in found.items() if k != 'name'
        }

    meta = dict(
        converter=f'tools/model_converters/{tool}.py',
        layout=converter.layout)
    try:
        weights, converted = convert_checkpoint_file(
            args.src,
            args.dst,
            converter.convert,
            meta=meta,
            force=args.force,
            inspect=inspect)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        raise SystemExit(f'{tool}: error: {exc}')
    return args, weights, converted, found
