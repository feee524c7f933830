# Copyright (c) dcama_mm contributors. All rights reserved.
"""Few-shot inference with the exported ONNX graphs on onnxruntime."""
import json
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmseg.registry import MODELS
from torch import Tensor

from ..apis import FewShotInferencer
from ..models.segmentors import FewShotSegmentor
from ..models.segmentors.episode_tensors import stack_supports
from ..structures import EncodedSupports
from .onnx_export import (CONFIG_FILE, META_FILE, QUERY_GRAPH, SUPPORT_GRAPH,
                          flatten_supports, unflatten_supports)


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as err:
        raise ImportError(
            'ONNX inference needs onnxruntime: pip install onnxruntime '
            '(tools/setup_env.sh installs it).') from err
    return onnxruntime


class ONNXFewShotSegmentor(nn.Module):
    """The segmentor interface the inferencer uses, on onnxruntime.

    ``encode_supports``, ``predict_logits`` and ``predict`` as
    :class:`~dcama_mm.models.FewShotSegmentor`'s, computed by the graphs of
    :func:`~dcama_mm.deploy.export_onnx`; the data preprocessor is the
    config's (normalisation is not part of the graphs).

    Args:
        export_dir (str): The folder the exporter wrote.
        threads (int, optional): onnxruntime's intra-op threads. Defaults
            to None (onnxruntime's default).

    Raises:
        FileNotFoundError: A file of the export is missing.
    """

    def __init__(self, export_dir: str,
                 threads: Optional[int] = None) -> None:
        super().__init__()
        ort = _import_onnxruntime()
        for name in (SUPPORT_GRAPH, QUERY_GRAPH, META_FILE, CONFIG_FILE):
            if not osp.isfile(osp.join(export_dir, name)):
                raise FileNotFoundError(
                    f'{osp.join(export_dir, name)} does not exist: pass the '
                    'OUT_DIR of tools/deployment/pytorch2onnx.py.')
        with open(osp.join(export_dir, META_FILE)) as f:
            self.meta = json.load(f)
        self.export_dir = export_dir
        self.size: Tuple[int, int] = tuple(self.meta['size'])
        self.num_blocks = tuple(self.meta['num_blocks'])
        self.names: List[str] = list(self.meta['encoded_names'])
        self.cfg = Config.fromfile(osp.join(export_dir, CONFIG_FILE))
        self.data_preprocessor = MODELS.build(
            self.cfg.model.data_preprocessor)
        self.test_cfg = dict(self.cfg.model.get('test_cfg') or {})
        if self.meta.get('dataset_meta') is not None:
            self.dataset_meta = self.meta['dataset_meta']
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        providers = ['CPUExecutionProvider']
        self.support_session = ort.InferenceSession(
            osp.join(export_dir, SUPPORT_GRAPH), options,
            providers=providers)
        self.query_session = ort.InferenceSession(
            osp.join(export_dir, QUERY_GRAPH), options, providers=providers)

    def _check_size(self, what: str, size: Sequence[int]) -> None:
        if tuple(size) != self.size:
            raise ValueError(
                f'{what} are {size[0]}x{size[1]} but the ONNX graphs in '
                f'{self.export_dir} were exported for '
                f'{self.size[0]}x{self.size[1]}: resize the inputs, or '
                'export again with tools/deployment/pytorch2onnx.py --size '
                f'{size[0]} {size[1]} (into another OUT_DIR, or with '
                '--force to replace this export).')

    def encode_supports(self, support_imgs: Tensor,
                        support_masks: Tensor) -> EncodedSupports:
        """Run the support-encoder graph (``[K, 3, H, W]``, ``[K, H, W]``
        or with a leading 1, as :meth:`FewShotSegmentor.encode_supports`).
        """
        if support_imgs.dim() == 5:
            support_imgs, support_masks = support_imgs[0], support_masks[0]
        self._check_size('The support images', support_imgs.shape[-2:])
        outputs = self.support_session.run(None, {
            'support_imgs': _numpy(support_imgs),
            'support_masks': _numpy(support_masks)
        })
        tensors = [torch.from_numpy(o) for o in outputs]
        return unflatten_supports(tensors[:-1], tensors[-1], self.num_blocks)

    def predict_logits(self, query_imgs: Tensor,
                       supports: EncodedSupports) -> Tensor:
        """Run the query graph: logits ``[B, 2, H, W]``."""
        self._check_size('The query images', query_imgs.shape[-2:])
        feed = dict(zip(self.names, map(_numpy,
                                        flatten_supports(supports))))
        feed['encoded_masks'] = _numpy(supports.masks[0])
        feed['query_imgs'] = _numpy(query_imgs)
        (logits, ) = self.query_session.run(['logits'], feed)
        return torch.from_numpy(logits)

    def predict(self, inputs: Tensor, data_samples=None,
                supports: Optional[EncodedSupports] = None,
                resize_to_original: Optional[bool] = None):
        """:meth:`FewShotSegmentor.predict` on the graphs: against
        ``supports``, else each episode against its own supports."""
        if supports is not None:
            logits = self.predict_logits(inputs, supports)
        else:
            imgs, masks = stack_supports(inputs, data_samples)
            logits = torch.cat([
                self.predict_logits(inputs[i:i + 1],
                                    self.encode_supports(imgs[i], masks[i]))
                for i in range(len(inputs))
            ])
        return self.postprocess_result(logits, data_samples,
                                       resize_to_original)

    # the segmentor's own resizing and argmax (they read test_cfg only)
    resize_logits = FewShotSegmentor.resize_logits
    postprocess_result = FewShotSegmentor.postprocess_result


def _numpy(tensor: Tensor) -> np.ndarray:
    return np.ascontiguousarray(
        tensor.detach().to('cpu', torch.float32).numpy())


class ONNXFewShotPredictor(FewShotInferencer):
    """:class:`~dcama_mm.apis.FewShotInferencer` on the exported graphs.

    The same call and the same results (masks, probabilities, pictures,
    files): the config's test pipeline, the support set read once through
    it (:func:`~dcama_mm.apis.support_set.load_support_set`) and encoded
    once by ``support_encoder.onnx``, each query batch segmented by
    ``query_segmentor.onnx``. PyTorch runs only the pipeline and the
    normalisation; the network runs on onnxruntime.

    Example:
        >>> predictor = ONNXFewShotPredictor('deploy/dcama_swinb')
        >>> result = predictor('queries/', support_imgs=['cat.jpg'],
        ...                    support_masks=['cat.png'])

    Args:
        export_dir (str): The OUT_DIR of ``tools/deployment/
            pytorch2onnx.py`` (the graphs, ``deploy.json``, ``config.py``).
        threads (int, optional): onnxruntime's threads. Defaults to None.
        cfg_options (dict, optional): Overrides of the exported config
            (e.g. its pipeline). Defaults to None.

    Raises:
        FileNotFoundError: A file of the export is missing.
        ImportError: onnxruntime is not installed.
    """

    def __init__(self, export_dir: str, threads: Optional[int] = None,
                 cfg_options: Optional[dict] = None) -> None:
        runtime = ONNXFewShotSegmentor(export_dir, threads)
        super().__init__(runtime, device='cpu', img_size=runtime.size,
                         cfg_options=cfg_options)

    @property
    def device(self) -> torch.device:
        """torch.device: The CPU (onnxruntime's CPU provider)."""
        return torch.device('cpu')


__all__ = ['ONNXFewShotSegmentor', 'ONNXFewShotPredictor']
