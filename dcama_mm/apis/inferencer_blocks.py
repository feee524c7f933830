# Copyright (c) dcama_mm contributors. All rights reserved.
"""mmengine's :class:`~mmengine.infer.BaseInferencer` building blocks of
:class:`FewShotInferencer`: its model, test pipeline, visualizer, collate
function and query batches."""
from typing import Callable, List, Optional, Tuple

import torch
import torch.nn as nn
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import FUNCTIONS

from ..visualization import build_drawing_visualizer
from .inference import init_model
from .inference_inputs import InputsType, Query, collect_queries
from .support_set import query_batches


class EpisodeInferencerBlocks:
    """The building blocks of :class:`FewShotInferencer` (which sets
    ``_module``, the built model or None, and the split test pipeline
    ``_load``, ``_rest``, ``_resizes`` before mmengine's ``__init__`` calls
    them)."""

    _module: Optional[nn.Module]
    _load: Compose
    _rest: Compose
    _resizes: list

    def _init_model(self, cfg: Config, weights: Optional[str],
                    device: str) -> nn.Module:
        if self._module is not None:
            return self._module.to(device).eval()
        return init_model(cfg, weights, device=device)

    def _init_pipeline(self, cfg: Config) -> Compose:
        """The config's test pipeline (split in ``__init__`` after its
        loading step: the loaded images are kept for the pictures)."""
        return Compose([self._load, self._rest])

    def _init_visualizer(self, cfg: Config):
        """The config's visualizer (FewShotLocalVisualizer by default),
        drawing only: the inferencer writes its pictures itself."""
        return build_drawing_visualizer(
            cfg.get('visualizer'), f'few_shot_inferencer_{id(self)}')

    def _init_collate(self, cfg: Config) -> Callable:
        """The test loader's ``collate_fn`` (mmengine's ``FUNCTIONS``),
        else ``pseudo_collate``."""
        collate = cfg.get('test_dataloader', {}).get('collate_fn')
        if collate is None:
            return pseudo_collate
        return FUNCTIONS.get(collate['type'])

    def _inputs_to_list(self, inputs: InputsType) -> List[Query]:
        return collect_queries(inputs)

    @property
    def device(self) -> torch.device:
        """torch.device: The device the model runs on."""
        return next(self.model.parameters()).device

    @property
    def img_size(self) -> Tuple[int, int]:
        """tuple[int, int]: The network input size (h, w)."""
        if not self._resizes:
            raise ValueError('The test pipeline does not resize episodes '
                             '(no ResizeEpisode): it has no fixed size.')
        width, height = self._resizes[0].scale
        return (height, width)

    def preprocess(self, queries: List[Query], batch_size: int,
                   failed: List[str], progress=None):
        """The queries through the test pipeline, in batches
        (:func:`~dcama_mm.apis.support_set.query_batches`); unreadable ones
        are logged, added to ``failed`` and skipped."""
        yield from query_batches(queries, batch_size, self._load,
                                 self._rest, self.collate_fn, failed,
                                 progress)
