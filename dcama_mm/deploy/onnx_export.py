# Copyright (c) dcama_mm contributors. All rights reserved.
"""Export a few-shot segmentor to two ONNX graphs.

- ``support_encoder.onnx``: ``support_imgs [K, 3, H, W]`` (normalised, as
  the data preprocessor gives them) and ``support_masks [K, H, W]`` (0/1)
  -> the encoded support set: one tensor ``encoded_s{s}_b{b}``
  ``[K, C_s, h_s, w_s]`` per backbone block the head reads (the last block
  of stage 1, every block of stages 2-4; ``s`` 1..4, ``b`` from 0) and
  ``encoded_masks [K, H, W]``.
- ``query_segmentor.onnx``: ``query_imgs [B, 3, H, W]`` and the encoded
  support set (the support encoder's outputs, by name) -> ``logits
  [B, 2, H, W]``, every query against that one support set.

So a support set is encoded once and reused over its queries, as
:class:`~dcama_mm.apis.FewShotInferencer` does. The graphs are traced on
the straightforward path of every module (``set_fast_paths(model,
False)``: no oneDNN kernels, no CPU threads, no fused-kernel tricks) in eval
mode, with torch's TorchScript-based exporter. Dynamic axes: ``shots``
(K) of every support-side tensor and ``batch`` (B) of the queries and the
logits; ``H`` and ``W`` are fixed at export (the positional tables and
the window layout are traced for that size).
"""
import contextlib
import json
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from torch import Tensor

from ..datasets.transforms.resize_episode import BACKBONE_STRIDE
from ..models.utils.fast_paths import set_fast_paths
from ..structures import EncodedSupports
from ..utils.output_files import (check_output_folder, existing_files,
                                  overwrite_refusal)

#: The ONNX opset the graphs are written with.
OPSET = 17
#: Multiple the network size must be (the backbones' largest stride).
SIZE_MULTIPLE = BACKBONE_STRIDE
SUPPORT_GRAPH = 'support_encoder.onnx'
QUERY_GRAPH = 'query_segmentor.onnx'
META_FILE = 'deploy.json'
CONFIG_FILE = 'config.py'
#: Every file an export writes into its folder.
EXPORT_FILES = (CONFIG_FILE, META_FILE, QUERY_GRAPH, SUPPORT_GRAPH)
#: Shots and queries of the example episode the graphs are traced with.
#: More than one of each, so that the traced graph takes the general path
#: where a module branches on K or B (e.g. the max over the shots, which is
#: the support map itself for K = 1); the graphs then take any K and B.
TRACE_SHOTS = 2
TRACE_BATCH = 2


def encoded_names(num_blocks: Sequence[int]) -> List[str]:
    """Names of the encoded support features the head reads, in order.

    :class:`~dcama_mm.models.DCAMAHead` reads every block of stages 2-4
    (the attention) and only the last block of stage 1 (a skip
    connection).

    Args:
        num_blocks (Sequence[int]): Blocks per backbone stage (4 values).

    Returns:
        list[str]: ``encoded_s1_b{n_1 - 1}``, then ``encoded_s{s}_b{b}``
        for ``s`` in 2..4 and every block ``b``.
    """
    names = [f'encoded_s1_b{num_blocks[0] - 1}']
    for stage in (1, 2, 3):
        names += [f'encoded_s{stage + 1}_b{b}'
                  for b in range(num_blocks[stage])]
    return names


def flatten_supports(encoded: EncodedSupports) -> List[Tensor]:
    """The tensors of :func:`encoded_names` (``[K, C, h, w]`` each) of an
    encoded support set."""
    feats = [encoded.feats[0][-1][0]]
    for stage in encoded.feats[1:]:
        feats += [f[0] for f in stage]
    return feats


def unflatten_supports(feats: Sequence[Tensor], masks: Tensor,
                       num_blocks: Sequence[int]) -> EncodedSupports:
    """The inverse of :func:`flatten_supports`: an :class:`EncodedSupports`
    (``[1, K, ...]``) from the tensors and ``masks`` ``[K, H, W]``. The
    blocks of stage 1 the head does not read are the last one again."""
    feats = [f.unsqueeze(0) for f in feats]
    stages = [[feats[0]] * num_blocks[0]]
    start = 1
    for count in num_blocks[1:]:
        stages.append(feats[start:start + count])
        start += count
    return EncodedSupports(feats=tuple(stages), masks=masks.unsqueeze(0))


class SupportEncoderGraph(nn.Module):
    """``support_imgs, support_masks -> (*encoded features, masks)``."""

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        self.segmentor = segmentor

    def forward(self, support_imgs: Tensor,
                support_masks: Tensor) -> Tuple[Tensor, ...]:
        encoded = self.segmentor.encode_supports(support_imgs, support_masks)
        return tuple(flatten_supports(encoded)) + (encoded.masks[0], )


class QueryGraph(nn.Module):
    """``query_imgs, *encoded features, encoded_masks -> logits``."""

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        self.segmentor = segmentor
        self.num_blocks = tuple(segmentor.backbone.num_blocks)

    def forward(self, query_imgs: Tensor, *encoded: Tensor) -> Tensor:
        supports = unflatten_supports(encoded[:-1], encoded[-1],
                                      self.num_blocks)
        return self.segmentor.predict_logits(query_imgs, supports=supports)


def traceable_window_reverse(windows: Tensor, H: int, W: int,
                             window_size: int) -> Tensor:
    """mmpretrain's ``ShiftWindowMSA.window_reverse`` without its
    ``int(windows.shape[0] / ...)``, which the tracer records as a
    constant batch (the traced number of images would be baked into the
    graph); the same data movement, so the same result exactly."""
    channels = windows.shape[-1]
    x = windows.view(-1, H // window_size, W // window_size, window_size,
                     window_size, channels)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, H, W, channels)


@contextlib.contextmanager
def traceable(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` on its straightforward path, in eval mode, with the
    traceable equivalents of :func:`traceable_window_reverse`; the fast
    paths, the mode and the modules are restored afterwards."""
    from mmpretrain.models.utils import ShiftWindowMSA
    fast = {m: m._fast_paths for m in model.modules()
            if hasattr(m, '_fast_paths')}
    training = {m: m.training for m in model.modules()}
    patched = [m for m in model.modules() if isinstance(m, ShiftWindowMSA)]
    set_fast_paths(model, False)
    model.eval()
    for module in patched:
        module.window_reverse = traceable_window_reverse
    try:
        yield model
    finally:
        for module in patched:
            del module.window_reverse
        for module, value in fast.items():
            module._fast_paths = value
        for module, value in training.items():
            module.training = value


def check_export_size(size: Sequence[int]) -> Tuple[int, int]:
    """``(H, W)``, checked: positive multiples of :data:`SIZE_MULTIPLE`.

    Raises:
        ValueError: For another size.
    """
    if (len(size) != 2 or any(not isinstance(s, int) or s <= 0
                              or s % SIZE_MULTIPLE for s in size)):
        raise ValueError(
            f'--size {" ".join(str(s) for s in size)}: the ONNX export '
            f'supports H and W that are positive multiples of '
            f'{SIZE_MULTIPLE} (the backbone\'s largest stride), e.g. 384 '
            '384.')
    return int(size[0]), int(size[1])


def check_export_dir(out_dir: str,
                     force: bool = False,
                     folder_option: str = 'OUT_DIR',
                     force_option: str = '--force') -> None:
    """Refuse an export folder that would lose an earlier export.

    :func:`export_onnx` calls it before any work (naming ``out_dir`` and
    ``force=True``); ``tools/deployment/pytorch2onnx.py`` calls it before
    the model is built (naming ``OUT_DIR`` and ``--force``).

    Args:
        out_dir (str): The export folder.
        force (bool): Allow overwriting the files of an earlier export.
            Defaults to False.
        folder_option (str): The folder's name in messages. Defaults to
            'OUT_DIR'.
        force_option (str): The option that overwrites, in messages.
            Defaults to '--force'.

    Raises:
        NotADirectoryError: ``out_dir`` is a file (or lies under one).
        FileExistsError: ``out_dir`` holds any of :data:`EXPORT_FILES`
            (naming them; a dangling link counts) and ``force`` is False.
    """
    check_output_folder(out_dir, folder_option)
    existing = existing_files(osp.join(out_dir, f) for f in EXPORT_FILES)
    if existing and not force:
        raise FileExistsError(overwrite_refusal(
            existing, 'Export file(s)', f'choose another {folder_option}',
            force=force_option))


def export_onnx(model: nn.Module,
                out_dir: str,
                size: Sequence[int] = (384, 384),
                opset: int = OPSET,
                dataset_meta: Optional[dict] = None,
                force: bool = False) -> Dict[str, str]:
    """Write the support-encoder and query graphs of ``model``.

    An earlier export is never overwritten silently: when ``out_dir``
    holds any of :data:`EXPORT_FILES`, nothing is done unless ``force``.

    Args:
        model (nn.Module): A ``FewShotSegmentor`` (its ``cfg`` is written
            beside the graphs when it has one).
        out_dir (str): The output folder.
        size (Sequence[int]): The network size ``(H, W)``. Defaults to
            ``(384, 384)``.
        opset (int): The ONNX opset. Defaults to :data:`OPSET`.
        dataset_meta (dict, optional): Written to the metadata file.
            Defaults to None.
        force (bool): Overwrite the files of an earlier export in
            ``out_dir``. Defaults to False.

    Returns:
        dict: ``support``, ``query``, ``meta`` (and ``config``): the
        written files.

    Raises:
        ValueError: A bad size.
        NotADirectoryError: ``out_dir`` is a file (or lies under one).
        FileExistsError: ``out_dir`` holds files of an earlier export and
            ``force`` is False (checked before anything is traced).
    """
    height, width = check_export_size(tuple(size))
    check_export_dir(out_dir, force, 'out_dir', 'force=True')
    shots, batch = TRACE_SHOTS, TRACE_BATCH
    os.makedirs(out_dir, exist_ok=True)
    num_blocks = tuple(model.backbone.num_blocks)
    names = encoded_names(num_blocks)
    gen = torch.Generator().manual_seed(0)
    support_imgs = torch.randn(shots, 3, height, width, generator=gen)
    support_masks = (torch.rand(shots, height, width, generator=gen) >
                     0.5).float()
    query_imgs = torch.randn(batch, 3, height, width, generator=gen)
    files = dict(support=osp.join(out_dir, SUPPORT_GRAPH),
                 query=osp.join(out_dir, QUERY_GRAPH),
                 meta=osp.join(out_dir, META_FILE))
    shots_axis = {0: 'shots'}
    with traceable(model), torch.no_grad():
        encoder = SupportEncoderGraph(model).eval()
        encoded = encoder(support_imgs, support_masks)
        torch.onnx.export(
            encoder, (support_imgs, support_masks), files['support'],
            dynamo=False, opset_version=opset,
            input_names=['support_imgs', 'support_masks'],
            output_names=names + ['encoded_masks'],
            dynamic_axes={'support_imgs': shots_axis,
                          'support_masks': shots_axis,
                          'encoded_masks': shots_axis,
                          **{n: shots_axis for n in names}})
        torch.onnx.export(
            QueryGraph(model).eval(), (query_imgs, ) + tuple(encoded),
            files['query'], dynamo=False, opset_version=opset,
            input_names=['query_imgs'] + names + ['encoded_masks'],
            output_names=['logits'],
            dynamic_axes={'query_imgs': {0: 'batch'}, 'logits': {0: 'batch'},
                          'encoded_masks': shots_axis,
                          **{n: shots_axis for n in names}})
    meta = dict(opset=opset, size=[height, width],
                num_blocks=list(num_blocks), encoded_names=names,
                dataset_meta=dataset_meta)
    cfg = getattr(model, 'cfg', None)
    if cfg is not None:
        files['config'] = osp.join(out_dir, CONFIG_FILE)
        cfg.dump(files['config'])
    with open(files['meta'], 'w') as f:
        json.dump(meta, f, indent=2, default=str)
    print_log(f'ONNX graphs (opset {opset}, {height}x{width}) written to '
              f'{osp.abspath(out_dir)}', logger='current')
    return files
